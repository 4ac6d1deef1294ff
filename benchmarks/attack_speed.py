"""Our PGD vs torchattacks' PGD on the same model and inputs, and our per-step cost vs one
input-gradient forward+backward.

resnet18 (random weights, weights=None), batch 8 at 224x224, 10 L∞ PGD steps, no random
start and no early stop on our side (torchattacks has neither), medians over alternating
rounds so both see the same machine state. torchattacks is a benchmark-only dependency
(pip install '.[bench]').

Run: python3 benchmarks/attack_speed.py [--rounds 5] [--device auto]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()

    import torch
    import torch.nn.functional as F  # noqa: N812
    import torchattacks

    from workbench import api
    from workbench.engine.plugins import PluginRegistry
    from workbench.models.card import ModelCard
    from workbench.models.classifier import Classifier, build_network
    from workbench.models.device import choose_device

    device = choose_device(args.device)
    torch.manual_seed(0)
    card = ModelCard(name="bench", architecture="resnet18", weights="-", input_size=(224, 224),
                     class_names=("nevus", "melanoma"))
    model = Classifier(build_network("resnet18", 2), card).to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    x = torch.rand(args.batch, 3, 224, 224, device=device)
    y = torch.randint(0, 2, (args.batch,), device=device)
    eps, alpha = 0.01, 0.0025

    pgd = PluginRegistry().create("pgd")
    params = api.make_params(pgd.Params, {"eps": eps, "steps": args.steps, "step_size": alpha,
                                          "random_start": False, "early_stop": False})
    gen = torch.Generator(device=device)
    ctx = api.RunContext(device=device, generator=gen)
    peer = torchattacks.PGD(model, eps=eps, alpha=alpha, steps=args.steps, random_start=False)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def ours() -> None:
        pgd.run(model, x, y, None, params, ctx)
        sync()

    def theirs() -> None:
        peer(x, y)
        sync()

    def one_grad() -> None:
        xi = x.detach().requires_grad_(True)
        loss = F.cross_entropy(model(xi), y, reduction="sum")
        torch.autograd.grad(loss, xi)
        sync()

    for fn in (ours, theirs, one_grad):  # warm-up
        fn()
    t_ours, t_theirs, t_grad = [], [], []
    for _ in range(args.rounds):  # alternate so drift hits both alike
        for fn, bucket in ((ours, t_ours), (theirs, t_theirs), (one_grad, t_grad)):
            t = time.perf_counter()
            fn()
            bucket.append(time.perf_counter() - t)
    mo, mt, mg = (statistics.median(b) for b in (t_ours, t_theirs, t_grad))
    # Same arithmetic, same result: check it, so the speed comparison is apples to apples.
    a = pgd.run(model, x, y, None, params, ctx).adversarial
    b = peer(x, y)
    same = torch.equal(a, b)
    print(f"resnet18, batch {args.batch} at 224x224, {args.steps} PGD steps, device {device}, "
          f"medians of {args.rounds} alternating rounds:")
    print(f"  torchattacks.PGD              {mt * 1000:8.0f} ms")
    print(f"  workbench pgd plugin          {mo * 1000:8.0f} ms")
    print(f"  ratio ours / torchattacks     {mo / mt:8.3f}   (goal <= 1.0)")
    print(f"  one input-gradient fwd+bwd    {mg * 1000:8.0f} ms")
    print(f"  ratio our step / fwd+bwd      {mo / args.steps / mg:8.3f}   (goal <= 1.05)")
    print(f"  adversarial batches bitwise identical: {same}")


if __name__ == "__main__":
    main()
