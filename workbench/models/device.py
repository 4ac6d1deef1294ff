"""Device choice: CUDA when available, else CPU. Nothing else assumes a device."""

from __future__ import annotations

from typing import Any

from .torch_import import import_torch


def available_devices() -> list[str]:
    torch = import_torch()

    out = ["cpu"]
    if torch.cuda.is_available():
        out = [f"cuda:{i}" for i in range(torch.cuda.device_count())] + out
    return out


def choose_device(preference: str = "auto") -> Any:
    """'auto' (CUDA if present, else CPU), 'cpu', 'cuda' or 'cuda:N'."""
    # often the process's first torch import, on a worker beside the GUI: see torch_import
    torch = import_torch()

    pref = (preference or "auto").lower()
    if pref == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if pref.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {preference!r} requested but CUDA is not available here")
    return torch.device(pref)
