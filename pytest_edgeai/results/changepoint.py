"""Step changes in a series of results: binary segmentation, each split placed by least squares
and kept only when a rank test says the two sides differ.

Placement: the split that minimises the summed squared deviation of the two sides from their means
(the L2 cost of PELT / binary segmentation), for every split at once from cumulative sums. A rank
statistic is not used to place it because, once the sides separate completely, its maximum drifts
towards the middle of the series. Decision: scipy's mannwhitneyu between the two sides, times the
number of splits scanned (Bonferroni: the scan picked the best of them), must give p < ALPHA, both
sides must hold at least MIN_SEGMENT values, and the median must move by more than ``min_shift``.
Each side is then searched again, so several steps in one history are found.
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
    """The split (number of values before it) with the least squared error, and how many were scanned."""
    n = values.size
    if n < 2 * MIN_SEGMENT:
        return None
    k = np.arange(MIN_SEGMENT, n - MIN_SEGMENT + 1)
    csum = np.cumsum(values)
    left, total = csum[k - 1], csum[-1]
    explained = left ** 2 / k + (total - left) ** 2 / (n - k)  # maximal where the squared error is minimal
    return int(k[int(np.argmax(explained))]), k.size


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
