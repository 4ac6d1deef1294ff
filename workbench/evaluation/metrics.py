"""The metrics of Finlayson et al. (2019), Table 1, and of the detector matrix.

- accuracy: fraction of images whose argmax class is the label;
- AUROC of the positive-class probability (the model card's positive class), computed as
  the Mann-Whitney U statistic with ties counted half (what scikit-learn's
  ``roc_auc_score`` gives);
- mean confidence in the predicted class (the max softmax probability);
- 95% confidence intervals by the percentile bootstrap over images (seeded), the usual
  choice for small test sets where a normal approximation is poor near 0 and 1.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

BOOTSTRAP = 1000


def accuracy(pred: Sequence[int], label: Sequence[int]) -> float:
    p, y = np.asarray(pred), np.asarray(label)
    return float((p == y).mean()) if len(y) else float("nan")


def auroc(scores: Sequence[float], positive: Sequence[bool]) -> float:
    """Area under the ROC curve of ``scores`` for ``positive`` (NaN when one class is
    absent). Equals P(score of a random positive > score of a random negative)."""
    s = np.asarray(scores, dtype=np.float64)
    pos = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    # average ranks over ties, vectorised: the bootstrap calls this a thousand times
    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2.0)[inverse]
    u = ranks[pos].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def roc_curve(scores: Sequence[float], positive: Sequence[bool]
              ) -> tuple[np.ndarray, np.ndarray]:
    """(false-positive rates, true-positive rates) at every distinct threshold."""
    s = np.asarray(scores, dtype=np.float64)
    pos = np.asarray(positive, dtype=bool)
    thresholds = np.r_[np.inf, np.unique(s)[::-1]]
    tpr = np.array([(s[pos] >= t).mean() if pos.any() else np.nan for t in thresholds])
    fpr = np.array([(s[~pos] >= t).mean() if (~pos).any() else np.nan for t in thresholds])
    return fpr, tpr


def bootstrap_ci(statistic: Callable[[np.ndarray], float], n: int, *, seed: int = 0,
                 resamples: int = BOOTSTRAP, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic(indices)`` over ``n`` items.
    Resamples where the statistic is undefined (NaN, e.g. AUROC with one class) are
    dropped."""
    if n == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(resamples):
        v = statistic(rng.integers(0, n, n))
        if np.isfinite(v):
            values.append(v)
    if not values:
        return float("nan"), float("nan")
    a = (1.0 - level) / 2.0
    lo, hi = np.quantile(values, [a, 1.0 - a])
    return float(lo), float(hi)


def with_ci(statistic: Callable[[np.ndarray], float], n: int, seed: int
            ) -> dict[str, float]:
    value = statistic(np.arange(n))
    lo, hi = bootstrap_ci(statistic, n, seed=seed)
    return {"value": value, "ci_low": lo, "ci_high": hi}
