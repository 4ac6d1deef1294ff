"""The classifier wrapper: images in [0, 1] NCHW at any size in, logits out.

Resizing to the network's input size and mean/std normalisation happen *inside* the
wrapper, so attacks always work in image space and their epsilon means the same thing
for every model. Grayscale input (C = 1) is repeated to three channels inside too, so
an attack on a grayscale DICOM perturbs the one stored channel.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .card import ModelCard, ModelLoadError


def build_network(architecture: str, num_classes: int) -> Any:
    """A torchvision architecture with random weights (no downloads: weights=None)."""
    from .torch_import import import_torchvision

    torchvision = import_torchvision()  # often the first import, beside the GUI

    try:
        ctor = getattr(torchvision.models, architecture)
    except AttributeError:
        raise ModelLoadError(f"unknown torchvision architecture {architecture!r}") from None
    return ctor(weights=None, num_classes=num_classes)


def _wrapper_class() -> type:
    import torch

    from .resize import antialiased_resize

    class Classifier(torch.nn.Module):
        def __init__(self, net: torch.nn.Module, card: ModelCard) -> None:
            super().__init__()
            self.net = net
            self.card = card
            self.register_buffer("mean", torch.tensor(card.mean).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor(card.std).view(1, 3, 1, 1))

        @property
        def class_names(self) -> tuple[str, ...]:
            return tuple(self.card.class_names)

        @property
        def device(self) -> torch.device:
            return self.mean.device

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.dim() != 4 or x.shape[1] not in (1, 3):
                raise ValueError(f"expected N x (1|3) x H x W images, got {tuple(x.shape)}")
            h, w = self.card.input_size
            if x.shape[-2:] != (h, w):
                # bilinear with antialiasing: differentiable, and a large photo is averaged
                # rather than aliased (what a careful preprocessing pipeline does). Resized
                # before a grey channel is repeated: each channel is resized on its own, so
                # the result is the same, and a 4688x2592 mammogram is resized (and its
                # gradient taken) once, not three times. See models.resize for its gradient.
                x = antialiased_resize(x, (h, w))
            if x.shape[1] == 1:
                x = x.expand(-1, 3, -1, -1)
            if self.card.channel_order.upper() == "BGR":
                x = x.flip(1)
            return self.net((x - self.mean) / self.std)

    return Classifier


_CLASSIFIER: type | None = None


def Classifier(net: Any, card: ModelCard) -> Any:  # noqa: N802 (a class built lazily)
    global _CLASSIFIER
    if _CLASSIFIER is None:
        _CLASSIFIER = _wrapper_class()
    return _CLASSIFIER(net, card)


def load_classifier(card_path: str | os.PathLike[str], device: Any = "cpu") -> Any:
    """Load a classifier from its model card (JSON). The card names the weights file:
    a TorchScript file when architecture is "torchscript", else a state_dict for the
    torchvision architecture. The model is in eval mode with parameters frozen, so
    attacks take gradients with respect to the input only."""
    import torch

    card_path = Path(card_path)
    card = ModelCard.load(card_path)
    if card.architecture == "ensemble":
        return _load_ensemble(card_path, card, device)
    weights = card_path.parent / card.weights
    if not weights.is_file():
        raise ModelLoadError(f"{card_path}: weights file {weights} not found")
    try:
        if card.architecture == "torchscript":
            net = torch.jit.load(str(weights), map_location="cpu")
        else:
            net = build_network(card.architecture, len(card.class_names))
            state = torch.load(weights, map_location="cpu", weights_only=True)
            net.load_state_dict({k: v.float() for k, v in state.items()})
    except ModelLoadError:
        raise
    except Exception as exc:
        raise ModelLoadError(f"{weights}: cannot load the weights ({exc})") from None
    if card.architecture != "torchscript":
        # channels-last weights: oneDNN's convolutions on the CPU run the batches the
        # detectors and attacks send 1.2-1.5x faster (mobilenet_v3_small, batch 8-64;
        # the same at batch 1), the probabilities equal to 4e-7. The inputs stay NCHW.
        net = net.to(memory_format=torch.channels_last)
    model = Classifier(net, card).to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def _load_ensemble(card_path: Path, card: ModelCard, device: Any) -> Any:
    """The members' Classifiers (each with its own input size and normalisation) in one
    module whose logits are the mean of theirs."""
    import torch

    if not card.members:
        raise ModelLoadError(f"{card_path}: an ensemble card lists no members")
    members = [load_classifier(card_path.parent / m, device) for m in card.members]
    for m, name in zip(members, card.members, strict=True):
        if tuple(m.class_names) != tuple(card.class_names):
            raise ModelLoadError(f"{card_path}: member {name} has classes "
                                 f"{list(m.class_names)}, not {list(card.class_names)}")

    class Ensemble(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.members = torch.nn.ModuleList(members)
            self.card = card
            self.register_buffer("_where", torch.zeros(()))

        @property
        def class_names(self) -> tuple[str, ...]:
            return tuple(card.class_names)

        @property
        def device(self) -> torch.device:
            return self._where.device

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.stack([m(x) for m in self.members]).mean(0)

    model = Ensemble().to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def predict_proba(model: Any, images: Any, batch_size: int = 16) -> Any:
    """Class probabilities (N x classes) for a batch in [0, 1], without gradients."""
    import torch

    out = []
    with torch.inference_mode():
        for i in range(0, images.shape[0], batch_size):
            out.append(torch.softmax(model(images[i:i + batch_size].to(model.device)), dim=1))
    return torch.cat(out)
