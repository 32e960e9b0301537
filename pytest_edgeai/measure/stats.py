"""Statistics of latency samples.

Timings are not normal (long right tails, bimodal when a governor shifts clocks), so intervals
are bootstrap percentile intervals from scipy rather than mean +/- k*sigma.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

CV_WARNING = 0.10
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_MAX_SAMPLES = 20_000  # subsample beyond this: the interval does not need more


@dataclass(frozen=True)
class Summary:
    """Latency statistics in milliseconds, with a 95% interval of the median."""

    count: int
    mean_ms: float
    median_ms: float
    p90_ms: float
    p99_ms: float
    min_ms: float
    max_ms: float
    stddev_ms: float
    cv: float
    median_ci95_ms: tuple[float, float]

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def bootstrap_ci(values: np.ndarray, statistic, seed: int = 0,
                 confidence: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic``; degenerate for fewer than 2 values."""
    from scipy import stats

    values = np.asarray(values, dtype=np.float64)
    if values.size < 2 or np.all(values == values[0]):
        v = float(statistic(values)) if values.size else float("nan")
        return (v, v)
    rng = np.random.default_rng(seed)
    if values.size > BOOTSTRAP_MAX_SAMPLES:
        values = rng.choice(values, BOOTSTRAP_MAX_SAMPLES, replace=False)
    res = stats.bootstrap((values,), statistic, n_resamples=BOOTSTRAP_RESAMPLES,
                          confidence_level=confidence, method="percentile",
                          vectorized=True, random_state=rng)
    return (float(res.confidence_interval.low), float(res.confidence_interval.high))


def summarize(samples_ns: list[int] | np.ndarray) -> Summary:
    """Summarise per-query latencies given in nanoseconds."""
    ms = np.asarray(samples_ns, dtype=np.float64) / 1e6
    if ms.size == 0:
        raise ValueError("no samples to summarise")
    mean = float(ms.mean())
    std = float(ms.std(ddof=1)) if ms.size > 1 else 0.0
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return Summary(
        count=int(ms.size), mean_ms=mean, median_ms=float(p50), p90_ms=float(p90),
        p99_ms=float(p99), min_ms=float(ms.min()), max_ms=float(ms.max()), stddev_ms=std,
        cv=std / mean if mean > 0 else 0.0,
        median_ci95_ms=bootstrap_ci(ms, lambda x, axis=-1: np.median(x, axis=axis)),
    )


def throughput_ci(samples_ns: list[int] | np.ndarray, batch: int) -> tuple[float, float]:
    """95% interval of items/s, from the mean time per query (throughput = batch / mean)."""
    s = np.asarray(samples_ns, dtype=np.float64) / 1e9
    lo, hi = bootstrap_ci(s, lambda x, axis=-1: np.mean(x, axis=axis))
    return (batch / hi, batch / lo) if lo > 0 else (float("nan"), float("nan"))
