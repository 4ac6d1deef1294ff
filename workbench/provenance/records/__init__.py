"""Capture records: fingerprints, canonical JSON, the record, keys, signing and verifying."""
