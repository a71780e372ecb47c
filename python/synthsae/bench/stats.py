"""Statistics over seeds: each metric's mean, sample std and 95 % confidence interval, and paired
comparisons of architectures.

Runs with the same seed share the world's training and evaluation rows, so two architectures are
compared seed by seed (paired). The test is the **paired t-test** (two-sided) on the per-seed
differences: a difference of a metric over reseeds sums many small effects (data order, initialisation),
so it is close to normal, and the t-test gives usable p-values with the 2–5 seeds sweeps run. The exact
sign-flip permutation test, free of that assumption, is kept beside it, but its smallest possible
two-sided p-value is ``2 / 2ⁿ`` for ``n`` seeds (0.5 with 2 seeds, 0.0625 with 5): below 6 seeds it
cannot reach 0.05. No correction for multiple comparisons is applied: with many pairs and metrics some
p-values below 0.05 are expected by chance.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import TypedDict

import numpy as np

#: Confidence level of the intervals.
CONFIDENCE = 0.95

#: Significance level of the compact comparison list.
ALPHA = 0.05

#: Above this many seeds the exact sign-flip test (2ⁿ patterns) is not computed.
MAX_SIGN_FLIP_SEEDS = 20


class MetricStats(TypedDict):
    """A metric over seeds: ``n`` finite values, their mean, sample std (``ddof = 1``) and the 95 %
    t-interval of the mean (None below two values), and the values in seed order (None where not
    finite)."""

    n: int
    mean: float | None
    std: float | None
    ci95: list[float] | None
    values: list[float | None]


class PairedTest(TypedDict):
    """A paired comparison of ``a`` and ``b`` on the seeds both have: ``n`` pairs, the mean of
    ``a - b``, the paired t statistic and its two-sided p-value, and the exact two-sided sign-flip
    p-value (None above :data:`MAX_SIGN_FLIP_SEEDS` pairs)."""

    n: int
    mean_difference: float
    t: float | None
    p_value: float | None
    p_sign_flip: float | None


def describe(values: Sequence[float | None]) -> MetricStats:
    """Mean, sample std and 95 % confidence interval (Student t, ``n - 1`` degrees of freedom) of the
    finite ``values``; with one value the std and interval are None, with none the mean too."""
    from scipy import stats

    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    kept: list[float | None] = [float(v) if v is not None and math.isfinite(v) else None for v in values]
    n = len(finite)
    if n == 0:
        return {"n": 0, "mean": None, "std": None, "ci95": None, "values": kept}
    x = np.asarray(finite, dtype=np.float64)
    mean = float(x.mean())
    if n == 1:
        return {"n": 1, "mean": mean, "std": None, "ci95": None, "values": kept}
    std = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1)) * std / math.sqrt(n)
    return {"n": n, "mean": mean, "std": std, "ci95": [mean - half, mean + half], "values": kept}


def paired_test(a: Sequence[float], b: Sequence[float]) -> PairedTest:
    """Paired comparison of ``a [n]`` and ``b [n]`` (same seeds, same order; ``n >= 2`` finite pairs).

    The t-test's p-value is scipy's ``ttest_rel``; where every difference is the same (no spread) it is
    0 when they are not zero and 1 when they are (the t statistic is then ±inf or undefined)."""
    from scipy import stats

    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    n = len(d)
    mean = float(d.mean())
    if float(d.std()) == 0.0:
        t, p = (None, 1.0) if mean == 0.0 else (math.copysign(math.inf, mean), 0.0)
    else:
        result = stats.ttest_rel(a, b)
        t, p = float(result.statistic), float(result.pvalue)
    return {
        "n": n,
        "mean_difference": mean,
        "t": t,
        "p_value": p,
        "p_sign_flip": sign_flip_p(d) if n <= MAX_SIGN_FLIP_SEEDS else None,
    }


def sign_flip_p(differences: np.ndarray) -> float:
    """Exact two-sided p-value of the sign-flip permutation test of ``differences [n]``: the share of
    the ``2ⁿ`` sign patterns whose mean is at least as far from 0 as the observed mean (the observed
    pattern included)."""
    d = np.asarray(differences, dtype=np.float64)
    observed = abs(float(d.mean()))
    signs = np.array(list(itertools.product((1.0, -1.0), repeat=len(d))))
    means = np.abs(signs @ d) / len(d)
    # a relative slack so that patterns equal to the observed one up to rounding count as "as extreme"
    slack = 1e-12 * max(1.0, float(np.abs(d).max(initial=0.0)))
    return float(np.mean(means >= observed - slack))
