"""Step changes in a series of results: Pettitt's rank test with binary segmentation.

Pettitt's statistic is the Mann-Whitney U between the values before and after each split point,
computed for every split at once from one ranking (scipy.stats.rankdata); the split with the
largest |U| is the candidate, kept when scipy's mannwhitneyu between the two sides gives p < ALPHA
and both sides hold at least MIN_SEGMENT values. Each side is then searched again (binary
segmentation), so several steps in one history are found.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ALPHA = 0.01
MIN_SEGMENT = 3
MAX_DEPTH = 4


@dataclass(frozen=True)
class Step:
    index: int  # first position after the step
    before: float  # median of the segment before
    after: float  # median of the segment after
    p_value: float


def _best_split(values: np.ndarray) -> int | None:
    from scipy.stats import rankdata

    n = values.size
    if n < 2 * MIN_SEGMENT:
        return None
    ranks = rankdata(values)
    k = np.arange(1, n)
    u = 2.0 * np.cumsum(ranks)[:-1] - k * (n + 1)  # Pettitt's U_k for a split after k values
    u[: MIN_SEGMENT - 1] = 0
    u[n - MIN_SEGMENT:] = 0
    best = int(np.argmax(np.abs(u)))
    return best + 1 if u[best] != 0 else None


def find_steps(values: list[float] | np.ndarray, offset: int = 0, depth: int = 0) -> list[Step]:
    """Steps in ``values`` (positions relative to the whole series), in order."""
    from scipy.stats import mannwhitneyu

    x = np.asarray(values, dtype=np.float64)
    split = _best_split(x)
    if split is None or depth >= MAX_DEPTH:
        return []
    left, right = x[:split], x[split:]
    if np.ptp(x) == 0:
        return []
    p = float(mannwhitneyu(left, right, alternative="two-sided").pvalue)
    if p >= ALPHA:
        return []
    step = Step(offset + split, float(np.median(left)), float(np.median(right)), p)
    return (find_steps(left, offset, depth + 1) + [step] + find_steps(right, offset + split, depth + 1))
