"""What Qt's xcb platform plugin needs from the system, checked before Qt loads: with a
library missing, Qt aborts with "could not load the Qt platform plugin xcb" and a core
dump, so the workbench names the Debian/Ubuntu package to install instead."""

from __future__ import annotations

import ctypes
import os
import sys

# the shared libraries Qt 6's xcb plugin loads, and the package that brings each
XCB_LIBRARIES: tuple[tuple[str, str], ...] = (
    ("libxcb-cursor.so.0", "libxcb-cursor0"),
    ("libxcb-icccm.so.4", "libxcb-icccm4"),
    ("libxcb-keysyms.so.1", "libxcb-keysyms1"),
    ("libxcb-image.so.0", "libxcb-image0"),
    ("libxcb-render-util.so.0", "libxcb-render-util0"),
    ("libxkbcommon-x11.so.0", "libxkbcommon-x11-0"),
    ("libxcb-xinerama.so.0", "libxcb-xinerama0"),
    ("libxcb-randr.so.0", "libxcb-randr0"),
    ("libxcb-shape.so.0", "libxcb-shape0"),
    ("libxcb-xkb.so.1", "libxcb-xkb1"),
)


def uses_xcb() -> bool:
    """Whether Qt will pick the xcb plugin: Linux with no other platform asked for and
    an X display (Wayland sessions fall back to xcb when Qt's wayland plugin is absent,
    so a DISPLAY is what matters)."""
    if not sys.platform.startswith("linux"):
        return False
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if platform and not platform.startswith("xcb"):
        return False
    return bool(os.environ.get("DISPLAY"))


def missing_xcb_packages(libraries: tuple[tuple[str, str], ...] | None = None) -> list[str]:
    """The packages whose libraries cannot be loaded (empty when all can); default the
    libraries of :data:`XCB_LIBRARIES`."""
    missing = []
    for soname, package in XCB_LIBRARIES if libraries is None else libraries:
        try:
            ctypes.CDLL(soname)
        except OSError:
            missing.append(package)
    return missing
