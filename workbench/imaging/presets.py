"""Standard window presets (centre/width in Hounsfield units) for CT."""

from __future__ import annotations

from .medical_image import Window

PRESETS_CT: tuple[Window, ...] = (
    Window(40, 400, "soft tissue"),
    Window(-600, 1500, "lung"),
    Window(480, 2500, "bone"),
    Window(40, 80, "brain"),
)
