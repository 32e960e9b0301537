"""Is a change between two measurements real? Rank tests and bootstrap intervals (scipy).

As asv does: a change is significant when the Mann-Whitney U test on the kept latency samples
gives p < ALPHA *and* the bootstrap interval of the ratio of the metric excludes 1; without
samples, when the two recorded confidence intervals do not overlap.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

ALPHA = 0.002
CONFIDENCE = 0.99
RESAMPLES = 999
MAX_SAMPLES = 4000  # per side; the interval of a ratio does not tighten usefully beyond this

Statistic = Callable[[np.ndarray, int], np.ndarray]


def _pct(q: float) -> Statistic:
    return lambda x, axis=-1: np.percentile(x, q, axis=axis)


# Metrics that are a statistic of the per-query latency samples, so both tests apply to them.
SAMPLE_STATISTICS: dict[str, Statistic] = {
    "latency_mean_ms": lambda x, axis=-1: np.mean(x, axis=axis),
    "latency_p50_ms": _pct(50),
    "latency_p90_ms": _pct(90),
    "latency_p99_ms": _pct(99),
    "throughput_ips": lambda x, axis=-1: 1.0 / np.mean(x, axis=axis),  # items/s = batch / mean time
}


def _prepare(samples: list[float], rng: np.random.Generator) -> np.ndarray:
    x = np.asarray(samples, dtype=np.float64)
    x = x[np.isfinite(x)]
    return rng.choice(x, MAX_SAMPLES, replace=False) if x.size > MAX_SAMPLES else x


def mann_whitney_p(base: list[float], new: list[float]) -> float | None:
    """Two-sided p-value that the two sample sets come from one distribution."""
    from scipy import stats

    if len(base) < 2 or len(new) < 2:
        return None
    return float(stats.mannwhitneyu(base, new, alternative="two-sided").pvalue)


def ratio_cis(base: list[float], new: list[float], seed: int = 0) -> dict[str, tuple[float, float]]:
    """Percentile-bootstrap intervals of statistic(new) / statistic(base) for every
    SAMPLE_STATISTICS metric, from one set of resamples (one scipy.stats.bootstrap call)."""
    from scipy import stats

    rng = np.random.default_rng(seed)
    b, n = _prepare(base, rng), _prepare(new, rng)
    if b.size < 2 or n.size < 2:
        return {}
    names = list(SAMPLE_STATISTICS)

    def ratios(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.stack([SAMPLE_STATISTICS[m](y, axis) / SAMPLE_STATISTICS[m](x, axis) for m in names])

    res = stats.bootstrap((b, n), ratios, n_resamples=RESAMPLES, confidence_level=CONFIDENCE,
                          method="percentile", vectorized=True, paired=False, random_state=rng)
    out = {}
    for name, lo, hi in zip(names, res.confidence_interval.low, res.confidence_interval.high):
        if np.isfinite(lo) and np.isfinite(hi):
            out[name] = (float(lo), float(hi))
    return out


def interval_ratio(base_ci: list[float] | None, new_ci: list[float] | None) -> tuple[float, float] | None:
    """A conservative interval of new/base from two recorded intervals (no samples at hand)."""
    if not base_ci or not new_ci or len(base_ci) != 2 or len(new_ci) != 2:
        return None
    (bl, bh), (nl, nh) = sorted(base_ci), sorted(new_ci)
    if bl <= 0 or bh <= 0:
        return None
    return (nl / bh, nh / bl)


def intervals_overlap(base_ci: list[float], new_ci: list[float]) -> bool:
    (bl, bh), (nl, nh) = sorted(base_ci), sorted(new_ci)
    return not (nh < bl or nl > bh)
