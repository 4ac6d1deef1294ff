"""Black-box attacks found by differential evolution (Du-Harpur et al., seed 004).

Du-Harpur X, Arthurs C, Ganier C, et al. "Clinically Relevant Vulnerabilities of Deep
Machine Learning Systems for Skin Cancer Diagnosis." J Invest Dermatol 2021;141:916-920,
doi:10.1016/j.jid.2020.07.034. They attacked an Inception-v3 melanoma/nevus classifier
with scipy's ``differential_evolution`` in three ways, all implemented here:

- ``three-pixel``: change three pixels, each candidate (x, y, r, g, b) per pixel;
- ``colour-balance``: multiply each colour channel by a factor in [0.9, 1.1]; 15.35%
  (120 of 782) of their test images flipped from melanoma to nevus;
- ``rotation-translation``: rotate by 0-360 degrees and translate by up to 50 px at
  299 x 299; 45.6% flipped.

Their settings (the paper's text, and its code at github.com/thelynchlab/adversarial,
``difev_adversarial.py``), the defaults here: popsize 20 (scipy's multiplier: 20 members
per searched parameter), stop after 21 generations (``max_stage = 20`` in a callback
that returns True once its stage counter exceeds it), scipy's defaults otherwise
(strategy best1bin, mutation dithered in [0.5, 1), recombination 0.7, Latin-hypercube
initialisation). The objective is the softmax probability of the clean class, minimised.
The confidence rule: a search stops once the best candidate's class differs from the
original one *and* that class has probability > 0.9; an attack is counted as successful
when the final class differs (their ``a != b``). The engine counts success the same way;
``confidence`` (default 0.9) is the stop rule, and ``artifacts["confident_flip"]`` says
per image whether it was met.

What differs from the seed, and why:

- The whole population of a generation, for every image still searching, goes through
  the model in ONE call (DESIGN: no per-candidate loop around the model); scipy calls
  the model once per candidate. Selection is therefore scipy's ``updating="deferred"``
  (what it uses with ``workers``, as the seed's later code did), not "immediate".
- Every random draw uses ``ctx.generator`` on the images' device, so a run is
  reproducible from its seed; each image has its own mutation factor per generation (as
  if each had its own scipy run, which is what the seed did).
- The search minimises the log-probability of the clean class: the same ordering as the
  probability, so the same search, but it does not saturate at p = 1.0 in float32.
- No final L-BFGS polish (scipy's ``polish=True``): it needs finite-difference gradients
  (dozens of extra queries per image) and does not apply to pixel coordinates.
- Pixel values and coordinates are continuous in [0, 1] / pixel units (the seed
  truncated them to 8-bit integers because it worked on PIL images).
- Translation is symmetric (+-50/299 of the side); the seed's code searched 0..50 px,
  which, composed with a full turn, reaches the same offsets in every direction.
- Rotation and translation resample with ``grid_sample`` (bilinear by default) on the
  device; what comes into view from outside the image is black (``padding="zeros"``),
  as PIL's ``rotate``/``transform`` fill it in the seed.

Queries: ``queries[i]`` = population x (``iterations[i]`` + 1): the initial population
counts once, then one population per generation (scipy's ``nfev`` without polish, and
``iterations`` is scipy's ``nit``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from workbench.api import Attack, AttackResult, RunContext, param

# (clean images M x C x H x W, candidates M x D) -> perturbed images M x C x H x W
Perturb = Callable[[Any, Any], Any]


@dataclass
class EvolutionParams:
    """Differential-evolution settings shared by the three attacks (seed defaults)."""

    popsize: int = param(20, min=1, max=1000, step=1,
                         help="members per searched parameter (scipy's popsize; seed: 20)")
    generations: int = param(21, min=0, max=100000, step=1,
                             help="generations after the initial population (seed: 21)")
    mutation_min: float = param(0.5, min=0.0, max=1.99, step=0.05,
                                help="each generation draws the mutation factor in "
                                     "[min, max) (scipy's default dithering (0.5, 1))")
    mutation_max: float = param(1.0, min=0.0, max=1.99, step=0.05,
                                help="upper end of the mutation factor's range")
    recombination: float = param(0.7, min=0.0, max=1.0, step=0.05,
                                 help="crossover probability (scipy's default 0.7)")
    confidence: float = param(0.9, min=0.0, max=1.0, step=0.01,
                              help="stop an image once its class changed (or reached the "
                                   "target) with probability above this (seed: 0.9); "
                                   "1 = never stop early")
    max_batch: int = param(4096, min=0, max=10_000_000, step=256,
                           help="most candidate images per model call, to bound memory when "
                                "many images x population are searched; 0 = no limit "
                                "(a generation is one call while it fits)")


class ThreePixel(Attack):
    name = "three-pixel"
    summary = "Change at most three pixels, position and colour (differential evolution)."
    threat = "score-based black-box"
    scope = "per-image"
    version = "1"

    @dataclass
    class Params(EvolutionParams):
        pixels: int = param(3, min=1, max=100, step=1, help="pixels that may change (seed: 3)")

    def run(self, model: Any, images: Any, labels: Any, target: Any, params: Any,
            ctx: RunContext) -> AttackResult:
        import torch

        _, c, h, w = images.shape
        # Per pixel: x in [0, W), y in [0, H), then one value per channel in [0, 1].
        one_lo = [0.0, 0.0] + [0.0] * c
        one_hi = [float(w), float(h)] + [1.0] * c
        lower = torch.tensor(one_lo * params.pixels, device=images.device)
        upper = torch.tensor(one_hi * params.pixels, device=images.device)
        return evolve(model, images, labels, target, paint_pixels, lower, upper, params, ctx,
                      self.name)


class ColourBalance(Attack):
    name = "colour-balance"
    summary = "Scale each colour channel by a factor in [0.9, 1.1] (differential evolution)."
    threat = "score-based black-box"
    scope = "per-image"
    version = "1"

    @dataclass
    class Params(EvolutionParams):
        min_factor: float = param(0.9, min=0.0, max=10.0, step=0.01,
                                  help="smallest channel multiplier (seed: 0.9)")
        max_factor: float = param(1.1, min=0.0, max=10.0, step=0.01,
                                  help="largest channel multiplier (seed: 1.1)")

    def run(self, model: Any, images: Any, labels: Any, target: Any, params: Any,
            ctx: RunContext) -> AttackResult:
        import torch

        if params.min_factor > params.max_factor:
            raise ValueError("min_factor is above max_factor")
        c = images.shape[1]
        lower = torch.full((c,), params.min_factor, device=images.device)
        upper = torch.full((c,), params.max_factor, device=images.device)
        return evolve(model, images, labels, target, scale_channels, lower, upper, params, ctx,
                      self.name)


class RotationTranslation(Attack):
    name = "rotation-translation"
    summary = "Rotate (0-360°) and shift (±50 px at 299²) the image (differential evolution)."
    threat = "score-based black-box"
    scope = "per-image"
    version = "1"

    @dataclass
    class Params(EvolutionParams):
        max_angle: float = param(360.0, min=0.0, max=360.0, step=1.0,
                                 help="rotation searched in [0, max_angle] degrees (seed: 360)")
        max_shift: float = param(50 / 299, min=0.0, max=1.0, step=0.01,
                                 help="largest shift as a fraction of the image side "
                                      "(seed: 50 px at 299 px = 0.167)")
        padding: str = param("zeros", choices=("zeros", "border", "reflection"),
                             help="what fills the area moved into view (seed: black)")
        interpolation: str = param("bilinear", choices=("bilinear", "nearest"),
                                   help="resampling of the moved image")

    def run(self, model: Any, images: Any, labels: Any, target: Any, params: Any,
            ctx: RunContext) -> AttackResult:
        import torch

        _, _, h, w = images.shape
        # (angle in degrees, shift x in px, shift y in px), shifts scaled to this image size.
        lower = torch.tensor([0.0, -params.max_shift * w, -params.max_shift * h],
                             device=images.device)
        upper = torch.tensor([params.max_angle, params.max_shift * w, params.max_shift * h],
                             device=images.device)

        def perturb(x: Any, z: Any) -> Any:
            return rotate_translate(x, z, padding=params.padding, mode=params.interpolation)

        return evolve(model, images, labels, target, perturb, lower, upper, params, ctx,
                      self.name)


# --- the perturbations, batched over candidates ------------------------------------------
def paint_pixels(x: Any, z: Any) -> Any:
    """Each image with its candidate's pixels painted: z is M x (P * (2 + C)), per pixel
    (x, y, value per channel). Coordinates are floored and kept inside the image, so at
    most P pixels change (fewer when two land on the same place)."""
    import torch

    m, c, h, w = x.shape
    spots = z.view(m, -1, 2 + c)  # M x P x (2 + C)
    cols = spots[..., 0].floor().long().clamp(0, w - 1)
    rows = spots[..., 1].floor().long().clamp(0, h - 1)
    which = torch.arange(m, device=x.device)[:, None].expand_as(cols)
    out = x.clone()
    # Advanced indices around a slice put their dimensions first: M x P x C.
    out[which, :, rows, cols] = spots[..., 2:].to(x.dtype)
    return out


def scale_channels(x: Any, z: Any) -> Any:
    """Each image's channels multiplied by its candidate's factors (z is M x C), kept in
    [0, 1] (the seed clipped at 255)."""
    return (x * z[:, :, None, None].to(x.dtype)).clamp(0.0, 1.0)


def rotate_translate(x: Any, z: Any, *, padding: str = "zeros", mode: str = "bilinear") -> Any:
    """Each image shifted by (z[:, 1], z[:, 2]) pixels (right and down) and then rotated
    by z[:, 0] degrees counter-clockwise on screen about its centre (the seed's order:
    PIL ``transform`` then ``rotate``). One ``affine_grid``/``grid_sample`` on the
    device; ``padding`` fills what comes into view (zeros = black, as in the seed)."""
    import torch
    import torch.nn.functional as F  # noqa: N812

    m, c, h, w = x.shape
    rad = z[:, 0].to(x.dtype) * (math.pi / 180)
    cos, sin = torch.cos(rad), torch.sin(rad)
    # Output pixel -> source pixel is the inverse map: un-rotate, then un-shift, in
    # normalised coordinates ([-1, 1] over W and over H, hence the aspect factors).
    theta = torch.empty(m, 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0] = cos
    theta[:, 0, 1] = -sin * (h / w)
    theta[:, 0, 2] = -2 * z[:, 1].to(x.dtype) / w
    theta[:, 1, 0] = sin * (w / h)
    theta[:, 1, 1] = cos
    theta[:, 1, 2] = -2 * z[:, 2].to(x.dtype) / h
    grid = F.affine_grid(theta, [m, c, h, w], align_corners=False)
    return F.grid_sample(x, grid, mode=mode, padding_mode=padding, align_corners=False)


# --- the shared differential-evolution engine --------------------------------------------
def evolve(model: Any, images: Any, labels: Any, target: Any, perturb: Perturb, lower: Any,
           upper: Any, params: Any, ctx: RunContext, title: str) -> AttackResult:
    """Differential evolution (scipy's best1bin with dithering, deferred updating) for
    every image at once, on the images' device. Each image has its own population of
    ``max(5, popsize * D)`` members in the unit cube, mapped to [lower, upper] for
    ``perturb``. A generation of all images still searching is one model call (split
    only when it exceeds ``max_batch`` candidates)."""
    import torch

    if params.mutation_min > params.mutation_max:
        raise ValueError("mutation_min is above mutation_max")
    with torch.inference_mode():
        adv, iterations, queries, best_z, confident = _search(
            model, images, labels, target, perturb, lower, upper, params, ctx, title)
    n = images.shape[0]
    return AttackResult(
        adversarial=adv.clone(),  # a normal tensor: the engine may compute on it freely
        iterations=iterations.cpu().tolist(), queries=queries.cpu().tolist(),
        artifacts={"de_parameters": best_z.cpu().tolist(),
                   "confident_flip": confident.cpu().tolist()},
        notes=f"{int(confident.sum())} of {n} image(s) met the confidence rule "
              f"(p > {params.confidence:g}) and stopped early")


def _search(model: Any, images: Any, labels: Any, target: Any, perturb: Perturb, lower: Any,
            upper: Any, p: Any, ctx: RunContext, title: str) -> tuple[Any, ...]:
    import torch

    dev, g = images.device, ctx.generator
    n, d = images.shape[0], lower.numel()
    s = max(5, p.popsize * d)  # scipy's population size
    span = upper - lower

    def fitness(owners: Any, unit: Any) -> tuple[Any, Any]:
        """(energy A x S, probabilities A x S x K) of the owners' candidates (A x S x D)."""
        a = owners.numel()
        z = (lower + unit * span).reshape(a * s, d)
        who = owners.repeat_interleave(s)
        step = p.max_batch if p.max_batch > 0 else a * s
        logp = torch.cat([torch.log_softmax(model(perturb(images[who[i:i + step]],
                                                          z[i:i + step])).float(), dim=1)
                          for i in range(0, a * s, step)]).view(a, s, -1)
        # log p rather than p: the same ordering (so the same search as the seed's p),
        # but it still separates candidates when p rounds to 1.0 in float32.
        if target is None:
            energy = logp.gather(2, labels[owners].view(a, 1, 1).expand(a, s, 1))
        else:
            energy = -logp.gather(2, target[owners].view(a, 1, 1).expand(a, s, 1))
        return energy.squeeze(2), logp.exp()

    def flipped(owners: Any, probs: Any) -> Any:
        """The confidence rule on each owner's best candidate (probs A x K)."""
        top, cls = probs.max(dim=1)
        moved = cls != labels[owners] if target is None else cls == target[owners]
        return moved & (top > p.confidence)

    everyone = torch.arange(n, device=dev)
    ctx.check_cancelled()
    pop = _latin_hypercube(n, s, d, g, dev)
    energy, probs = fitness(everyone, pop)
    best = energy.argmin(dim=1)
    confident = flipped(everyone, probs[everyone, best])
    active = ~confident
    iterations = torch.zeros(n, dtype=torch.long, device=dev)
    ctx.progress(0.0, f"{title}: initial population of {s} per image evaluated")
    for gen in range(1, p.generations + 1):
        # .any() is one device sync per generation, needed to decide whether to go on.
        if not bool(active.any()):
            break
        ctx.check_cancelled()
        idx = active.nonzero().squeeze(1)
        trial = _best1bin(pop[idx], best[idx], p, g)
        e_trial, p_trial = fitness(idx, trial)
        better = e_trial <= energy[idx]  # scipy accepts ties, letting a plateau drift
        pop[idx] = torch.where(better[..., None], trial, pop[idx])
        energy[idx] = torch.where(better, e_trial, energy[idx])
        probs[idx] = torch.where(better[..., None], p_trial, probs[idx])
        best[idx] = energy[idx].argmin(dim=1)
        iterations[idx] += 1
        done = flipped(idx, probs[idx, best[idx]])
        confident[idx] = done
        active[idx] = ~done
        ctx.progress(gen / p.generations, f"{title}: generation {gen}/{p.generations}, "
                                          f"{int(active.sum())} image(s) still searching")
    best_z = lower + pop[everyone, best] * span
    adv = torch.cat([perturb(images[i:i + 64], best_z[i:i + 64]) for i in range(0, n, 64)])
    queries = s * (iterations + 1)
    return adv, iterations, queries, best_z, confident


def _latin_hypercube(n: int, s: int, d: int, g: Any, dev: Any) -> Any:
    """n populations of s members in [0, 1]^d, one member per stratum of each dimension
    (scipy's default ``init="latinhypercube"``)."""
    import torch

    strata = (torch.arange(s, device=dev, dtype=torch.float32) / s).view(1, s, 1)
    samples = strata + torch.rand(n, s, d, generator=g, device=dev) / s
    order = torch.rand(n, s, d, generator=g, device=dev).argsort(dim=1)
    return samples.gather(1, order)


def _best1bin(pop: Any, best: Any, p: Any, g: Any) -> Any:
    """scipy's best1bin trial vectors for A populations (A x S x D), each with its own
    dithered mutation factor: best + F (x_r0 - x_r1), r0 != r1 != the member itself,
    binomial crossover with one parameter always from the mutant, and parameters that
    leave the unit cube redrawn uniformly (scipy's ``_ensure_constraint``)."""
    import torch

    a, s, d = pop.shape
    dev = pop.device
    me = torch.arange(s, device=dev).expand(a, s)
    # Two distinct partners, neither the member: draw from the remaining indices and
    # step over the excluded ones in increasing order.
    r0 = torch.randint(0, s - 1, (a, s), generator=g, device=dev)
    r0 = r0 + (r0 >= me).long()
    r1 = torch.randint(0, s - 2, (a, s), generator=g, device=dev)
    r1 = r1 + (r1 >= torch.minimum(me, r0)).long()
    r1 = r1 + (r1 >= torch.maximum(me, r0)).long()

    def take(r: Any) -> Any:
        return pop.gather(1, r[..., None].expand(a, s, d))

    f = p.mutation_min + (p.mutation_max - p.mutation_min) * torch.rand(
        a, 1, 1, generator=g, device=dev)
    leader = pop.gather(1, best.view(a, 1, 1).expand(a, 1, d))
    mutant = leader + f * (take(r0) - take(r1))
    cross = torch.rand(a, s, d, generator=g, device=dev) < p.recombination
    fill = torch.randint(0, d, (a, s, 1), generator=g, device=dev)
    cross.scatter_(2, fill, True)
    trial = torch.where(cross, mutant, pop)
    outside = (trial < 0) | (trial > 1)
    return torch.where(outside, torch.rand(a, s, d, generator=g, device=dev), trial)
