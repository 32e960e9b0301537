"""The trend of every device/model/metric across many runs, with releases and step changes.

Runs are ordered by their start time. A step (``find_steps``) counts when it is significant and the
median moved by more than the metric's tolerance (compare.tolerance_for); a step of a timing that
the same series corrected by each record's canary (compare.canary_of) does not show, or a step of the canary itself, is
machine drift; a step for the worse names the release where it entered: the first run after the
step, its release if it has one, otherwise the releases on either side.

Steps: binary segmentation, each split placed by least squares
and kept only when a rank test says the two sides differ.

Placement: the split that minimises the summed squared deviation of the two sides from their means
(the L2 cost of PELT / binary segmentation), for every split at once from cumulative sums. A rank
statistic is not used to place it because, once the sides separate completely, its maximum drifts
towards the middle of the series. Decision: scipy's mannwhitneyu between the two sides, times the
number of splits scanned (Bonferroni: the scan picked the best of them), must give p < STEP_ALPHA, both
sides must hold at least MIN_SEGMENT values, and the median must move by more than ``min_shift``.
Each side is then searched again, so several steps in one history are found.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .compare import (
    CANARY_SUITE,
    CHANGED,
    DRIFT,
    HIGHER,
    IMPROVED,
    REGRESSED,
    UNKNOWN,
    Key,
    canaries,
    canary_of,
    direction,
    index,
    label,
    numeric_value,
    run_release,
    run_started,
    speed_kind,
    tolerance_for,
)
from .store import Run

# Steps in one series
STEP_ALPHA = 0.05  # with the Bonferroni factor and the tolerance on top, false steps stay rare
MIN_SEGMENT = 3
MAX_DEPTH = 4


def step_rule() -> str:
    """How a step is found, in a sentence a report can show (from the constants ``find_steps`` uses)."""
    return (f"Steps: binary segmentation, each split placed by least squares and kept when Mann-Whitney U between "
            f"the two sides, times the number of splits scanned (Bonferroni), gives p < {STEP_ALPHA:g}, each side "
            f"holds at least {MIN_SEGMENT} runs and the median moved by more than the metric's tolerance.")


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
    if p >= STEP_ALPHA:
        return []
    step = Step(offset + split, float(np.median(left)), float(np.median(right)), p)
    if step.before == 0 or abs(step.after / step.before - 1.0) <= min_shift:
        return []
    return (find_steps(left, min_shift, offset, depth + 1) + [step]
            + find_steps(right, min_shift, offset + split, depth + 1))


# Series across runs

@dataclass(frozen=True)
class Point:
    run: int  # position of the run in History.runs
    value: float
    ci95: tuple[float, float] | None = None
    canary: float | None = None  # the record's canary time per query (its own, else its run's: canary_of)


@dataclass
class StepChange:
    series: Series
    position: int  # first run (index into History.runs) after the step
    before: float
    after: float
    p_value: float
    verdict: str
    entered: str  # the release (or the releases around it) where the change entered

    @property
    def change(self) -> float:
        return self.after / self.before - 1.0 if self.before else float("inf")


@dataclass
class Series:
    key: Key
    metric: str
    unit: str
    points: list[Point] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{label(self.key)} {self.metric}"


@dataclass
class RunInfo:
    path: str
    run_id: str
    started: float
    release: str | None


@dataclass
class History:
    runs: list[RunInfo]
    series: dict[tuple[Key, str], Series]
    steps: list[StepChange] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[StepChange]:
        return [s for s in self.steps if s.verdict == REGRESSED]

    def releases(self) -> list[tuple[int, str]]:
        """(run position, release) where the release changes along the history."""
        out, last = [], None
        for i, r in enumerate(self.runs):
            if r.release and r.release != last:
                out.append((i, r.release))
                last = r.release
        return out


def _entered(runs: list[RunInfo], position: int) -> str:
    """'at release v2', 'between v1 and v2', or the run itself when no release was recorded."""
    if runs[position].release:
        return f"at release {runs[position].release}"
    before = next((r.release for r in reversed(runs[:position]) if r.release), None)
    after = next((r.release for r in runs[position:] if r.release), None)
    if before or after:
        return f"between {before or 'the first run'} and {after or 'the latest run'}"
    return f"at run {runs[position].run_id} (no release recorded)"


def build_history(runs: list[Run], tolerances: dict[str, dict[str, float]] | None = None) -> History:
    """Series of every numeric metric over ``runs`` (any order: sorted by start), with steps."""
    ordered = sorted(runs, key=run_started)
    infos = [RunInfo(str(r.path), str(r.meta.get("run_id") or r.path.name), run_started(r),
                     run_release(r.meta)) for r in ordered]
    series: dict[tuple[Key, str], Series] = {}
    problems: list[str] = []
    for pos, run in enumerate(ordered):
        problems.extend(run.problems)
        canary = canaries(run)
        records, _ = index([r for r in run.records if r.status == "ok"])
        for key, record in records.items():
            for name, entry in record.metrics.items():
                value = numeric_value(entry)
                if value is None:
                    continue
                s = series.get((key, name))
                if s is None:
                    s = series[(key, name)] = Series(key, name, str(entry.get("unit") or ""))
                ci = entry.get("ci95")
                s.points.append(Point(pos, value, tuple(ci) if isinstance(ci, list) and len(ci) == 2 else None,
                                      canary_of(record, canary)))
    history = History(infos, series, problems=problems)
    for s in series.values():
        history.steps.extend(_steps(s, infos, tolerances))
    return history


def _steps(s: Series, infos: list[RunInfo], tolerances: dict[str, dict[str, float]] | None) -> list[StepChange]:
    tol = tolerance_for(s.key[0], s.metric, tolerances)
    sense = direction(s.metric, s.unit)
    kind = speed_kind(s.metric, s.unit)
    corrected = None  # where the canary stepped as well, the step is the machine's
    if kind and all(p.canary for p in s.points):
        corrected = {step.index for step in find_steps([p.value * p.canary ** kind for p in s.points
                                                        if p.canary], min_shift=tol)}
    out = []
    for step in find_steps([p.value for p in s.points], min_shift=tol):
        if s.key.suite == CANARY_SUITE or (corrected is not None and not corrected & {step.index - 1, step.index,
                                                                                     step.index + 1}):
            verdict = DRIFT
        elif sense == UNKNOWN:
            verdict = CHANGED
        else:
            verdict = IMPROVED if (step.after > step.before) == (sense == HIGHER) else REGRESSED
        position = s.points[step.index].run
        out.append(StepChange(s, position, step.before, step.after, step.p_value, verdict,
                              _entered(infos, position)))
    return out
