"""Case reports (HTML, and PDF through the GUI package's Qt PDF writer)."""
