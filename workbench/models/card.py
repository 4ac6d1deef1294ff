"""Model cards: what a classifier expects and how well it was measured to work."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class ModelCard:
    name: str
    architecture: str  # torchvision name (e.g. "mobilenet_v3_small") or "torchscript"
    weights: str  # file name of the state_dict or TorchScript file, relative to the card
    input_size: tuple[int, int] = (224, 224)  # (height, width) the network sees
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    channel_order: str = "RGB"
    class_names: tuple[str, ...] = ("nevus", "melanoma")
    positive_class: str = "melanoma"
    training_data: str = ""
    split: dict[str, Any] = field(default_factory=dict)  # seed, fractions, image ids
    metrics: dict[str, Any] = field(default_factory=dict)  # measured clean accuracy, AUROC, n
    notes: str = ""
    # what the model was trained on (models.fit.ImageFit); a card without it fits nothing
    fits: Any = None
    # architecture "ensemble": the member cards (file names beside this one), whose logits
    # are averaged (an ensemble of surrogates transfers better than any one of them)
    members: tuple[str, ...] = ()
    # a hardened model: the defence it was fine-tuned with and its parent (name, card,
    # weights' SHA-256); empty for a model trained as it is
    defence: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from .fit import ImageFit

        if not isinstance(self.fits, ImageFit):
            self.fits = ImageFit.from_json(self.fits)

    @property
    def positive_index(self) -> int:
        return list(self.class_names).index(self.positive_class)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_size"] = list(self.input_size)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        d["class_names"] = list(self.class_names)
        d["members"] = list(self.members)
        d["fits"] = self.fits.to_json()
        return d

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> ModelCard:
        try:
            d = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"{path}: cannot read the model card ({exc})") from None
        known = {f for f in cls.__dataclass_fields__}
        missing = {"name", "architecture", "weights"} - set(d)
        if missing:
            raise ModelLoadError(f"{path}: model card lacks {', '.join(sorted(missing))}")
        d = {k: v for k, v in d.items() if k in known}
        for key in ("input_size", "mean", "std", "class_names", "members"):
            if key in d:
                d[key] = tuple(d[key])
        card = cls(**d)
        if card.positive_class not in card.class_names:
            raise ModelLoadError(f"{path}: positive class {card.positive_class!r} is not one of "
                                 f"{list(card.class_names)}")
        return card


class ModelLoadError(Exception):
    """A classifier or its card cannot be loaded; the message names the file."""
