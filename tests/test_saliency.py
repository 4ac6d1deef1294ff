"""Saliency maps (input gradient, Grad-CAM) point where the model's decision comes from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")

from workbench.analysis.saliency import saliency  # noqa: E402
from workbench.imaging.loader import load_image  # noqa: E402
from workbench.models.card import ModelCard  # noqa: E402
from workbench.models.classifier import Classifier  # noqa: E402


class BrightnessNet(torch.nn.Module):
    """Channel 0 of one 3x3 convolution responds to brightness; class "bright" is its
    mean over the top-left quadrant, class "other" is a constant. Its decision comes
    from the top-left quadrant only, and within it from where the image is bright."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 2, 3, padding=1, bias=False)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.weight[0] = 1.0 / 27
            self.conv.weight[1] = -1.0 / 27

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = torch.relu(self.conv(x))
        h, w = f.shape[-2:]
        bright = f[:, 0, : h // 2, : w // 2].mean(dim=(1, 2)) * 10
        other = torch.full_like(bright, 0.1) + 0 * f[:, 1].mean(dim=(1, 2))
        return torch.stack([other, bright], dim=1)


def quadrant_model() -> torch.nn.Module:
    card = ModelCard(name="quadrant", architecture="custom", weights="-", input_size=(64, 64),
                     mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0),
                     class_names=("other", "bright"), positive_class="bright")
    model = Classifier(BrightnessNet(), card).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def write_photo(path: Path, rgb: np.ndarray, orientation: int = 1) -> Path:
    img = Image.fromarray(rgb)
    exif = Image.Exif()
    if orientation != 1:
        exif[274] = orientation
    img.save(path, exif=exif)
    return path


def square_image(top: int, left: int, side: int = 10) -> np.ndarray:
    rgb = np.full((64, 64, 3), 20, np.uint8)
    rgb[top:top + side, left:left + side] = 230
    return rgb


def test_input_gradient_is_zero_outside_the_region_the_model_reads(tmp_path: Path) -> None:
    image = load_image(write_photo(tmp_path / "sq.png", square_image(8, 12)))
    s = saliency(quadrant_model(), image, "input gradient")
    assert s.map.shape == (64, 64)
    assert s.class_name == "bright"
    # the decision reads the top-left 32 x 32 quadrant through a 3 x 3 convolution
    assert s.map[:33, :33].max() > 0
    assert s.map[34:, :].max() == 0 and s.map[:, 34:].max() == 0


def test_grad_cam_peaks_on_the_bright_square_that_drives_the_decision(tmp_path: Path) -> None:
    for top, left in [(4, 6), (18, 16)]:
        image = load_image(write_photo(tmp_path / f"sq{top}.png", square_image(top, left)))
        s = saliency(quadrant_model(), image, "Grad-CAM")
        r, c = np.unravel_index(int(np.argmax(s.map)), s.map.shape)
        assert top - 1 <= r <= top + 10 and left - 1 <= c <= left + 10, (r, c)
        assert 0 < s.probability <= 1


def test_maps_are_on_the_stored_grid_whatever_the_exif_orientation(tmp_path: Path) -> None:
    rgb = square_image(5, 9)
    plain = load_image(write_photo(tmp_path / "o1.jpg", rgb))
    turned = load_image(write_photo(tmp_path / "o6.jpg", rgb, orientation=6))
    assert turned.orientation == 6
    for method in ("input gradient", "Grad-CAM"):
        a = saliency(quadrant_model(), plain, method).map
        b = saliency(quadrant_model(), turned, method).map
        assert a.shape == b.shape == (64, 64)
        np.testing.assert_allclose(a, b)


def test_large_images_are_explained_at_full_size(tmp_path: Path) -> None:
    from workbench.models.zoo import load_model

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (1300, 1700, 3), dtype=np.uint8)
    image = load_image(write_photo(tmp_path / "big.png", rgb))
    for method in ("input gradient", "Grad-CAM"):
        s = saliency(load_model("demo"), image, method)
        assert s.map.shape == (1300, 1700)
        assert np.isfinite(s.map).all() and s.map.max() > 0


def test_unknown_method_and_class_are_refused(tmp_path: Path) -> None:
    image = load_image(write_photo(tmp_path / "sq.png", square_image(8, 12)))
    with pytest.raises(ValueError, match="unknown saliency method"):
        saliency(quadrant_model(), image, "lime")
    with pytest.raises(ValueError, match="out of range"):
        saliency(quadrant_model(), image, "Grad-CAM", class_index=5)
