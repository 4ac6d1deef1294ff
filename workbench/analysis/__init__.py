"""Perturbation maps, image-difference metrics (numpy; torch only where noted)."""
