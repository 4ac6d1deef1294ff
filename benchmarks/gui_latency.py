"""GUI responsiveness: the longest the event loop goes without turning, while the real
window does real work, as a ratio to the 100 ms goal; and the memory an open costs.

1. Event-loop gaps. One `MainWindow` (offscreen QPA, WORKBENCH_HOME a temp folder), shown
   at 1400x900 so it paints. A 10 ms QTimer stamps every tick; a gap is the time between
   two ticks (or between the start of an activity and its first tick), so any work the
   GUI thread does in one go (a render, a QImage, a signal storm of progress repaints)
   shows as a gap of that length. Each activity is driven through the GUI's own paths,
   the calls the menus, buttons and docks make, and is measured from its start until its
   result is on screen plus a settle time (the paints that follow a result count):

     open photo        File > Open of a 1022x767 ISIC dermoscopy photo (decode, verify)
     load model        the Model dock loading the demo model
     detectors         Detectors dock, "Run" on the photo, then each detector's evidence
                       map opened as a click on its row does
     PGD photo         Attack dock, PGD with its form's defaults, "Run on current image"
     open mammogram    the 4688x2592 16-bit CBIS-DDSM mammogram (RLE)
     PGD mammogram     PGD on it, at its own grid (--mammo-steps iterations)
     sign + verify     a copy of the mammogram signed with a generated key (Sign Current
                       Image, which verifies after), then Verify Current Image
     open cine         a 120-frame cine (pydicom's color3d_jpeg_baseline, 640x480 RGB
                       JPEG; built by repeating frames of a real multi-frame file when
                       it is absent)
     play cine         every frame shown in turn at 30 frames/s, as the frame slider does
     open folder       File > Open Folder of an archive (--folder-files small CTs in series
                       folders, named alike), until every entry has its provenance badge

   Per activity: the largest gap, the 99th percentile gap, the number of ticks and the
   ratio largest gap / 100 ms (goal <= 1). Peer: the same timer on the same window left
   idle, in the same run (the bare event loop's own jitter on this machine).
   --explain samples the GUI thread's stack from a watchdog thread whenever a tick is
   late, and prints where the longest stalls were (to find them, not to time them), and
   every garbage collection of 15 ms or more (they hold the GIL: every thread stops).

2. Peak memory of an open, in a fresh interpreter for each file: the window is shown and
   idle, its resident size is the baseline, the peak is reset (/proc/self/clear_refs),
   the file is opened as File > Open does (decoded, shown, verified), and the peak
   (VmHWM) minus the baseline is printed as a ratio to the decoded pixel array's size
   (goal <= 3x: the decode's own buffers, the rendering, the hashes).

Run: python3 benchmarks/gui_latency.py [--mammo-steps 5] [--explain] [--skip-memory]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
MAMMOGRAM = SHARED / "dicom" / "mammography" / "sfm-malign-0" / "1-282.dcm"
PHOTO = SHARED / "dermoscopy" / "isic" / "images" / "ISIC_0000002.jpg"
CINE = SHARED / "dicom" / "pydicom-data" / "color3d_jpeg_baseline.dcm"
CINE_FRAMES = 120
GOAL_MS = 100.0
TICK_MS = 10
PASSPHRASE = "gui latency benchmark"


def archive_folder(tmp: Path, n: int) -> Path:
    """``n`` small CTs (links to pydicom's CT_small) in series folders of 100, without
    suffixes and named alike in every folder, as a modality writes them: listed, then each
    verified in the background for its badge."""
    from pydicom.data import get_testdata_file

    src = get_testdata_file("CT_small.dcm", download=False)
    folder = tmp / "archive"
    for i in range(n):
        series = folder / f"series{i // 100:02d}"
        series.mkdir(parents=True, exist_ok=True)
        os.link(src, series / f"IM{i % 100:04d}")
    return folder


def cine_file(tmp: Path) -> Path:
    """A real multi-frame DICOM with at least 120 frames: the shared copy of pydicom's
    120-frame colour JPEG, else one built from a real multi-frame file by repeating its
    frames (native, little endian), saved in ``tmp``."""
    import pydicom

    if CINE.is_file() and int(pydicom.dcmread(CINE, stop_before_pixels=True)
                              .get("NumberOfFrames", 1)) >= CINE_FRAMES:
        return CINE
    import numpy as np
    from pydicom.data import get_testdata_file
    from pydicom.uid import ExplicitVRLittleEndian

    ds = pydicom.dcmread(get_testdata_file("emri_small.dcm"))
    frames = ds.pixel_array
    arr = np.concatenate([frames] * (CINE_FRAMES // len(frames) + 1))[:CINE_FRAMES]
    ds.PixelData = np.ascontiguousarray(arr).tobytes()
    ds.NumberOfFrames = CINE_FRAMES
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    out = tmp / "cine_120.dcm"
    ds.save_as(out, enforce_file_format=True)
    return out


# --- event-loop gaps -------------------------------------------------------------------------
class Stall:
    """Where the GUI thread was while a tick was late (sampled by a watchdog thread)."""

    def __init__(self) -> None:
        self.samples: dict[str, int] = {}


def _where(frame: object) -> str:
    """The innermost frames of ours (workbench/, benchmarks/) and the frame that runs."""
    stack = traceback.extract_stack(frame)  # type: ignore[arg-type]
    ours = [f for f in stack if ("/workbench/" in f.filename or "/plugins/" in f.filename)
            and "/gui_latency" not in f.filename]
    tail = ours[-3:] if ours else stack[-2:]
    return " <- ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(tail))


class GapMeter:
    """A 10 ms QTimer whose ticks are stamped; a watchdog samples the GUI thread's stack
    when a tick is overdue by more than ``explain_after`` (when asked to)."""

    def __init__(self, app: object, explain: bool) -> None:
        from PySide6.QtCore import QTimer

        self.app = app
        self.timer = QTimer()
        self.timer.setInterval(TICK_MS)
        self.timer.setTimerType(self.timer.timerType().PreciseTimer)
        self.timer.timeout.connect(self._tick)
        self.ticks: list[float] = []
        self.on_tick: Callable[[], None] | None = None
        self.explain = explain
        self.stalls: dict[str, list[float]] = {}  # where -> how late each sample was (s)
        self._main = threading.get_ident()
        self._watching = False
        # full collections hold the GIL for as long as they scan: name them (--explain)
        self.collections: list[tuple[int, float, int]] = []  # (generation, s, objects)
        self._gc_start = 0.0
        if explain:
            import gc

            gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._gc_start = time.perf_counter()
        elif (took := time.perf_counter() - self._gc_start) >= 0.015:
            import gc

            self.collections.append((info["generation"], took, len(gc.get_objects())))

    def _tick(self) -> None:
        self.ticks.append(time.perf_counter())
        if self.on_tick is not None:
            self.on_tick()

    def _watch(self) -> None:
        while self._watching:
            time.sleep(0.02)
            last = self.ticks[-1] if self.ticks else None
            late = time.perf_counter() - last if last is not None else 0.0
            if late > GOAL_MS / 1000 * 0.8:
                frames = sys._current_frames()
                where = _where(frames[self._main]) if self._main in frames else "?"
                if "gui_latency.py" in where.split(" <- ")[0]:
                    # in Qt's own code, or waiting for the GIL: name what the others run
                    where = "event loop; others: " + " | ".join(
                        _where(f) for t, f in frames.items()
                        if t not in (self._main, threading.get_ident()))
                del frames  # a frame kept alive keeps its QPainter open
                self.stalls.setdefault(where, []).append(late)

    def measure(self, start: Callable[[], object], done: Callable[[], bool], *,
                timeout_s: float = 600.0, settle_s: float = 0.5) -> dict[str, float]:
        """Run ``start()`` in the event loop and measure the gaps until ``done()`` has held
        for ``settle_s`` (the paints that follow a result count)."""
        from PySide6.QtCore import QEventLoop, QTimer

        loop = QEventLoop()
        self.ticks = []
        state: dict[str, float] = {}

        def check() -> None:
            now = time.perf_counter()
            if "done" not in state and done():
                state["done"] = now
            if "done" in state and now - state["done"] >= settle_s:
                loop.quit()
            elif now - state["t0"] > timeout_s:
                state["timed_out"] = 1.0
                loop.quit()

        def begin() -> None:
            state["t0"] = time.perf_counter()
            self.ticks.append(state["t0"])
            self.timer.start()
            start()

        self.on_tick = check
        self._watching = self.explain
        watchdog = threading.Thread(target=self._watch, daemon=True)
        if self.explain:
            watchdog.start()
        QTimer.singleShot(0, begin)
        loop.exec()
        self.timer.stop()
        self._watching = False
        if self.explain:
            watchdog.join()
        self.on_tick = None
        gaps = [b - a for a, b in zip(self.ticks, self.ticks[1:], strict=False)]
        gaps.sort()
        p99 = gaps[min(len(gaps) - 1, int(round(0.99 * (len(gaps) - 1))))] if gaps else 0.0
        return {"max": gaps[-1] if gaps else 0.0, "p99": p99, "ticks": len(gaps),
                "seconds": self.ticks[-1] - state["t0"] if self.ticks else 0.0,
                "timed_out": state.get("timed_out", 0.0)}


def latency(args: argparse.Namespace, tmp: Path) -> None:
    from workbench.gui.app import ensure_app
    from workbench.gui.main_window import MainWindow
    from workbench.provenance.records import keys

    app = ensure_app()
    w = MainWindow()
    w.resize(1400, 900)
    w.show()
    meter = GapMeter(app, args.explain)
    # the window's after-first-paint work (plugins, preferences) is not what we time
    meter.measure(lambda: None, lambda: w.attacks.plugin_box.count() > 0, settle_s=1.0)
    rows: list[tuple[str, dict[str, float]]] = []

    def run(label: str, start: Callable[[], object], done: Callable[[], bool],
            **kw: float) -> None:
        meter.stalls, meter.collections = {}, []
        profiler = None
        if args.profile and label.startswith(args.profile):
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        stats = meter.measure(start, done, **kw)
        if profiler is not None:
            import pstats

            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
        rows.append((label, stats))
        flag = "  TIMED OUT" if stats["timed_out"] else ""
        print(f"  {label:<16} max {stats['max'] * 1000:7.1f} ms  p99 {stats['p99'] * 1000:6.1f} ms"
              f"  {stats['ticks']:6d} ticks in {stats['seconds']:6.1f} s  "
              f"ratio {stats['max'] * 1000 / GOAL_MS:5.2f}x{flag}", flush=True)
        if meter.stalls:
            worst = sorted(meter.stalls.items(), key=lambda kv: -max(kv[1]))[:6]
            for where, lates in worst:
                print(f"      stalled {max(lates) * 1000:6.0f} ms ({len(lates)} samples) in "
                      f"{where}")
        for generation, took, objects in meter.collections:
            print(f"      garbage collection (generation {generation}) {took * 1000:6.0f} ms "
                  f"over {objects} tracked objects")

    def shown(path: Path) -> Callable[[], bool]:
        def ok() -> bool:
            s = w.study.get(str(path))
            return (s is not None and s.image is not None and w.view.image is s.image
                    and s.verification is not None and not w.runner.jobs())
        return ok

    print(f"event-loop gaps of a {TICK_MS} ms QTimer in the real window "
          f"(QPA {os.environ.get('QT_QPA_PLATFORM')}, goal: max <= {GOAL_MS:.0f} ms):",
          flush=True)
    run("idle (peer)", lambda: None, lambda: True, settle_s=args.idle)

    run("open photo", lambda: w.open_paths([PHOTO]), shown(PHOTO))
    run("load model", lambda: w.models.load_model("demo"),
        lambda: w.study.model is not None and w.models.loading is None)
    photo = w.study.get(str(PHOTO))

    def detectors() -> None:
        w.detectors.run_button.click()

    def evidence_shown() -> bool:
        f = photo.findings
        return w.detectors.job is None and f is not None and f.complete

    run("detectors", detectors, evidence_shown)

    def open_maps() -> None:  # a click on each row with a map, one per event-loop turn
        from PySide6.QtCore import QTimer

        names = [n for n, o in photo.findings.outcomes.items() if o.evidence is not None]
        for i, name in enumerate(names):
            QTimer.singleShot(50 * i, lambda n=name: w.show_evidence(photo, n))
        state["maps"] = len(names)
        state["t"] = time.perf_counter()

    state: dict[str, float] = {}
    run("evidence maps", open_maps,
        lambda: time.perf_counter() - state["t"] > 0.05 * state["maps"] + 0.1)

    def pgd(steps: int | None) -> Callable[[], None]:
        def go() -> None:
            ap = w.attacks
            ap.plugin_box.setCurrentIndex(ap.plugin_box.findData("pgd"))
            if steps is not None:
                ap.form.set_value("steps", steps)
            ap.run_current.click()
        return go

    def attacked(path: Path) -> Callable[[], bool]:
        def ok() -> bool:
            s = w.study.get(str(path))
            return (w.attacks.job is None and s.attack is not None
                    and w.result_view.result is s.attack)
        return ok

    run("PGD photo", pgd(None), attacked(PHOTO))
    run("open mammogram", lambda: w.open_paths([MAMMOGRAM]), shown(MAMMOGRAM))
    run("PGD mammogram", pgd(args.mammo_steps), attacked(MAMMOGRAM))

    # signing: a copy (a record is written beside the file), a key whose passphrase is in
    # the environment as a scripted session gives it
    os.environ[keys.PASSPHRASE_ENV] = PASSPHRASE
    keys.generate_key(PASSPHRASE, label="gui latency benchmark")
    copy = tmp / "mammogram_copy.dcm"
    shutil.copy(MAMMOGRAM, copy)
    os.chmod(copy, 0o644)
    w.open_paths([copy])
    meter.measure(lambda: None, shown(copy), settle_s=0.2)  # opened: not what we time

    def intact() -> bool:
        s = w.study.get(str(copy))
        return (str(copy) not in w.signing.running and s.verification is not None
                and s.verification.verdict == "intact")

    run("sign + verify", w.sign_current, intact)
    started: dict[str, object] = {}

    def verify() -> None:
        started["v"] = w.study.get(str(copy)).verification
        w.verify_current()

    run("verify", verify, lambda: str(copy) not in w.signing.running
        and w.study.get(str(copy)).verification is not started["v"])

    cine = cine_file(tmp)
    run("open cine", lambda: w.open_paths([cine]), shown(cine))
    from PySide6.QtCore import QTimer

    player = QTimer()
    player.setInterval(33)
    slider = w.image_page.frame_slider

    def next_frame() -> None:
        if slider.value() >= slider.maximum():
            player.stop()
        else:
            slider.setValue(slider.value() + 1)  # what the slider, or a play button, does

    player.timeout.connect(next_frame)
    n = w.view.image.n_frames
    run(f"play cine ({n} fr)", player.start,
        lambda: w.view.frame == n - 1 and not player.isActive())

    folder = archive_folder(tmp, args.folder_files)
    listed: list[str] = []
    run(f"open folder ({args.folder_files})", lambda: listed.extend(w.open_paths([folder])),
        lambda: bool(listed) and not w.runner.jobs() and all(
            w.study_list.badge(p) not in ("", "verifying…") for p in listed))

    idle = rows[0][1]["max"]
    print(f"  peer: the idle loop's largest gap is {idle * 1000:.1f} ms; worst activity "
          f"{max(s['max'] for _l, s in rows[1:]) * 1000:.1f} ms = "
          f"{max(s['max'] for _l, s in rows[1:]) / max(idle, 1e-3):.1f}x idle", flush=True)
    w.close()


# --- peak memory of an open ------------------------------------------------------------------
MEMORY_CHILD = r"""
import gc, json, sys, time
from PySide6.QtCore import QEventLoop, QTimer
from workbench.gui.app import ensure_app
from workbench.gui.main_window import MainWindow

def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)

def wait(cond, settle=0.5, timeout=300):
    loop, t0, seen = QEventLoop(), time.monotonic(), {}
    def check():
        now = time.monotonic()
        if "t" not in seen and cond():
            seen["t"] = now
        if ("t" in seen and now - seen["t"] >= settle) or now - t0 > timeout:
            loop.quit()
        else:
            QTimer.singleShot(10, check)
    QTimer.singleShot(0, check)
    loop.exec()

def opened(path):
    s = w.study.get(path)
    return (s is not None and s.image is not None and w.view.image is s.image
            and s.verification is not None and path not in w.signing.running
            and not w.runner.jobs())  # the classify an open starts, too

path, warm, model = sys.argv[1], sys.argv[2], sys.argv[3] == "model"
app = ensure_app()
w = MainWindow(); w.resize(1400, 900); w.show()
wait(lambda: w.attacks.plugin_box.count() > 0, settle=1.0)
if model:
    w.models.load_model("demo")
    wait(lambda: w.study.model is not None and w.models.loading is None)
# a small file of the same kind first: the libraries its decode imports are not the cost
# of this file
w.open_paths([warm])
wait(lambda: opened(warm))
gc.collect()
baseline = status("VmRSS")
reset = True
try:
    with open("/proc/self/clear_refs", "w") as f:  # peak := current (Linux >= 4.0)
        f.write("5")
except OSError:
    reset = False
w.open_paths([path])
wait(lambda: opened(path))
image = w.study.get(path).image
print(json.dumps({"baseline": baseline, "peak": status("VmHWM"), "rss": status("VmRSS"),
                  "pixels": image.pixels.nbytes, "shape": list(image.pixels.shape),
                  "dtype": str(image.pixels.dtype), "reset": reset}))
"""


def warm_up_file(path: Path) -> Path:
    """A small file decoded the same way as ``path`` (same transfer syntax family)."""
    import pydicom
    from pydicom.data import get_testdata_file

    ts = pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID
    name = ("emri_small_RLE.dcm" if ts.name == "RLE Lossless" else
            "SC_rgb_small_odd_jpeg.dcm" if ts.is_compressed else "emri_small.dcm")
    shared = SHARED / "dicom" / "pydicom-data" / name  # the data sets pydicom downloads
    return shared if shared.is_file() else Path(get_testdata_file(name))


def memory(tmp: Path) -> None:
    print("peak resident memory of an open, each in a fresh interpreter with a fresh home, "
          "after a small file of the same kind (goal: <= 3x the decoded pixels):", flush=True)
    mb = 1 << 20
    for model in ("none", "model"):
        for label, path in (("mammogram", MAMMOGRAM), ("120-frame cine", cine_file(tmp))):
            env = dict(os.environ, WORKBENCH_HOME=str(tmp / f"home_{label[:4]}_{model}"))
            out = subprocess.run([sys.executable, "-c", MEMORY_CHILD, str(path),
                                  str(warm_up_file(path)), model], env=env,
                                 capture_output=True, text=True, timeout=600)
            if out.returncode != 0:
                print(f"  {label}: failed\n{out.stderr[-2000:]}")
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            grew, after = r["peak"] - r["baseline"], r["rss"] - r["baseline"]
            note = "" if r["reset"] else " (peak not reset: includes start-up)"
            with_model = "demo model loaded (the open classifies)" if model == "model" \
                else "no model"
            print(f"  {label:<15} {with_model}: pixels {tuple(r['shape'])} {r['dtype']} = "
                  f"{r['pixels'] / mb:.1f} MiB, window baseline {r['baseline'] / mb:.0f} MiB")
            print(f"  {'':<15} peak - baseline {grew / mb:6.1f} MiB = ratio "
                  f"{grew / r['pixels']:5.2f}x; kept after the open {after / mb:6.1f} MiB = "
                  f"{after / r['pixels']:5.2f}x{note}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mammo-steps", type=int, default=5,
                    help="PGD iterations on the mammogram (each is seconds on a CPU)")
    ap.add_argument("--idle", type=float, default=3.0, help="seconds of the idle peer")
    ap.add_argument("--folder-files", type=int, default=500,
                    help="files in the archive folder opened at the end")
    ap.add_argument("--explain", action="store_true",
                    help="sample the GUI thread's stack while a tick is late")
    ap.add_argument("--profile", metavar="ACTIVITY",
                    help="cProfile the GUI thread during the activity whose label starts so")
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument("--skip-memory", action="store_true")
    args = ap.parse_args()
    for p in (MAMMOGRAM, PHOTO):
        if not p.is_file():
            sys.exit(f"{p} not found")
    with tempfile.TemporaryDirectory(prefix="wb_gui_latency_") as tmp:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        os.environ["WORKBENCH_HOME"] = str(Path(tmp) / "home")
        sys.path.insert(0, str(REPO))
        if not args.skip_latency:
            latency(args, Path(tmp))
        if not args.skip_memory:
            memory(Path(tmp))


if __name__ == "__main__":
    main()
