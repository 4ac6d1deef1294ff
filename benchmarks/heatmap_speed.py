"""The difference map of the 4688x2592 mammogram against a one-pixel-changed copy, as a
ratio to a bare numpy abs-diff of the same arrays (goal <= 3x).

Run: python3 benchmarks/heatmap_speed.py [--runs N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from timing import median_time  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MAMMOGRAM = REPO.parent / "shared" / "data" / "dicom" / "mammography" / "sfm-malign-0" / "1-282.dcm"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    from workbench.analysis.difference import abs_difference
    from workbench.analysis.perturbation import heatmap_rgb
    from workbench.imaging import load_image

    a = np.asarray(load_image(MAMMOGRAM).pixels)
    b = a.copy()
    b[1000, 700] ^= 1
    peer = median_time(lambda: np.abs(np.subtract(b, a, dtype=np.int32)), args.runs)
    ours = median_time(lambda: abs_difference(a, b), args.runs)
    full = median_time(lambda: heatmap_rgb(abs_difference(a, b)), args.runs)
    print(f"difference map of {MAMMOGRAM.name} ({a.shape[1]}x{a.shape[0]} {a.dtype}), "
          f"median of {args.runs}:")
    print(f"  numpy abs(b - a) in int32        {peer * 1000:7.1f} ms")
    print(f"  workbench abs_difference         {ours * 1000:7.1f} ms")
    print(f"  ratio ours / numpy               {ours / peer:7.2f}   (goal <= 3x)")
    print(f"  with the colour map (heatmap)    {full * 1000:7.1f} ms  ({full / peer:.2f}x)")


if __name__ == "__main__":
    main()
