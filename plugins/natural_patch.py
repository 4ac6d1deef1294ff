"""The seed's "natural patch" control (Finlayson et al., seed 001, after Brown et al.): a
"photoshop" patch cut from a real image rather than optimised. From the images given, the
one the model scores most confidently as the target class is chosen, a centred disc of it
is cut out (ISIC dermoscopy centres the lesion; the seed's code cut the mole, see
patch_attacks/crop_mole.ipynb in github.com/sgfin/adversarial-medicine) and pasted with the
same random rotation and the same scale (0.4) as the adversarial patch at evaluation. With
the same seed and batch size it lands exactly where universal-patch puts its patch, so the
two differ only in what the patch shows.

Targets as universal-patch: a targeted run makes one natural patch per target class and
gives each image its target's patch; an untargeted run uses ``target_class``.
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
    paste_patches_by_class,
    seeded_placements,
    write_image_file,
)


class NaturalPatch(Attack):
    name = "natural-patch"
    summary = ("Control: a disc cut from the image the model finds most typical of the "
               "target class, pasted like the adversarial patch (scale 0.4, ±22.5°).")
    threat = "physical/patch"
    scope = "universal"
    version = "1"

    @dataclass
    class Params:
        patch_size: int = param(64, min=8, max=1024, step=8,
                                help="side of the saved patch in pixels")
        crop: float = param(0.5, min=0.05, max=1.0, step=0.05,
                            help="side of the centred square cut from the source image, as a "
                                 "fraction of its shorter side (1 = the whole image)")
        eval_scale: float = param(0.4, min=0.01, max=1.0, step=0.05,
                                  help="scale of the pasted patch (seed: 0.4)")
        max_angle: float = param(22.5, min=0.0, max=180.0, step=0.5,
                                 help="random rotations in ±max_angle degrees (seed: 22.5)")
        target_class: int = param(1, min=0, max=10000, step=1,
                                  help="class the patch should suggest in an untargeted run "
                                       "(1 = melanoma for the demo model)")

    def run(self, model: Any, images: Any, labels: Any, target: Any, params: Any,
            ctx: RunContext) -> AttackResult:
        import torch

        ctx.check_cancelled()
        x = images.detach()
        with torch.inference_mode():
            probs = torch.softmax(model(x), dim=1)
        classes = ([int(c) for c in torch.unique(target).tolist()] if target is not None
                   else [params.target_class])
        patches, sources = {}, {}
        for cls in classes:
            if not 0 <= cls < probs.shape[1]:
                raise ValueError(f"target class {cls} does not exist: the model has "
                                 f"{probs.shape[1]} classes (0..{probs.shape[1] - 1})")
            best = int(probs[:, cls].argmax())
            patches[cls] = disc_source(x[best], params.crop, params.patch_size)
            sources[cls] = (best, float(probs[best, cls]))
        ctx.progress(0.5, "natural patch cut")

        # The adversarial patch's evaluation placements (universal-patch does the same).
        where = seeded_placements(x.shape[0], ctx.seed, scale=params.eval_scale,
                                  max_angle=params.max_angle, device=x.device)
        per_image = (target if target is not None
                     else torch.full((x.shape[0],), classes[0], device=x.device))
        adv = paste_patches_by_class(x, patches, per_image, where)
        ctx.progress(1.0, "natural patch pasted")

        names = getattr(model, "class_names", None)
        paths = {cls: write_image_file(p, new_artifact_path(
            self.name, names[cls] if names and cls < len(names) else f"class{cls}"))
            for cls, p in patches.items()}
        first = classes[0]
        artifacts = {"patch": patches[first].cpu(), "patch_path": paths[first],
                     "target_class": first, "source_index": sources[first][0],
                     "source_probability": sources[first][1],
                     "patches": {c: p.cpu() for c, p in patches.items()}, "patch_paths": paths}
        return AttackResult(adversarial=adv, artifacts=artifacts,
                            notes=f"natural patch(es) from image(s) "
                                  f"{[s[0] for s in sources.values()]} of the batch")


def disc_source(image: Any, crop: float, size: int) -> Any:
    """The centred square (``crop`` of the shorter side) of one C x H x W image, resampled
    to size x size with antialiasing; the disc mask is applied when pasting."""
    import torch.nn.functional as F  # noqa: N812

    h, w = image.shape[-2:]
    side = max(1, round(crop * min(h, w)))
    top, left = (h - side) // 2, (w - side) // 2
    square = image[:, top:top + side, left:left + side]
    return F.interpolate(square[None], size=(size, size), mode="bilinear", align_corners=False,
                         antialias=True)[0].clamp(0.0, 1.0)

