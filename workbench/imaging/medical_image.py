"""The in-memory image every part of the workbench works on.

A :class:`MedicalImage` keeps the stored pixel values exactly as the decoder produced
them: dtype (including byte order) and shape are untouched and every frame is kept.
The array is marked read-only so that no display, analysis or attack code can change
the evidence by accident; anything derived from it is a new array.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # numpy is not imported at start-up: the GUI's first paint does not need it
    import numpy as np

ImageKind = Literal["dicom", "photo"]


@dataclass(frozen=True)
class Window:
    """A VOI window in output units (after the modality transform), as in DICOM C.11.2."""

    center: float
    width: float
    name: str = ""
    function: str = "LINEAR"  # LINEAR, LINEAR_EXACT or SIGMOID (VOI LUT Function)

    @property
    def low(self) -> float:
        return self.center - self.width / 2.0

    @property
    def high(self) -> float:
        return self.center + self.width / 2.0


@dataclass(frozen=True)
class ValueTransform:
    """The modality transform (PS3.3 C.11.1): stored value * slope + intercept, or the
    file's Modality LUT when it has one instead of a rescale."""

    slope: float = 1.0
    intercept: float = 0.0
    unit: str = ""  # "HU" for CT, else the Rescale Type / Modality LUT Type when given
    lut_first: int = 0  # first stored value mapped by the LUT
    lut: Any = field(default=None, compare=False, repr=False)  # 1-D numpy array or None

    @property
    def is_identity(self) -> bool:
        return self.lut is None and self.slope == 1.0 and self.intercept == 0.0

    def apply(self, values: Any) -> np.ndarray:
        """Output values (float64, or the LUT's entries) for stored values."""
        import numpy as np

        if self.lut is not None:
            idx = np.clip(np.asarray(values).astype(np.int64) - self.lut_first, 0,
                          len(self.lut) - 1)
            return self.lut[idx]
        return np.asarray(values, dtype=np.float64) * self.slope + self.intercept

    def output_range(self, lo: float, hi: float) -> tuple[float, float]:
        """(min, max) of the output over stored values lo..hi."""
        if self.lut is not None:
            n = len(self.lut)
            a = min(max(int(lo) - self.lut_first, 0), n - 1)
            b = min(max(int(hi) - self.lut_first, 0), n - 1)
            part = self.lut[a: b + 1]
            return float(part.min()), float(part.max())
        x, y = lo * self.slope + self.intercept, hi * self.slope + self.intercept
        return min(x, y), max(x, y)


@dataclass(eq=False)
class MedicalImage:
    """A decoded DICOM image or photo, with what is needed to display and fingerprint it."""

    path: Path
    kind: ImageKind
    pixels: np.ndarray
    n_frames: int
    samples_per_pixel: int
    photometric: str  # as decoded (pydicom converts YBR to RGB; photos are RGB or MONOCHROME2)
    stored_photometric: str  # as written in the file
    modality: str
    metadata: Any  # pydicom Dataset for DICOM, dict of EXIF/photo properties for photos
    transfer_syntax: str = ""  # UID for DICOM, format name for photos
    transfer_syntax_name: str = ""
    bits_allocated: int = 8
    bits_stored: int = 8
    pixel_representation: int = 0  # 0 unsigned, 1 signed
    value_transforms: tuple[ValueTransform, ...] = (ValueTransform(),)  # one, or one per frame
    file_windows: tuple[tuple[Window, ...], ...] = ((),)  # one tuple, or one per frame
    voi_lut: ValueTransform | None = None  # the file's VOI LUT (its lut/lut_first), if any
    orientation: int = 1  # EXIF orientation 1..8, applied for display only
    load_notes: tuple[str, ...] = ()  # what the reader had to infer or work around
    # DICOM: the data set's elements as read, before anything converted them (see
    # imaging/stored_dataset.py): what the header fingerprint hashes. None otherwise.
    stored_metadata: Any = field(default=None, repr=False)
    _value_range: tuple[float, float] | None = field(default=None, repr=False)
    # Derived display tables (e.g. the palette LUT) computed once per image.
    display_cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        # Evidence is read-only: any code that tries to write into it fails loudly.
        self.pixels.flags.writeable = False

    # --- geometry -------------------------------------------------------------------
    @property
    def is_multiframe(self) -> bool:
        return self.n_frames > 1

    @property
    def rows(self) -> int:
        return int(self.frame(0).shape[0])

    @property
    def columns(self) -> int:
        return int(self.frame(0).shape[1])

    @property
    def has_voi_lut(self) -> bool:
        return self.voi_lut is not None

    @property
    def is_color(self) -> bool:
        return self.samples_per_pixel >= 3

    @property
    def is_palette(self) -> bool:
        return self.photometric == "PALETTE COLOR"

    @property
    def inverted(self) -> bool:
        """MONOCHROME1: low values are white. Inverted on display, never in storage."""
        return self.photometric == "MONOCHROME1"

    def frame(self, index: int = 0) -> np.ndarray:
        """A view (no copy) of one frame: (rows, cols) or (rows, cols, samples)."""
        if not 0 <= index < self.n_frames:
            raise IndexError(f"frame {index} out of range 0..{self.n_frames - 1}")
        return self.pixels[index] if self.n_frames > 1 else self.pixels

    # --- value interpretation -----------------------------------------------------
    def value_transform(self, index: int = 0) -> ValueTransform:
        vt = self.value_transforms
        return vt[index] if len(vt) > 1 else vt[0]

    def windows(self, index: int = 0) -> tuple[Window, ...]:
        fw = self.file_windows
        return fw[index] if len(fw) > 1 else fw[0]

    def value_range(self) -> tuple[float, float]:
        """(min, max) of the output values (after the modality transform) over all frames."""
        if self._value_range is None:
            lo = hi = None
            for i in range(self.n_frames):
                f = self.frame(i)
                a, b = self.value_transform(i).output_range(float(f.min()), float(f.max()))
                lo = a if lo is None else min(lo, a)
                hi = b if hi is None else max(hi, b)
            self._value_range = (float(lo), float(hi))
        return self._value_range

    def default_window(self, index: int = 0) -> Window:
        """The file's first window if it has one, else the full range of the data."""
        file_windows = self.windows(index)
        if file_windows:
            return file_windows[0]
        lo, hi = self.value_range()
        if self.kind == "photo" or self.photometric in ("RGB", "PALETTE COLOR"):
            # Colour images are shown as stored unless the user asks otherwise.
            top = float(2**self.bits_stored - 1)
            return Window(center=(top + 1) / 2.0, width=top + 1, name="full scale")
        width = max(hi - lo, 1.0)
        return Window(center=lo + width / 2.0, width=width, name="data range")

    def stored_value(self, frame: int, row: int, col: int) -> np.ndarray | int | float:
        """The stored value(s) at one pixel: a scalar, or one value per sample."""
        v = self.frame(frame)[row, col]
        return v.tolist() if getattr(v, "ndim", 0) else v.item()

    def describe(self) -> dict[str, Any]:
        """A plain summary for the CLI and the GUI's status line."""
        return {
            "file": str(self.path),
            "kind": self.kind,
            "modality": self.modality,
            "size": f"{self.columns}x{self.rows}",
            "frames": self.n_frames,
            "samples": self.samples_per_pixel,
            "dtype": self.pixels.dtype.str,
            "transfer_syntax": self.transfer_syntax_name or self.transfer_syntax,
            "photometric": self.photometric
            if self.photometric == self.stored_photometric
            else f"{self.stored_photometric} (decoded as {self.photometric})",
            "window": _format_window(self.default_window(0)),
            **({"notes": list(self.load_notes)} if self.load_notes else {}),
        }


def _format_window(w: Window) -> str:
    name = f" ({w.name})" if w.name else ""
    return f"C {w.center:g} / W {w.width:g}{name}"
