"""The docks around the image, each bound to the current image session: study list,
model, attack, detectors, provenance, metadata."""
