"""Our universal-patch training vs ART's AdversarialPatchPyTorch, images per second.

Same model (the demo classifier wrapper, frozen, eval mode), same images (random, N =
batch so that one ART "iteration", a pass over its data loader, is one optimisation step on
one batch like ours), same batch, steps, Adam and learning rate, rotation ±22.5°, training
scale range and circular patch of the same side; targeted to class 1. Medians over
alternating rounds so both see the same machine state. ART is a benchmark-only dependency:
pip install adversarial-robustness-toolbox.

What differs by design: ART transforms each image of the batch in a Python loop
(torchvision perspective + affine per image, for the patch and for its mask, with a
nearest-neighbour resample) and keeps its patch in float64; ours places the whole batch with
one affine grid (bilinear) on the images' device.

ART's per-image transforms work on full-size images, so its overhead grows with the image
area while the model's cost does not (it resizes to 160 inside): the ratio is larger at 256
(the demo card's evaluation size, the default) than at 128.

Run: python3 benchmarks/patch_speed.py [--rounds 3] [--steps 10] [--batch 16] [--size 256]
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
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--size", type=int, default=256,
                    help="image side in pixels (256: the demo card's evaluation size)")
    ap.add_argument("--patch", type=int, default=64, help="patch side in pixels")
    ap.add_argument("--scale-min", type=float, default=0.25)
    ap.add_argument("--scale-max", type=float, default=0.55)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()

    import os
    import tempfile

    import numpy as np
    import torch

    # The plugin saves its patch PNG under WORKBENCH_HOME: keep the user's home clean.
    os.environ["WORKBENCH_HOME"] = tempfile.mkdtemp(prefix="patch_speed_")

    from art.attacks.evasion import AdversarialPatchPyTorch
    from art.estimators.classification import PyTorchClassifier

    from workbench import api
    from workbench.engine.plugins import PluginRegistry
    from workbench.models.device import choose_device
    from workbench.models.zoo import load_model

    device = choose_device(args.device)
    model = load_model("demo", device)
    torch.manual_seed(0)
    x = torch.rand(args.batch, 3, args.size, args.size, device=device)
    y = torch.zeros(args.batch, dtype=torch.long, device=device)  # unused by a fixed target

    plugin = PluginRegistry().create("universal-patch")
    params = api.make_params(plugin.Params, {
        "patch_size": args.patch, "steps": args.steps, "lr": args.lr, "batch": args.batch,
        "scale_min": args.scale_min, "scale_max": args.scale_max, "max_angle": 22.5,
        "target_class": 1})

    classifier = PyTorchClassifier(
        model=model, loss=torch.nn.CrossEntropyLoss(), input_shape=(3, args.size, args.size),
        nb_classes=2, clip_values=(0.0, 1.0),
        device_type="gpu" if device.type == "cuda" else "cpu")
    x_np = x.cpu().numpy()
    y_np = np.tile(np.array([[0.0, 1.0]], dtype=np.float32), (args.batch, 1))  # target 1

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def ours() -> None:
        gen = torch.Generator(device=device)
        gen.manual_seed(0)
        plugin.run(model, x, y, None, params, api.RunContext(device=device, generator=gen))
        sync()

    def theirs() -> None:
        # A fresh attack per run: ART keeps its patch and Adam state in the instance.
        peer = AdversarialPatchPyTorch(
            classifier, rotation_max=22.5, scale_min=args.scale_min, scale_max=args.scale_max,
            learning_rate=args.lr, max_iter=args.steps, batch_size=args.batch,
            patch_shape=(3, args.patch, args.patch), patch_type="circle", optimizer="Adam",
            targeted=True, verbose=False)
        peer.generate(x=x_np, y=y_np)
        sync()

    for fn in (ours, theirs):  # warm-up
        fn()
    t_ours: list[float] = []
    t_theirs: list[float] = []
    for _ in range(args.rounds):  # alternate so drift hits both alike
        for fn, bucket in ((ours, t_ours), (theirs, t_theirs)):
            t = time.perf_counter()
            fn()
            bucket.append(time.perf_counter() - t)
    mo, mt = statistics.median(t_ours), statistics.median(t_theirs)
    images = args.steps * args.batch
    print(f"demo model (mobilenet_v3_small at 160), {args.batch} images of {args.size}x"
          f"{args.size} per step, {args.steps} steps, patch {args.patch}px circle, rotation "
          f"±22.5°, scale {args.scale_min}-{args.scale_max}, Adam lr {args.lr}, device "
          f"{device}, medians of {args.rounds} alternating rounds:")
    print(f"  ART AdversarialPatchPyTorch  {images / mt:8.1f} images/s  ({mt:.2f} s)")
    print(f"  workbench universal-patch    {images / mo:8.1f} images/s  ({mo:.2f} s)")
    print(f"  ratio ours / ART             {mt / mo:8.2f}x   (goal >= 1.5)")


if __name__ == "__main__":
    main()
