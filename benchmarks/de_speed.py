"""Our batched colour-balance attack vs scipy.optimize.differential_evolution evaluating one
candidate per model call (the seed's approach, Du-Harpur et al.: a Python objective that
runs the model on one perturbed image).

Same victim (the shipped demo model), same real ISIC melanomas of the card's test split
(the first ones the model classifies correctly), same perturbation function (the plugin's
``scale_channels``), same objective (log-probability of the clean class; the seed used the
probability, which orders candidates the same), same bounds [0.9, 1.1], popsize and
generations, scipy's default strategy/mutation/recombination on both sides, no early stop
and no polish, so both spend popsize x D x (generations + 1) model evaluations per image.
scipy runs each image in turn (as the seed did); ours runs all images together, one model
call per generation. One round each (the scipy side is slow); run on an idle machine.

Run: python3 benchmarks/de_speed.py [--images 4] [--generations 10] [--threads N] [--device auto]
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--popsize", type=int, default=20, help="seed: 20")
    ap.add_argument("--generations", type=int, default=10, help="seed: 21")
    ap.add_argument("--size", type=int, default=128, help="image side in pixels")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads; 0 = default")
    args = ap.parse_args()

    import numpy as np
    import torch
    from scipy.optimize import differential_evolution

    from workbench import api
    from workbench.engine.plugins import PluginRegistry
    from workbench.models.device import choose_device
    from workbench.models.zoo import load_model

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = choose_device(args.device)
    model = load_model("demo", device)
    melanoma = model.class_names.index("melanoma")
    x, y = _melanomas(model, melanoma, args.images, args.size)
    x, y = x.to(device), y.to(device)
    n, c = x.shape[0], x.shape[1]

    plugin = PluginRegistry().create("colour-balance")
    scale_channels = inspect.getmodule(type(plugin)).scale_channels
    params = api.make_params(plugin.Params, {"popsize": args.popsize,
                                             "generations": args.generations,
                                             "confidence": 1.0})  # p > 1: no early stop
    members = max(5, args.popsize * c)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def ours() -> torch.Tensor:
        gen = torch.Generator(device=device).manual_seed(args.seed)
        ctx = api.RunContext(device=device, generator=gen, seed=args.seed)
        adv = plugin.run(model, x, y, None, params, ctx).adversarial
        sync()
        return adv

    calls = {"n": 0}

    def theirs() -> tuple[torch.Tensor, list[int], list[int]]:
        advs, nfev, nit = [], [], []
        for i in range(n):
            xi, label = x[i:i + 1], int(y[i])

            def objective(z: np.ndarray, xi: torch.Tensor = xi, label: int = label) -> float:
                calls["n"] += 1
                zt = torch.as_tensor(z, dtype=torch.float32, device=device)[None]
                with torch.inference_mode():
                    logits = model(scale_channels(xi, zt))
                return float(torch.log_softmax(logits, dim=1)[0, label])

            res = differential_evolution(objective, [(0.9, 1.1)] * c, popsize=args.popsize,
                                         maxiter=args.generations, tol=0.0, polish=False,
                                         init="latinhypercube", seed=args.seed + i)
            zt = torch.as_tensor(res.x, dtype=torch.float32, device=device)[None]
            advs.append(scale_channels(xi, zt))
            nfev.append(int(res.nfev))
            nit.append(int(res.nit))
        sync()
        return torch.cat(advs), nfev, nit

    with torch.inference_mode():  # warm-up: first-call allocations hit neither side
        model(x)
        model(x[:1])
    t = time.perf_counter()
    adv_ours = ours()
    t_ours = time.perf_counter() - t
    t = time.perf_counter()
    adv_theirs, nfev, nit = theirs()
    t_theirs = time.perf_counter() - t

    with torch.inference_mode():
        flip_ours = int((model(adv_ours).argmax(1) != y).sum())
        flip_theirs = int((model(adv_theirs).argmax(1) != y).sum())
    print(f"demo model ({model.card.architecture} at {model.card.input_size[0]} px), {n} ISIC "
          f"melanomas at {args.size}x{args.size}, colour balance [0.9, 1.1], popsize "
          f"{args.popsize} ({members} members), {args.generations} generations, no early stop, "
          f"no polish, device {device}, torch threads {torch.get_num_threads()}:")
    print(f"  scipy differential_evolution, 1 candidate/call {t_theirs * 1000:9.0f} ms   "
          f"({calls['n']} model calls; nfev/image {nfev[0]}, generations {min(nit)}-{max(nit)})")
    print(f"  workbench colour-balance, 1 call/generation    {t_ours * 1000:9.0f} ms   "
          f"({args.generations + 1} model calls of {n * members} candidates; "
          f"queries/image {members * (args.generations + 1)})")
    print(f"  ratio scipy / ours                             {t_theirs / t_ours:9.2f}   "
          "(goal >= 10)")
    print(f"  label flipped: scipy {flip_theirs}/{n}, ours {flip_ours}/{n}")


def _melanomas(model: Any, melanoma: int, count: int, size: int) -> tuple[Any, Any]:
    """The first ``count`` melanomas of the demo card's test split that the model gets right,
    resized to ``size`` (INTER_AREA), RGB in [0, 1]. Images from ../shared/data (or
    WORKBENCH_SHARED_DATA), as the tests."""
    import cv2
    import torch

    from workbench.models.zoo import resolve_card

    card = json.loads(resolve_card("demo").read_text())
    shared = Path(os.environ.get("WORKBENCH_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
    isic = shared / "dermoscopy" / "isic"
    lines = (isic / "labels.csv").read_text().splitlines()
    header = lines[0].split(",")
    rows = [dict(zip(header, line.split(","), strict=False)) for line in lines[1:]]
    is_melanoma = {r["isic_id"]: r["diagnosis"] == "melanoma" for r in rows}
    images = []
    for isic_id in card["split"]["test_ids"]:
        if not is_melanoma[isic_id]:
            continue
        bgr = cv2.imread(str(isic / "images" / f"{isic_id}.jpg"))
        small = cv2.cvtColor(cv2.resize(bgr, (size, size), interpolation=cv2.INTER_AREA),
                             cv2.COLOR_BGR2RGB)
        xi = torch.from_numpy(small).permute(2, 0, 1).float()[None] / 255.0
        with torch.inference_mode():
            if int(model(xi.to(model.device)).argmax(1)) == melanoma:
                images.append(xi)
        if len(images) == count:
            break
    return torch.cat(images), torch.full((len(images),), melanoma, dtype=torch.long)


if __name__ == "__main__":
    main()
