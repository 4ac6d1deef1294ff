"""What a demo model's card records about it: accuracy, AUROC, sensitivity and
specificity on the held-out images, measured through the project's own Classifier."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..models.classifier import predict_proba
from .data import CLASS_NAMES, EVAL_SHORT_SIDE, POSITIVE_CLASS

if TYPE_CHECKING:  # torch loads where a function needs it, not on import
    import torch

EVAL_PREPROCESSING = (
    f"OpenCV decode, BGR->RGB, INTER_AREA resize to {EVAL_SHORT_SIDE} px short side "
    "(aspect kept), uint8 -> [0, 1] float, whole image through the Classifier wrapper "
    "(antialiased bilinear resize to input_size, ImageNet mean/std), argmax of logits "
    "for accuracy, softmax melanoma probability for AUROC"
)


def to_unit_tensor(image: np.ndarray) -> torch.Tensor:
    """1 x C x H x W float32 in [0, 1] from H x W x 3 RGB or H x W grey uint8."""
    import torch

    t = torch.from_numpy(image)
    t = t.unsqueeze(0) if t.dim() == 2 else t.permute(2, 0, 1)
    return t.unsqueeze(0).float().div(255.0)


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U; ties count one half)."""
    pos, neg = scores[labels == 1], scores[labels == 0]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(pos) * len(neg)))


def evaluate(model: Any, images: list[np.ndarray], labels: list[int]) -> dict[str, Any]:
    """Accuracy and AUROC (melanoma positive) of a Classifier on uint8 RGB images, each
    fed whole, in [0, 1], one at a time (their sizes differ)."""
    pos = model.card.positive_index if hasattr(model, "card") else CLASS_NAMES.index(
        POSITIVE_CLASS)
    probs = np.stack([predict_proba(model, to_unit_tensor(im))[0].cpu().numpy()
                      for im in images])
    y = np.asarray(labels)
    pred = probs.argmax(1)
    pos_label = (y == pos).astype(int)
    return {
        "probabilities": probs[:, pos],
        "accuracy": float((pred == y).mean()),
        "auroc": auroc(probs[:, pos], pos_label),
        "n_test": len(y),
        "n_test_per_class": {name: int((y == i).sum()) for i, name in enumerate(
            getattr(getattr(model, "card", None), "class_names", CLASS_NAMES))},
        "sensitivity": float((pred[pos_label == 1] == pos).mean()),
        "specificity": float((pred[pos_label == 0] != pos).mean()),
    }


def auroc_interval(scores: np.ndarray, labels: np.ndarray, groups: list[str],
                   n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
    """A 95 % percentile-bootstrap interval of the AUROC, resampling *patients* (every
    image of a drawn patient comes with it): images of one patient are not independent,
    and resampling images would give too narrow an interval."""
    rng = np.random.default_rng(seed)
    by_group: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        by_group.setdefault(g, []).append(i)
    members = list(by_group.values())
    values = []
    for _ in range(n_boot):
        drawn = rng.integers(0, len(members), size=len(members))
        idx = np.fromiter((i for d in drawn for i in members[d]), dtype=int)
        a = auroc(scores[idx], labels[idx])
        if a == a:  # both classes drawn
            values.append(a)
    lo, hi = np.percentile(values, [2.5, 97.5])
    return float(lo), float(hi)
