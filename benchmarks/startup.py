"""Start-up and decode figures, each as a ratio to a named peer measured in the same run.

1. Time from process start to the first paint of the main window: `workbench` vs a bare
   PySide6 QMainWindow (goal: <= 2x), and when the workbench is ready (its plugins,
   discovered after that first paint, listed). Each sample is a fresh interpreter, so
   imports are paid in full, as a user pays them.
2. Decode time of the 4688x2592 CBIS-DDSM mammogram (RLE, 16-bit): our load_image
   vs pydicom's plain `dcmread(...).pixel_array`.
3. Window/level rendering of that mammogram: full resolution and as the zoomed-out view
   renders it.

Run: python3 benchmarks/startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from timing import median_time

REPO = Path(__file__).resolve().parents[1]
MAMMOGRAM = REPO.parent / "shared" / "data" / "dicom" / "mammography" / "sfm-malign-0" / "1-282.dcm"

# Each child prints the wall-clock time at which its window has been shown and painted.
# Each child prints two wall-clock times: the first paint of its main window, and when it is
# ready (for the workbench: its plugins listed in the Attack dock, which it fills right
# after the first paint; a bare window is ready when painted).
FIRST_PAINT = """
import time
from PySide6.QtCore import QEvent, QObject, QTimer
painted = []
class FirstPaint(QObject):
    def eventFilter(self, obj, event):
        if event.type() == QEvent.Type.Paint and obj is w and not painted:
            painted.append(time.time())
        return False
"""
BARE = FIRST_PAINT + """
from PySide6.QtWidgets import QApplication, QMainWindow
app = QApplication([])
w = QMainWindow(); w.resize(1400, 900)
w.installEventFilter(watch := FirstPaint()); w.show()
def done():
    if not painted:
        return QTimer.singleShot(1, done)
    print(painted[0], painted[0], flush=True); app.quit()
QTimer.singleShot(0, done)
app.exec()
"""
WORKBENCH = FIRST_PAINT + """
from workbench.gui.app import ensure_app
from workbench.gui.main_window import MainWindow
app = ensure_app()
w = MainWindow()
w.installEventFilter(watch := FirstPaint()); w.show()
def done():
    if not painted or w.attacks.plugin_box.count() == 0:
        return QTimer.singleShot(1, done)
    print(painted[0], time.time(), flush=True); app.quit()
QTimer.singleShot(0, done)
app.exec()
"""


def time_to_window(code: str, pycache: str | None = None) -> tuple[float, float]:
    """(first paint, ready) in seconds from process start. ``pycache``: a folder for the
    compiled bytecode (the children write and then read it there, as after a regular pip
    install); None: this shell's environment as it is (here PYTHONDONTWRITEBYTECODE=1, so
    an editable install compiles every module of ours from source at every start)."""
    env = dict(os.environ)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    env.setdefault("WORKBENCH_HOME", str(REPO / ".bench_home"))
    if pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = pycache
    start = time.time()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=True, timeout=120)
    painted, ready = (float(t) for t in out.stdout.strip().splitlines()[-1].split())
    return painted - start, ready - start




def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="wb_pycache_") as pycache:
        time_to_window(BARE, pycache), time_to_window(WORKBENCH, pycache)  # write bytecode
        dont_write = os.environ.get("PYTHONDONTWRITEBYTECODE")
        for label, cache in (("bytecode cached (as a regular install leaves it)", pycache),
                             ("this environment as set (PYTHONDONTWRITEBYTECODE="
                              f"{dont_write or 'unset'})", None)):
            # interleaved, so that a busy spell of the machine hits both alike
            runs = [(time_to_window(BARE, cache), time_to_window(WORKBENCH, cache))
                    for _ in range(args.runs)]
            bare = statistics.median(b[0] for b, _ in runs)
            ours = statistics.median(o[0] for _, o in runs)
            ready = statistics.median(o[1] for _, o in runs)
            print(f"start-up to the first paint of the window, {label} (median of "
                  f"{args.runs}, QPA {os.environ.get('QT_QPA_PLATFORM', 'offscreen')}):")
            print(f"  bare PySide6 QMainWindow  {bare * 1000:8.0f} ms")
            print(f"  workbench MainWindow      {ours * 1000:8.0f} ms")
            print(f"  ratio workbench / bare    {ours / bare:8.2f}x   (goal <= 2x)")
            print(f"  workbench ready (plugins listed) {ready * 1000:8.0f} ms = "
                  f"{ready / bare:.2f}x bare")

    if not MAMMOGRAM.is_file():
        print(f"mammogram not found at {MAMMOGRAM}: decode figures skipped")
        return
    import pydicom

    from workbench.imaging import load_image
    from workbench.imaging.display import render

    peer = median_time(lambda: pydicom.dcmread(MAMMOGRAM).pixel_array, args.runs)
    image = load_image(MAMMOGRAM)
    mine = median_time(lambda: load_image(MAMMOGRAM), args.runs)
    print(f"decode {MAMMOGRAM.name} ({image.columns}x{image.rows}, {image.pixels.dtype}, "
          f"{image.transfer_syntax_name}), median of {args.runs}:")
    print(f"  pydicom dcmread().pixel_array {peer * 1000:8.0f} ms")
    print(f"  workbench load_image          {mine * 1000:8.0f} ms")
    print(f"  ratio workbench / pydicom     {mine / peer:8.2f}x")
    full = median_time(lambda: render(image), args.runs)
    gray = median_time(lambda: render(image, gray=True), args.runs)
    view = median_time(lambda: render(image, gray=True, step=5), args.runs)
    print("window/level render of the mammogram:")
    print(f"  full-resolution RGB           {full * 1000:8.1f} ms")
    print(f"  full-resolution grey (GUI)    {gray * 1000:8.1f} ms")
    print(f"  fit-to-window view (step 5)   {view * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
