"""Plugin discovery and running jobs (batches, device, progress, cancel)."""
