"""Universal adversarial patch by expectation over transformation (Brown et al., 2017), as
Finlayson et al. (seed 001) deployed it: one circular patch trained over a whole set of
images, at random places, rotations (±22.5°) and scales, to push the classifier to a
target class; evaluated pasted at scale 0.4 (a fraction of the image's shorter side).

The seed's code (github.com/sgfin/adversarial-medicine, patch_attacks/craft_attack_patch.py)
trains one patch per target class (``train(model, target_label=0|1)``, then
``attack_combined`` pastes each patch on the test images of the other class): plain gradient
descent, learning rate 5.0 on a [-1, 1] patch, scale 0.1-1.0 during training, batches of
8, a grey (zero) start. ART's AdversarialPatchPyTorch has the same rotation (22.5°), scale
range (0.1-1.0), circle shape and lr 5.0, but Adam and 500 passes over the data. Adam at
lr 5.0 on a [0, 1] patch saturates every pixel in one step (it moves each element by about
lr), so ours uses Adam at lr 0.05 (about 20 steps across the whole value range), clamped to
[0, 1] after each step. Training scales default to 0.25-0.55, around the evaluation scale
0.4 rather than ART's 0.1-1.0: a patch judged at 0.4 learns faster when it rarely trains
at sizes it will not be used at (demo model, 20 steps, melanoma target: 0.90 of held-out
images reach it, against 0.83 with 0.1-1.0). scale_min 0.1, scale_max 1.0 gives ART's range.

Targets: a targeted run (the engine gives each image the other class) trains one patch per
target class present, on all the images, and each image gets its own target's patch, which
is the seed's setup. An untargeted run trains a single patch to ``target_class``; the
engine then counts success as "label changed", which an image already in the target class
can not reach, so read the target rate (fraction classified as the target) instead.

Each optimisation step draws ``batch`` images (a seeded pass through the set; the set is
repeated when smaller) and a placement for each, pastes the patch into all of them with one
batched affine grid, and takes one forward and one backward (gradients for the patch only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workbench.api import (
    Attack,
    AttackResult,
    RunContext,
    new_artifact_path,
    param,
    paste_patch,
    paste_patches_by_class,
    random_placements,
    seeded_placements,
    write_image_file,
)


class UniversalPatch(Attack):
    name = "universal-patch"
    summary = ("Universal adversarial patch: one circular patch trained over the whole set "
               "(EOT: random place, ±22.5° rotation, scale), pasted at scale 0.4.")
    threat = "physical/patch"
    scope = "universal"
    version = "1"

    @dataclass
    class Params:
        patch_size: int = param(64, min=8, max=1024, step=8,
                                help="side of the learned patch in pixels (resampled when "
                                     "pasted)")
        steps: int = param(300, min=1, max=100000, step=10,
                           help="optimisation steps per target class (one batch each)")
        lr: float = param(0.05, min=0.0, max=10.0, step=0.01,
                          help="Adam learning rate on the [0,1] patch (ART: 5.0 for [0,255])")
        batch: int = param(16, min=1, max=1024, step=1,
                           help="EOT samples per step: images with random placements")
        scale_min: float = param(0.25, min=0.01, max=1.0, step=0.05,
                                 help="smallest training scale (fraction of the shorter side)")
        scale_max: float = param(0.55, min=0.01, max=1.0, step=0.05,
                                 help="largest training scale (ART and the seed: 0.1-1.0)")
        eval_scale: float = param(0.4, min=0.01, max=1.0, step=0.05,
                                  help="scale of the pasted patch in the result (seed: 0.4)")
        max_angle: float = param(22.5, min=0.0, max=180.0, step=0.5,
                                 help="rotations in ±max_angle degrees (seed: 22.5)")
        target_class: int = param(1, min=0, max=10000, step=1,
                                  help="class the patch pushes to in an untargeted run "
                                       "(1 = melanoma for the demo model); a targeted run "
                                       "uses each image's target")

    def run(self, model: Any, images: Any, labels: Any, target: Any, params: Any,
            ctx: RunContext) -> AttackResult:
        import torch

        if params.scale_min > params.scale_max:
            raise ValueError(f"scale_min {params.scale_min} is above scale_max "
                             f"{params.scale_max}")
        x = images.detach()
        classes = ([int(c) for c in torch.unique(target).tolist()] if target is not None
                   else [params.target_class])
        patches: dict[int, Any] = {}
        for k, cls in enumerate(classes):
            patches[cls] = train_patch(model, x, cls, params, ctx, k, len(classes))

        # Evaluation placements come from a generator of their own seeded with the run's
        # seed: they depend on the seed and batch size only, so natural-patch and
        # apply-patch (placement "random") with the same seed paste at the same places.
        placements = seeded_placements(x.shape[0], ctx.seed, scale=params.eval_scale,
                                       max_angle=params.max_angle, device=x.device)
        per_image = (target if target is not None
                     else torch.full((x.shape[0],), classes[0], device=x.device))
        adv = paste_patches_by_class(x, patches, per_image, placements)
        return AttackResult(adversarial=adv, iterations=[params.steps] * x.shape[0],
                            artifacts=patch_artifacts(self.name, patches, classes, model),
                            notes=f"universal patch(es) for class(es) {classes} trained on "
                                  f"{x.shape[0]} image(s), pasted at scale "
                                  f"{params.eval_scale}")


def train_patch(model: Any, x: Any, cls: int, params: Any, ctx: RunContext, k: int = 0,
                of: int = 1) -> Any:
    """One patch (C x s x s in [0, 1]) maximising E[log p(cls | patched image)] over random
    images and placements (seed 001, Eq. 1)."""
    import torch
    import torch.nn.functional as F  # noqa: N812

    n, c = x.shape[:2]
    dev = x.device
    # Grey start: the seed's zero patch on [-1, 1]; ART starts at mid-range too.
    patch = torch.full((c, params.patch_size, params.patch_size), 0.5, device=dev,
                       requires_grad=True)
    opt = torch.optim.Adam([patch], lr=params.lr)
    want = torch.full((params.batch,), cls, device=dev, dtype=torch.long)
    order = torch.empty(0, dtype=torch.long, device=dev)
    for step in range(params.steps):
        ctx.check_cancelled()
        # A seeded pass through the set without replacement, so every image is seen
        # equally often, however ``batch`` and the set's size divide.
        while order.numel() < params.batch:
            order = torch.cat([order, torch.randperm(n, generator=ctx.generator, device=dev)])
        pick, order = order[:params.batch], order[params.batch:]
        place = random_placements(params.batch, ctx.generator,
                                  scale=(params.scale_min, params.scale_max),
                                  max_angle=params.max_angle, device=dev)
        logits = model(paste_patch(x[pick], patch, place))
        if step == 0 and not 0 <= cls < logits.shape[1]:
            raise ValueError(f"target class {cls} does not exist: the model has "
                             f"{logits.shape[1]} classes (0..{logits.shape[1] - 1})")
        loss = F.cross_entropy(logits, want)
        # Gradient for the patch only: the model's parameters are frozen by the engine.
        (patch.grad,) = torch.autograd.grad(loss, patch)
        opt.step()
        with torch.no_grad():
            patch.clamp_(0.0, 1.0)
        message = f"patch for class {cls}: step {step + 1}/{params.steps}"
        if (step + 1) % 25 == 0 or step + 1 == params.steps:
            # Reading the loss waits for the device: only now and then, not every step.
            message += f", loss {float(loss.detach()):.3f}"
        ctx.progress((k + (step + 1) / params.steps) / of, message)
    return patch.detach()


def patch_artifacts(kind: str, patches: dict[int, Any], classes: list[int],
                    model: Any) -> dict[str, Any]:
    """The patches as CPU tensors and PNG files under the artifacts folder. ``patch``,
    ``patch_path`` and ``target_class`` describe the first class; ``patches`` and
    ``patch_paths`` hold every class's when a targeted run made more than one."""
    names = getattr(model, "class_names", None)
    paths: dict[int, str] = {}
    for cls, patch in patches.items():
        label = names[cls] if names and cls < len(names) else f"class{cls}"
        paths[cls] = write_image_file(patch, new_artifact_path(kind, label))
    first = classes[0]
    return {"patch": patches[first].cpu(), "patch_path": paths[first], "target_class": first,
            "patches": {cls: p.cpu() for cls, p in patches.items()}, "patch_paths": paths}

