"""Named models: ``demo`` (the shipped melanoma-vs-nevus dermoscopy classifier),
``cxr`` (the shipped normal-vs-viral-pneumonia chest X-ray classifier), each with an
independently trained ``-surrogate`` for black-box attacks; or a path to a model card."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .card import ModelLoadError

NAMED = {"demo": "demo_melanoma.json", "demo-surrogate": "demo_surrogate.json",
         "cxr": "cxr_pneumonia.json", "cxr-surrogate": "cxr_surrogate.json"}
SURROGATE_SUFFIX = "-surrogate"


def models_dir() -> Path:
    """``resources/models`` of the checkout (or of the installed ``resources`` package)."""
    here = Path(__file__).resolve().parents[2] / "resources" / "models"
    if here.is_dir():
        return here
    import importlib.util

    spec = importlib.util.find_spec("resources")
    if spec and spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0]) / "models"
    return here


def resolve_card(name_or_path: str | os.PathLike[str]) -> Path:
    """The model card of a named model, a card file, or a weights file with its card
    (same stem, .json) beside it."""
    key = str(name_or_path)
    if key in NAMED:
        path = models_dir() / NAMED[key]
        if not path.is_file():
            raise ModelLoadError(f"the {key} model is not installed ({path} missing; train it "
                                 "with 'python -m workbench.training')")
        return path
    p = Path(key)
    if p.suffix.lower() == ".json" and p.is_file():
        return p
    if p.is_file() and p.with_suffix(".json").is_file():
        return p.with_suffix(".json")
    if p.is_file():
        raise ModelLoadError(f"{p}: no model card beside it ({p.with_suffix('.json').name}); "
                             "a card says the input size, normalisation and classes")
    raise ModelLoadError(f"{key}: no such model (use {', '.join(NAMED)}, or a card path)")


def load_model(name_or_path: str | os.PathLike[str], device: Any = "cpu") -> Any:
    from .classifier import load_classifier

    return load_classifier(resolve_card(name_or_path), device)


def fitting_model(image: Any) -> str | None:
    """The first named victim model whose card says it fits ``image`` (``--model auto``),
    or None when no shipped model does. Surrogates exist to attack with, not to read."""
    from .card import ModelCard
    from .fit import fit_problem

    for name in (n for n in NAMED if not n.endswith(SURROGATE_SUFFIX)):
        try:
            card = ModelCard.load(resolve_card(name))
        except ModelLoadError:
            continue  # not installed: the others may still fit
        if fit_problem(card, image) is None:
            return name
    return None
