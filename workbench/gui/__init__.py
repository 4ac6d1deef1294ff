"""Everything Qt lives in this package; the rest of the workbench never imports Qt."""
