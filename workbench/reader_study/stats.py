"""The reader study's statistics, small and checked by hand in tests/test_reader_study.py.

- Proportions with Wilson score 95% intervals (Wilson 1927; recommended over the Wald
  interval for small n by Brown, Cai & DasGupta, Stat. Sci. 16:101, 2001).
- McNemar's test for paired correct/incorrect outcomes (McNemar 1947), exact binomial
  when the discordant pairs are fewer than 25, else chi-square with continuity
  correction (Edwards 1948); the rule statsmodels' ``mcnemar`` documents.
- Fisher's exact test (two-sided) for two independent proportions.
- Fleiss' kappa for agreement of several raters on nominal categories (Fleiss 1971).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

Z95 = 1.959963984540054  # the standard normal's 97.5% quantile
EXACT_BELOW = 25  # discordant pairs: exact binomial McNemar below this, chi-square above


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval for k successes in n trials:

        centre = (k + z²/2) / (n + z²)
        half   = z / (n + z²) · sqrt(k (n - k) / n + z²/4)

    None when n is 0. Unlike the Wald interval it stays inside [0, 1] and keeps close to
    its nominal coverage at 0/n, n/n and small n (a reader study's usual sizes)."""
    if n <= 0:
        return None
    z2 = z * z
    centre = (k + z2 / 2) / (n + z2)
    half = z / (n + z2) * math.sqrt(k * (n - k) / n + z2 / 4)
    return max(0.0, centre - half), min(1.0, centre + half)


def proportion(k: int, n: int) -> dict[str, Any]:
    """k of n, the proportion and its Wilson 95% interval (None values when n is 0)."""
    ci = wilson(k, n)
    return {"k": int(k), "n": int(n), "value": k / n if n else None,
            "ci95": list(ci) if ci else None}


def mcnemar(b: int, c: int) -> dict[str, Any]:
    """McNemar's test on the discordant pairs of a paired 2x2 table: ``b`` pairs where
    only the first outcome was correct, ``c`` where only the second was.

    Under H0 each discordant pair goes either way with probability 1/2:
    - b + c < 25: exact, p = min(1, 2 · P(X <= min(b, c))), X ~ Binomial(b + c, 1/2);
      the statistic reported is min(b, c) (statsmodels' convention);
    - otherwise: chi² = (|b - c| - 1)² / (b + c) on 1 degree of freedom.
    No discordant pairs: nothing to test (p = 1, statistic None)."""
    from scipy import stats

    n = b + c
    if n == 0:
        return {"b": b, "c": c, "test": "none (no discordant pairs)", "statistic": None,
                "p": 1.0}
    if n < EXACT_BELOW:
        p = min(1.0, 2.0 * float(stats.binom.cdf(min(b, c), n, 0.5)))
        return {"b": b, "c": c, "test": "exact binomial", "statistic": min(b, c), "p": p}
    chi2 = (abs(b - c) - 1) ** 2 / n
    return {"b": b, "c": c, "test": "chi-square with continuity correction",
            "statistic": chi2, "p": float(stats.chi2.sf(chi2, 1))}


def paired_table(first: Sequence[bool], second: Sequence[bool]) -> dict[str, int]:
    """The paired 2x2 table of two outcomes per pair: a both right, b first only, c
    second only, d neither."""
    pairs = list(zip(first, second, strict=True))
    return {"a": sum(f and s for f, s in pairs), "b": sum(f and not s for f, s in pairs),
            "c": sum(s and not f for f, s in pairs),
            "d": sum(not f and not s for f, s in pairs), "pairs": len(pairs)}


def fisher(k1: int, n1: int, k2: int, n2: int) -> dict[str, Any]:
    """Fisher's exact test, two-sided, of k1/n1 against k2/n2 (independent groups)."""
    from scipy import stats

    if n1 == 0 or n2 == 0:
        return {"test": "Fisher exact (two-sided)", "odds_ratio": None, "p": None}
    odds, p = stats.fisher_exact([[k1, n1 - k1], [k2, n2 - k2]], alternative="two-sided")
    return {"test": "Fisher exact (two-sided)",
            "odds_ratio": None if math.isnan(odds) or math.isinf(odds) else float(odds),
            "p": float(p)}


def fleiss_kappa(counts: Sequence[Sequence[int]]) -> dict[str, Any]:
    """Fleiss' kappa of N subjects each rated by the same number n >= 2 of raters into k
    categories; ``counts[i][j]`` raters put subject i in category j.

        p_j  = sum_i n_ij / (N n)                      share of all ratings in j
        P_i  = (sum_j n_ij² - n) / (n (n - 1))         agreement on subject i
        P̄ = mean_i P_i,   P̄e = sum_j p_j²,   kappa = (P̄ - P̄e) / (1 - P̄e)

    kappa is None when P̄e is 1 (every rating in one category: agreement cannot be told
    from chance)."""
    rows = [list(map(int, r)) for r in counts]
    if not rows:
        return {"kappa": None, "subjects": 0, "raters": 0, "p_bar": None, "p_e": None}
    n = sum(rows[0])
    if n < 2 or any(sum(r) != n for r in rows):
        raise ValueError("Fleiss' kappa needs the same number (>= 2) of raters per subject")
    big_n, k = len(rows), len(rows[0])
    p_j = [sum(r[j] for r in rows) / (big_n * n) for j in range(k)]
    p_i = [(sum(x * x for x in r) - n) / (n * (n - 1)) for r in rows]
    p_bar = sum(p_i) / big_n
    p_e = sum(p * p for p in p_j)
    kappa = None if abs(1.0 - p_e) < 1e-12 else (p_bar - p_e) / (1.0 - p_e)
    return {"kappa": kappa, "subjects": big_n, "raters": n, "p_bar": p_bar, "p_e": p_e}
