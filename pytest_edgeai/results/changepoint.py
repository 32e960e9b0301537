"""Step changes in a series of results: a maximally selected rank-sum scan with binary segmentation.

At every split point the Mann-Whitney rank sum of the values before it is standardised (z-score
under "no change"), all splits at once from one ranking (scipy.stats.rankdata); the split with the
largest |z| is the candidate. It is kept when scipy's mannwhitneyu between the two sides, multiplied
by the number of splits scanned (Bonferroni: the scan picked the best of them), gives p < ALPHA and
both sides hold at least MIN_SEGMENT values. Each side is then searched again (binary
segmentation), so several steps in one history are found.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ALPHA = 0.05  # with the Bonferroni factor and the tolerance on top, false steps stay rare
MIN_SEGMENT = 3
MAX_DEPTH = 4


@dataclass(frozen=True)
class Step:
    index: int  # first position after the step
    before: float  # median of the segment before
    after: float  # median of the segment after
    p_value: float  # corrected for the number of splits scanned


def _best_split(values: np.ndarray) -> tuple[int, int] | None:
    """The split (number of values before it) where the values shift most, and how many were scanned."""
    from scipy.stats import rankdata

    n = values.size
    if n < 2 * MIN_SEGMENT:
        return None
    k = np.arange(MIN_SEGMENT, n - MIN_SEGMENT + 1)
    w = np.cumsum(rankdata(values))[k - 1]
    z = (w - k * (n + 1) / 2.0) / np.sqrt(k * (n - k) * (n + 1) / 12.0)
    best = int(np.argmax(np.abs(z)))
    return (int(k[best]), k.size) if z[best] != 0 else None


def find_steps(values: list[float] | np.ndarray, min_shift: float = 0.0, offset: int = 0,
               depth: int = 0) -> list[Step]:
    """Steps in ``values`` (positions relative to the whole series), in order; a step must also move
    the median by more than ``min_shift`` (a fraction), so segmentation does not chase noise."""
    from scipy.stats import mannwhitneyu

    x = np.asarray(values, dtype=np.float64)
    found = _best_split(x) if depth < MAX_DEPTH and x.size and np.ptp(x) > 0 else None
    if found is None:
        return []
    split, scanned = found
    left, right = x[:split], x[split:]
    p = min(1.0, float(mannwhitneyu(left, right, alternative="two-sided").pvalue) * scanned)
    if p >= ALPHA:
        return []
    step = Step(offset + split, float(np.median(left)), float(np.median(right)), p)
    if step.before == 0 or abs(step.after / step.before - 1.0) <= min_shift:
        return []
    return (find_steps(left, min_shift, offset, depth + 1) + [step]
            + find_steps(right, min_shift, offset + split, depth + 1))
