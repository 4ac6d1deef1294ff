"""How long a reviewer waits for the detectors' verdicts, each figure as a ratio to one
forward pass of the model on the same image measured in the same run.

A 1022x767 ISIC dermoscopy photo and the demo model. Every detector plugin that loads, run
as the GUI's Detectors dock runs them: `session.actions.detect` (each detector through
`engine.calibration.run_calibrated`, judged by the threshold that applies), in the dock's
fast-first order (`gui.docks.detectors.fast_first`): on a first run, the detectors that
make no model call come first; after that, by each one's last measured time. Times are
wall clock from the job's start to each finding landing (creating the plugin, the
threshold look-up and the engine's checks included), medians over rounds.

The peer: one forward pass as the GUI's classify job does it (`session.actions.classify`:
the stored pixels to [0, 1], the model's antialiased resize to its input size, the network,
softmax), median of --forward-runs.

Run: python3 benchmarks/detector_latency.py [--rounds 3] [--forward-runs 9] [--device cpu]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from timing import demo_session

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
# the shipped calibrations, not whatever this machine's user calibrated
os.environ.setdefault("WORKBENCH_HOME", str(REPO / ".bench_home"))
ISIC = REPO.parent / "shared" / "data" / "dermoscopy" / "isic" / "images"
SIZE = (1022, 767)  # width x height, as PIL gives it


def pick_photo() -> Path | None:
    """The first ISIC photo (by name) that is 1022x767."""
    from PIL import Image

    for path in sorted(ISIC.glob("*.jp*g")):
        with Image.open(path) as im:
            if im.size == SIZE:
                return path
    return None


def run_detectors(session, infos, model) -> tuple[list[tuple[str, float, object]], float]:
    """One Detectors-dock run: [(name, seconds from start to its finding, outcome or the
    failure message)] in the order they landed, and the total."""
    from workbench.session import actions

    landed: list[tuple[str, float, object]] = []
    job = actions.detect(session, infos, model, "demo")
    start = time.perf_counter()
    job.published.connect(lambda item: landed.append(
        (item[0] if isinstance(item[0], str) else item[0].name,
         time.perf_counter() - start, item[1] if isinstance(item[0], str) else item[0])))
    job.run()
    return landed, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--forward-runs", type=int, default=9)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()

    path = pick_photo()
    if path is None:
        print(f"no {SIZE[0]}x{SIZE[1]} photo under {ISIC}: nothing to measure")
        return
    import torch

    from workbench.engine.plugins import PluginRegistry
    from workbench.gui.docks.detectors import fast_first
    from workbench.session import actions

    device, model, image, session = demo_session(path, args.device)
    infos = [p for p in PluginRegistry().detectors() if p.ok]  # the dock's list

    def forward() -> None:
        actions.classify(session, model, "demo").run()
        if device.type == "cuda":
            torch.cuda.synchronize()

    forward()  # warm-up (first call pays for lazy set-up)
    fwd = []
    for _ in range(args.forward_runs):
        t = time.perf_counter()
        forward()
        fwd.append(time.perf_counter() - t)
    f = statistics.median(fwd)

    # first run: the dock has measured nothing yet; later runs: ordered by the last times
    seconds: dict[str, float] = {}
    first_order = [i.name for i in fast_first(infos, seconds)]
    runs = []
    for r in range(args.rounds + 1):
        landed, total = run_detectors(session, fast_first(infos, seconds), model)
        runs.append((landed, total))
        for name, _t, out in landed:
            if not isinstance(out, str):
                seconds[name] = out.seconds  # what the dock remembers (engine's time)
        print(f"  run {r + 1}/{args.rounds + 1}: {len(landed)} findings in {total:.2f} s",
              flush=True)
    cold, warm = runs[0], runs[1:]  # the first run also pays the plugins' lazy imports

    def own_times(run):  # each detector's own share: time since the one before it landed
        landed, _ = run
        out, prev = {}, 0.0
        for name, t, _o in landed:
            out[name] = t - prev
            prev = t
        return out

    per = {name: statistics.median(own_times(run)[name] for run in warm)
           for name, _t, _o in warm[0][0]}
    print(f"{path.name} ({image.columns}x{image.rows}), demo model "
          f"({model.card.architecture}, {model.card.input_size[0]}x"
          f"{model.card.input_size[1]}), device {device}, {len(infos)} detectors, "
          f"medians of {args.rounds} runs after a first one:")
    print(f"  one forward pass (classify job)  {f * 1000:8.1f} ms   (median of "
          f"{args.forward_runs})")
    print(f"  {'detector':28s} {'needs model':>11s} {'time':>9s} {'ratio':>8s}  verdict")
    needs = {i.name: "model" in i.needs for i in infos}
    last = {name: out for name, _t, out in warm[-1][0]}
    for name in sorted(per, key=per.get):
        out = last[name]
        verdict = out if isinstance(out, str) else out.verdict
        print(f"  {name:28s} {'yes' if needs.get(name) else 'no':>11s} "
              f"{per[name] * 1000:7.1f} ms {per[name] / f:7.2f}x  {verdict.splitlines()[0][:40]}")

    def headline(label: str, run_list, order: list[str]) -> None:
        first = statistics.median(landed[0][1] for landed, _ in run_list)
        fast = [n for n in order if not needs.get(n)]
        fast_done = statistics.median(max(t for n, t, _o in landed if n in fast)
                                      for landed, _ in run_list) if fast else float("nan")
        total = statistics.median(t for _, t in run_list)
        print(f"  {label}:")
        print(f"    first verdict ({order[0]})".ljust(44)
              + f"{first * 1000:8.1f} ms {first / f:7.2f}x forward")
        print(f"    verdicts of the {len(fast)} model-free detectors".ljust(44)
              + f"{fast_done * 1000:8.1f} ms {fast_done / f:7.2f}x forward")
        print(f"    all {len(order)} verdicts".ljust(44)
              + f"{total * 1000:8.1f} ms {total / f:7.2f}x forward")

    headline("first run of the session (model-free first; pays lazy imports)", [cold],
             first_order)
    headline("later runs (ordered by last measured time)", warm,
             [n for n, _t, _o in warm[-1][0]])


if __name__ == "__main__":
    main()
