"""Which lesions a study shows, as which version, in which order: seeded, nothing else.

Two designs:

- ``paired`` (Du-Harpur et al.'s: each of their 102 lesions shown unmodified and
  adversarial, 204 images): every chosen lesion is shown twice, once original and once
  manipulated, so a reader's diagnosis of the two versions of the same lesion is a pair
  for McNemar's test. The twins are put in different reading sessions (block 1, block 2;
  a washout between them is the study's choice), and which version comes first is
  counterbalanced: half of each block is manipulated. Exactly half the images are
  manipulated.
- ``single``: every lesion is shown once, original or manipulated (about the requested
  fraction, allotted per class so both classes are manipulated alike). Nothing is paired
  within a reader: originals and manipulated images are different lesions (scored with
  Fisher's exact test instead, see score.py).

Lesions are drawn balanced over the classes (alternately from each class's seeded
permutation, until one runs out). Attacks are dealt round-robin over the manipulated
lesions in a seeded order, so each attack gets about the same number. Case names are
``case_001``... in the final reading order: they say nothing about the image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

DESIGNS = ("paired", "single")


@dataclass(frozen=True)
class PlannedCase:
    case: str
    item: Any  # a workbench.evaluation.dataset.Item: id, path, label
    manipulated: bool
    attack: str | None
    block: int
    twin: str | None = None  # the case showing the other version of the same lesion


class DesignError(ValueError):
    """The design cannot be made from these settings; the message says why."""


def _balanced(items: list[Any], n: int, rng: Any) -> list[Any]:
    """``n`` items drawn alternately from each class's seeded permutation."""
    by_class: dict[int, list[Any]] = {}
    for it in sorted(items, key=lambda it: (it.id, it.path)):
        by_class.setdefault(it.label, []).append(it)
    queues = [[group[i] for i in rng.permutation(len(group))]
              for _, group in sorted(by_class.items())]
    chosen: list[Any] = []
    while len(chosen) < n and any(queues):
        for q in queues:
            if q and len(chosen) < n:
                chosen.append(q.pop(0))
    return chosen


def _allot(counts: list[int], fraction: float) -> list[int]:
    """Manipulated lesions per class: ``fraction`` of each, rounded so that they add up
    to round(fraction x total) (largest remainder)."""
    want = round(fraction * sum(counts))
    exact = [fraction * c for c in counts]
    alloc = [int(x) for x in exact]
    order = sorted(range(len(counts)), key=lambda i: exact[i] - alloc[i], reverse=True)
    for i in order[:want - sum(alloc)]:
        alloc[i] += 1
    return alloc


def _deal(lesions: list[Any], attacks: list[str], rng: Any) -> dict[str, str]:
    """Lesion id -> attack, round-robin over a seeded order of the lesions."""
    order = [lesions[i] for i in rng.permutation(len(lesions))]
    return {it.id: attacks[k % len(attacks)] for k, it in enumerate(order)}


def _name(index: int, total: int) -> str:
    return f"case_{index + 1:0{max(3, len(str(total)))}d}"


def plan_study(items: list[Any], *, design: str, n: int | None, fraction: float,
               attacks: list[str], seed: int) -> list[PlannedCase]:
    """The cases in reading order. ``n``: images shown (None: every lesion of ``items``,
    twice in the paired design)."""
    if design not in DESIGNS:
        raise DesignError(f"unknown design {design!r}; choose from {', '.join(DESIGNS)}")
    if not attacks:
        raise DesignError("name at least one attack (--attacks)")
    if not 0.0 < fraction < 1.0:
        raise DesignError(f"the fraction manipulated must be between 0 and 1 (got {fraction})")
    if design == "paired" and abs(fraction - 0.5) > 1e-9:
        raise DesignError("the paired design shows every lesion original and manipulated, so "
                          "half the images are manipulated; use --design single for "
                          f"{fraction:g}")
    per_lesion = 2 if design == "paired" else 1
    if n is None:
        n = per_lesion * len(items)
    if n < 2 or n % per_lesion:
        raise DesignError(f"--n {n}: the {design} design needs "
                          + ("an even number of images, at least 2" if per_lesion == 2
                             else "at least 2 images"))
    if n // per_lesion > len(items):
        raise DesignError(f"--n {n} needs {n // per_lesion} lesions but the data has "
                          f"{len(items)}")
    rng = np.random.default_rng(seed)
    lesions = _balanced(items, n // per_lesion, rng)
    if design == "paired":
        return _paired(lesions, attacks, rng)
    return _single(lesions, fraction, attacks, rng)


def _paired(lesions: list[Any], attacks: list[str], rng: Any) -> list[PlannedCase]:
    m = len(lesions)
    # The lesions shown manipulated in block 1 (their originals then come in block 2):
    # half of them, seeded; with an odd count the odd one goes either way by the seed.
    k = m // 2 + (m % 2) * int(rng.integers(2))
    first = rng.permutation(np.arange(m) < k)
    dealt = _deal(lesions, attacks, rng)
    blocks = []
    for b in (0, 1):
        entries = [(it, bool(first[i]) if b == 0 else not first[i])
                   for i, it in enumerate(lesions)]
        blocks.append([entries[i] for i in rng.permutation(m)])
    total = 2 * m
    names: dict[tuple[str, bool], str] = {}
    flat = [(b, it, man) for b, block in enumerate(blocks) for it, man in block]
    for k, (_, it, man) in enumerate(flat):
        names[(it.id, man)] = _name(k, total)
    return [PlannedCase(names[(it.id, man)], it, man, dealt[it.id] if man else None, b,
                        twin=names[(it.id, not man)]) for b, it, man in flat]


def _single(lesions: list[Any], fraction: float, attacks: list[str], rng: Any
            ) -> list[PlannedCase]:
    by_class: dict[int, list[Any]] = {}
    for it in lesions:
        by_class.setdefault(it.label, []).append(it)
    labels = sorted(by_class)
    alloc = _allot([len(by_class[c]) for c in labels], fraction)
    manipulated = {it.id for c, k in zip(labels, alloc, strict=True)
                   for it in by_class[c][:k]}  # each class's list is already seeded
    dealt = _deal([it for it in lesions if it.id in manipulated], attacks, rng)
    order = [lesions[i] for i in rng.permutation(len(lesions))]
    return [PlannedCase(_name(k, len(order)), it, it.id in manipulated, dealt.get(it.id), 0)
            for k, it in enumerate(order)]

