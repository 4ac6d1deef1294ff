"""The central views: the image with its frame bar and window presets, the attack
result, the detector evidence, the side-by-side comparison."""
