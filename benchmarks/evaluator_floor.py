"""The evaluator against its floor: a Table-1 style run on the ISIC test split with the demo
model and its surrogate, each condition's wall time as a ratio to the model passes it
needs at the working size (goal: at most 2x).

    python benchmarks/evaluator_floor.py [--limit N] [--detectors] [--no-de]

The floor of a unit is n_forward_images * t_forward + n_forward_backward_images *
t_forward_backward, per model (victim, surrogate): the images the unit sends through each
model, counted by a forward pre-hook here (grad enabled = a forward that gets a backward),
times the per-image cost of a plain forward (inference mode) and of a forward + input
gradient, measured once on this machine at the working size and the run's batch size.
Everything else a unit does (decoding, the attack's own arithmetic, DE's bookkeeping,
Python) is what the ratio charges. Detectors are timed apart and left out of both sides
(they are per-image analyses, not model passes of the attack), and so is the evaluator's
own pricing of its floor (units._per_image_cost, once per process and batch size); the
last column keeps them in.

It also prints what decoding and resizing cost: once for every image (what a run pays
with the per-process image cache) against once per condition (what it paid without).
Units are computed here in this process, one after another, as the in-process engine
does; nothing is written to disk.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workbench.evaluation import units as U  # noqa: E402
from workbench.evaluation.runner import EvalSpec, prepare  # noqa: E402

# WORKBENCH_SHARED_DATA: the shared data when this checkout is not beside it (a worktree
# of an older commit, to time the evaluator before a change)
SHARED = Path(os.environ.get("WORKBENCH_SHARED_DATA", ROOT.parent / "shared" / "data"))
ISIC = SHARED / "dermoscopy" / "isic"
PGD = {"eps": 0.01, "steps": 20, "early_stop": False}  # Finlayson et al.: 0.02 on [-1, 1]
ATTACKS = [
    {"name": "pgd", "params": PGD},
    {"name": "fgsm", "params": {"eps": 0.01}},
    {"name": "colour-balance", "params": {}},
    {"name": "rotation-translation", "params": {}},
]
DETECTORS = [{"name": "feature-squeezing", "params": {}}]


def per_image_costs(model: object, x: object, runs: int = 5) -> tuple[float, float]:
    """(forward, forward + input gradient) seconds per image for the batch ``x``: the
    median of ``runs`` after one warm-up, as the attacks call the model (inference mode
    for a plain forward; gradient with respect to the input only)."""
    import torch
    import torch.nn.functional as F  # noqa: N812

    def fwd() -> None:
        with torch.inference_mode():
            model(x)

    def fwdbwd() -> None:
        xi = x.detach().requires_grad_(True)
        logits = model(xi)
        loss = F.cross_entropy(logits, logits.argmax(1).detach(), reduction="sum")
        torch.autograd.grad(loss, xi)

    out = []
    for fn in (fwd, fwdbwd):
        fn()
        samples = []
        for _ in range(runs):
            t = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - t)
        out.append(statistics.median(samples) / x.shape[0])
    return out[0], out[1]


class PassCounter:
    """Images through each model in this thread, with and without grad, per phase."""

    def __init__(self, models: dict[str, object]) -> None:
        self.counts: dict[tuple[str, str, str], int] = defaultdict(int)
        self.phase = "attack"
        self._thread = threading.get_ident()
        self._hooks = [m.register_forward_pre_hook(self._hook(role))
                       for role, m in models.items()]

    def _hook(self, role: str):  # noqa: ANN202
        import torch

        def count(_module: object, inputs: tuple) -> None:
            if threading.get_ident() != self._thread:
                return
            x = inputs[0]
            kind = "fwdbwd" if torch.is_grad_enabled() and x.requires_grad else "fwd"
            self.counts[(self.phase, role, kind)] += int(x.shape[0])

        return count

    def take(self) -> dict[tuple[str, str, str], int]:
        out, self.counts = dict(self.counts), defaultdict(int)
        return out

    def close(self) -> None:
        for h in self._hooks:
            h.remove()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--limit", type=int, default=20,
                   help="images per class from the test split (0 = all 60)")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--detectors", action="store_true", help="also run feature-squeezing")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (1: steadier on a shared 2-core machine)")
    p.add_argument("--no-de", action="store_true",
                   help="leave out the differential-evolution attacks (the slow ones)")
    args = p.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    attacks = [a for a in ATTACKS if not (args.no_de and a["name"] in (
        "colour-balance", "rotation-translation"))]
    spec = EvalSpec(model="demo", surrogate="demo-surrogate", data=str(ISIC), out="-",
                    attacks=attacks, detectors=DETECTORS if args.detectors else [],
                    image_size=args.image_size, batch_size=args.batch_size, split="test",
                    limit=args.limit or None, device="auto")
    config, units, _record = prepare(spec)
    device = U.resolve_device(config["device"])
    models = {"victim": U._model(config["model"], device),
              "surrogate": U._model(config["surrogate"], device)}
    paths = [it["path"] for it in config["items"]]
    size = int(config["image_size"])

    # decoding + resizing every image once, cold (the cache, when there is one, emptied)
    clear = getattr(U, "clear_image_cache", None)
    if clear:
        clear()
    t = time.perf_counter()
    sample = U.load_batch(paths[:args.batch_size], size)
    U.load_batch(paths[args.batch_size:], size) if len(paths) > args.batch_size else None
    decode_once = time.perf_counter() - t
    if clear:
        clear()
    sample = sample.to(device)
    costs = {role: per_image_costs(m, sample) for role, m in models.items()}

    counter = PassCounter(models)
    per_cond: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    original = U._detector_scores

    def timed_detectors(*a, **kw):  # noqa: ANN002, ANN003, ANN202
        counter.phase = "detectors"
        t0 = time.perf_counter()
        try:
            return original(*a, **kw)
        finally:
            per_cond[current]["detectors"] += time.perf_counter() - t0
            counter.phase = "attack"

    pricer = getattr(U, "_per_image_cost", None)  # the evaluator's own floor prices

    def timed_pricing(*a, **kw):  # noqa: ANN002, ANN003, ANN202
        counter.phase = "pricing"
        t0 = time.perf_counter()
        try:
            return pricer(*a, **kw)
        finally:
            per_cond[current]["pricing"] += time.perf_counter() - t0
            counter.phase = "attack"

    U._detector_scores = timed_detectors
    if pricer:
        U._per_image_cost = timed_pricing
    try:
        for unit in units:
            current = unit.condition
            t0 = time.perf_counter()
            result = U.compute_unit(config, unit.to_json())
            wall = time.perf_counter() - t0
            c = per_cond[unit.condition]
            c["wall"] += wall
            c["images"] += len(unit.indices)
            for (phase, role, kind), n in counter.take().items():
                if phase != "attack":
                    continue
                c[f"{role}:{kind}"] += n
                c["floor"] += n * costs[role][0 if kind == "fwd" else 1]
            own = result.get("timing") or {}  # the evaluator's own account, when it keeps one
            for k in ("floor_seconds", "model_seconds", "setup_seconds", "pricing_seconds"):
                c[f"unit:{k}"] += float(own.get(k, 0.0))
            print(f"  {unit.id}: {wall:.2f} s", file=sys.stderr, flush=True)
    finally:
        U._detector_scores = original
        if pricer:
            U._per_image_cost = pricer
        counter.close()

    n_cond = len(per_cond)
    print(f"\n{len(paths)} ISIC test images at {size}² (model input "
          f"{tuple(models['victim'].card.input_size)}), batch {args.batch_size}, "
          f"{torch.get_num_threads()} torch threads, device {device}")
    for role, (f, fb) in costs.items():
        print(f"{role}: forward {1e3 * f:.2f} ms/image, forward+input gradient "
              f"{1e3 * fb:.2f} ms/image")
    print("\n| Condition | images | victim fwd / fwd+bwd | surrogate fwd / fwd+bwd | "
          "wall s | detectors s | pricing s | floor s | ratio (wall - detectors - pricing) "
          "/ floor | ratio wall / floor |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    tot = defaultdict(float)
    for cond, c in per_cond.items():
        own = c["wall"] - c["detectors"] - c["pricing"]
        for k in ("wall", "detectors", "pricing", "floor"):
            tot[k] += c[k]
        print(f"| {cond} | {int(c['images'])} | {int(c['victim:fwd'])} / "
              f"{int(c['victim:fwdbwd'])} | {int(c['surrogate:fwd'])} / "
              f"{int(c['surrogate:fwdbwd'])} | {c['wall']:.2f} | {c['detectors']:.2f} | "
              f"{c['pricing']:.2f} | {c['floor']:.2f} | {own / c['floor']:.2f}x | "
              f"{c['wall'] / c['floor']:.2f}x |")
    own = tot["wall"] - tot["detectors"] - tot["pricing"]
    print(f"| all | | | | {tot['wall']:.2f} | {tot['detectors']:.2f} | {tot['pricing']:.2f} | "
          f"{tot['floor']:.2f} | {own / tot['floor']:.2f}x | {tot['wall'] / tot['floor']:.2f}x |")
    if any(c["unit:floor_seconds"] for c in per_cond.values()):
        print("\nThe evaluator's own account (units' timing: model seconds = clean forward, "
              "attack, adversarial forward; its floor prices each call at its own batch "
              "shape):\n\n| Condition | set-up s | model s | floor s | model / floor | "
              "pricing s |\n|---|---|---|---|---|---|")
        for cond, c in per_cond.items():
            f = c["unit:floor_seconds"]
            print(f"| {cond} | {c['unit:setup_seconds']:.2f} | {c['unit:model_seconds']:.2f} | "
                  f"{f:.2f} | {c['unit:model_seconds'] / f if f else float('nan'):.2f}x | "
                  f"{c['unit:pricing_seconds']:.2f} |")
    train = 0  # universal attacks with a training set would decode those too; none here
    print(f"\ndecode + resize of all {len(paths) + train} images once: {decode_once:.2f} s; "
          f"once per condition ({n_cond} conditions): {n_cond * decode_once:.2f} s; "
          f"{'the cache saves' if clear else 'a cache would save'} "
          f"{(n_cond - 1) * decode_once:.2f} s of this run's {tot['wall']:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
