"""Differential evolution, batched on the device: a score-based black-box optimiser any
plugin can use (three-pixel, colour-balance and rotation-translation do).

A plugin describes its search by a box [lower, upper] of D parameters and a
``perturb(images, candidates)`` function that applies M candidates (M x D) to M images;
:func:`evolve` searches that box for every image at once, minimising the
log-probability of the clean class (or maximising that of the target), and returns the
:class:`AttackResult`. Its settings are :class:`EvolutionParams`, which a plugin's
``Params`` extends.

The defaults are those of Du-Harpur et al.'s search (J Invest Dermatol 2021;141:916-920,
doi:10.1016/j.jid.2020.07.034, and its code at github.com/thelynchlab/adversarial,
``difev_adversarial.py``): popsize 20 (scipy's multiplier: 20 members per searched
parameter), stop after 21 generations (``max_stage = 20`` in a callback that returns True
once its stage counter exceeds it), scipy's defaults otherwise (strategy best1bin,
mutation dithered in [0.5, 1), recombination 0.7, Latin-hypercube initialisation). The
confidence rule: a search stops once the best candidate's class differs from the
original one *and* that class has probability > 0.9; an attack is counted as successful
when the final class differs (their ``a != b``). The engine counts success the same way;
``confidence`` (default 0.9) is the stop rule, and ``artifacts["confident_flip"]`` says
per image whether it was met.

What differs from scipy's ``differential_evolution``, and why:

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

Queries: ``queries[i]`` = population x (``iterations[i]`` + 1): the initial population
counts once, then one population per generation (scipy's ``nfev`` without polish, and
``iterations`` is scipy's ``nit``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .attack import AttackResult, RunContext
from .params import param

# (clean images M x C x H x W, candidates M x D) -> perturbed images M x C x H x W
Perturb = Callable[[Any, Any], Any]


@dataclass
class EvolutionParams:
    """Differential-evolution settings (Du-Harpur et al.'s defaults); a plugin's
    ``Params`` subclasses it and adds its own fields."""

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


def evolve(model: Any, images: Any, labels: Any, target: Any, perturb: Perturb, lower: Any,
           upper: Any, params: Any, ctx: RunContext, title: str) -> AttackResult:
    """Differential evolution (scipy's best1bin with dithering, deferred updating) for
    every image at once, on the images' device. Each image has its own population of
    ``max(5, popsize * D)`` members in the unit cube, mapped to [lower, upper] (tensors
    of D bounds) for ``perturb``. A generation of all images still searching is one
    model call (split only when it exceeds ``max_batch`` candidates). ``params`` is an
    :class:`EvolutionParams` (or a subclass); ``title`` starts the progress messages.
    ``artifacts["de_parameters"]`` holds each image's best candidate in [lower, upper]."""
    import torch

    if params.mutation_min > params.mutation_max:
        raise ValueError("mutation_min is above mutation_max")
    with torch.inference_mode():
        search = _Search(model, images, labels, target, perturb, lower, upper, params)
        adv, iterations, queries, best_z, confident = search.run(ctx, title)
    n = images.shape[0]
    return AttackResult(
        adversarial=adv.clone(),  # a normal tensor: the engine may compute on it freely
        iterations=iterations.cpu().tolist(), queries=queries.cpu().tolist(),
        artifacts={"de_parameters": best_z.cpu().tolist(),
                   "confident_flip": confident.cpu().tolist()},
        notes=f"{int(confident.sum())} of {n} image(s) met the confidence rule "
              f"(p > {params.confidence:g}) and stopped early")


class _Search:
    """One search over a batch: what every generation needs, and the generations."""

    def __init__(self, model: Any, images: Any, labels: Any, target: Any, perturb: Perturb,
                 lower: Any, upper: Any, p: Any) -> None:
        self.model, self.images, self.labels, self.target = model, images, labels, target
        self.perturb, self.lower, self.span, self.p = perturb, lower, upper - lower, p
        self.d = lower.numel()
        self.s = max(5, p.popsize * self.d)  # scipy's population size

    def fitness(self, owners: Any, unit: Any) -> tuple[Any, Any]:
        """(energy A x S, probabilities A x S x K) of the owners' candidates (A x S x D)."""
        import torch

        a, s, p = owners.numel(), self.s, self.p
        z = (self.lower + unit * self.span).reshape(a * s, self.d)
        who = owners.repeat_interleave(s)
        step = p.max_batch if p.max_batch > 0 else a * s
        logp = torch.cat([torch.log_softmax(self.model(self.perturb(
            self.images[who[i:i + step]], z[i:i + step])).float(), dim=1)
            for i in range(0, a * s, step)]).view(a, s, -1)
        # log p rather than p: the same ordering (so the same search as the seed's p),
        # but it still separates candidates when p rounds to 1.0 in float32.
        if self.target is None:
            energy = logp.gather(2, self.labels[owners].view(a, 1, 1).expand(a, s, 1))
        else:
            energy = -logp.gather(2, self.target[owners].view(a, 1, 1).expand(a, s, 1))
        return energy.squeeze(2), logp.exp()

    def flipped(self, owners: Any, probs: Any) -> Any:
        """The confidence rule on each owner's best candidate (probs A x K)."""
        top, cls = probs.max(dim=1)
        moved = (cls != self.labels[owners] if self.target is None
                 else cls == self.target[owners])
        return moved & (top > self.p.confidence)

    def run(self, ctx: RunContext, title: str) -> tuple[Any, ...]:
        """(adversarial, iterations, queries, best candidates, confident) per image."""
        import torch

        images, p, g, s = self.images, self.p, ctx.generator, self.s
        dev, n = images.device, images.shape[0]
        everyone = torch.arange(n, device=dev)
        ctx.check_cancelled()
        pop = _latin_hypercube(n, s, self.d, g, dev)
        energy, probs = self.fitness(everyone, pop)
        best = energy.argmin(dim=1)
        confident = self.flipped(everyone, probs[everyone, best])
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
            e_trial, p_trial = self.fitness(idx, trial)
            better = e_trial <= energy[idx]  # scipy accepts ties, letting a plateau drift
            pop[idx] = torch.where(better[..., None], trial, pop[idx])
            energy[idx] = torch.where(better, e_trial, energy[idx])
            probs[idx] = torch.where(better[..., None], p_trial, probs[idx])
            best[idx] = energy[idx].argmin(dim=1)
            iterations[idx] += 1
            done = self.flipped(idx, probs[idx, best[idx]])
            confident[idx] = done
            active[idx] = ~done
            ctx.progress(gen / p.generations, f"{title}: generation {gen}/{p.generations}, "
                                              f"{int(active.sum())} image(s) still searching")
        best_z = self.lower + pop[everyone, best] * self.span
        adv = torch.cat([self.perturb(images[i:i + 64], best_z[i:i + 64])
                         for i in range(0, n, 64)])
        return adv, iterations, s * (iterations + 1), best_z, confident


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
