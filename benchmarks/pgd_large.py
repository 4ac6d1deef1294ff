"""PGD step time on the 4688x2592 CBIS-DDSM mammogram as the GUI runs it, as a ratio to
the floor: one forward+backward of the model at its input size plus one resize of the
full-size image to that size, measured in the same run (goal: <= 3x).

The GUI's path exactly: `session.actions.attack` (the stored frame to [0, 1] at full
size, `engine.attack_runner.run_attack`, the `pgd` plugin) run on this thread with
`Job.run()`. PGD's GUI defaults (L∞, eps 0.01, random start, step 2.5 * eps / steps), but
no early stop, so every run does all --steps steps. A step's time is the gap between two
of the plugin's progress calls (one per step), median over the steps after the first of
every round; the floor's two parts are medians of --floor-runs each. The adversarial image
must still be the full-size stored grid within the L∞ budget: checked on the outcome,
then saved as the GUI saves it (imaging.export.save_derived) and read back.

The GUI's progress text is the plugin's message only ("PGD step 3/20, 1 image(s) left"):
no time left. This prints the ETA that elapsed / fraction gives, from the same calls.

Run: python3 benchmarks/pgd_large.py [--steps 20] [--rounds 3] [--device auto]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from timing import demo_session, median_time

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
MAMMOGRAM = REPO.parent / "shared" / "data" / "dicom" / "mammography" / "sfm-malign-0" / "1-282.dcm"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--floor-runs", type=int, default=9)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    if not MAMMOGRAM.is_file():
        print(f"mammogram not found at {MAMMOGRAM}: nothing to measure")
        return

    import numpy as np
    import torch
    import torch.nn.functional as F  # noqa: N812

    from workbench import api
    from workbench.engine.plugins import PluginRegistry
    from workbench.imaging import load_image
    from workbench.imaging.export import save_derived
    from workbench.imaging.model_input import to_model_input
    from workbench.session import actions

    device, model, image, session = demo_session(MAMMOGRAM, args.device)
    plugin = PluginRegistry().create("pgd")
    params = api.make_params(plugin.Params, {"steps": args.steps, "early_stop": False})
    h, w = model.card.input_size

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def attack(show: bool) -> list[float]:
        """One GUI attack; the times of the plugin's progress calls (one per step)."""
        stamps: list[float] = []
        job = actions.attack([(session, 0)], plugin, model, "demo", params, targeted=False)
        start = time.perf_counter()

        def progressed(fraction: float, message: str) -> None:
            stamps.append(time.perf_counter())
            if show and fraction > 0 and len(stamps) % 5 == 0:
                elapsed = stamps[-1] - start
                print(f"    {message}: {elapsed:5.1f} s, ETA {elapsed / fraction - elapsed:5.1f} s",
                      flush=True)

        job.progressed.connect(progressed)
        job.run()
        sync()
        return stamps

    # the floor: the network at its input size, and the resize from full size
    x_full = torch.from_numpy(to_model_input(image, 0)[0])[None].to(device)
    x_small = torch.rand(1, x_full.shape[1], h, w, device=device)
    y = torch.zeros(1, dtype=torch.long, device=device)

    def fwd_bwd_small() -> None:
        xi = x_small.detach().requires_grad_(True)
        torch.autograd.grad(F.cross_entropy(model(xi), y, reduction="sum"), xi)
        sync()

    def resize_full() -> None:
        with torch.no_grad():
            F.interpolate(x_full, size=(h, w), mode="bilinear", align_corners=False,
                          antialias=True)
        sync()

    attack(show=False)  # warm-up
    fwd_bwd_small()
    resize_full()
    steps, totals, net, resize = [], [], [], []
    for r in range(args.rounds):  # alternate so drift hits both alike
        print(f"  round {r + 1}/{args.rounds}:", flush=True)
        t = time.perf_counter()
        stamps = attack(show=True)
        totals.append(time.perf_counter() - t)
        steps.extend(np.diff(stamps[-args.steps:]).tolist())
        net.append(median_time(fwd_bwd_small, args.floor_runs))
        resize.append(median_time(resize_full, args.floor_runs))
    step, total = statistics.median(steps), statistics.median(totals)
    n, z = statistics.median(net), statistics.median(resize)
    floor = n + z

    run = session.attack
    adv = run.outcome.adversarial
    linf = float(run.outcome.linf[0])
    with tempfile.TemporaryDirectory() as tmp:
        saved = save_derived(image, adv[0].numpy(), run.mapping, Path(tmp) / "adv.dcm",
                             "benchmark")
        back = load_image(saved)
    stored = back.pixels.astype(np.int64) - image.pixels.astype(np.int64)
    budget = params.eps * (run.mapping.hi - run.mapping.lo)

    print(f"{MAMMOGRAM.name} ({image.columns}x{image.rows}, {image.pixels.dtype}), demo model "
          f"({model.card.architecture} at {h}x{w}), device {device}, torch threads "
          f"{torch.get_num_threads()}, PGD {args.steps} steps (GUI defaults, no early "
          f"stop), {args.rounds} rounds:")
    print(f"  PGD step (GUI attack path)        {step * 1000:8.1f} ms   (median of "
          f"{len(steps)} steps)")
    print(f"  whole attack job                  {total * 1000:8.0f} ms")
    print(f"  floor: fwd+bwd at {h}x{w}          {n * 1000:8.1f} ms")
    print(f"       + resize from full size      {z * 1000:8.1f} ms")
    print(f"       = {floor * 1000:.1f} ms")
    print(f"  ratio step / floor                {step / floor:8.2f}x   (goal <= 3x)")
    print(f"  adversarial {tuple(adv.shape)}, L∞ {linf:.5f} (eps {params.eps}); saved "
          f"{back.columns}x{back.rows}, max stored change {int(np.abs(stored).max())} "
          f"(budget {budget:.1f} stored units)")


if __name__ == "__main__":
    main()
