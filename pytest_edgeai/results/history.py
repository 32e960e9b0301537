"""The trend of every device/model/metric across many runs, with releases and step changes.

Runs are ordered by their start time. A step (changepoint.py) counts when it is significant and
the median moved by more than the metric's tolerance (compare.tolerance_for); a step for the
worse names the release where it entered: the first run after the step, its release if it has one,
otherwise the releases on either side.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .changepoint import find_steps
from .compare import CHANGED, IMPROVED, REGRESSED, numeric_value, tolerance_for
from .direction import HIGHER, UNKNOWN, direction
from .identity import Key, index, label
from .release import run_release, run_started
from .store import Run


@dataclass(frozen=True)
class Point:
    run: int  # position of the run in History.runs
    value: float
    ci95: tuple[float, float] | None = None


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
                s.points.append(Point(pos, value, tuple(ci) if isinstance(ci, list) and len(ci) == 2 else None))
    history = History(infos, series, problems=problems)
    for s in series.values():
        history.steps.extend(_steps(s, infos, tolerances))
    return history


def _steps(s: Series, infos: list[RunInfo], tolerances) -> list[StepChange]:
    tol = tolerance_for(s.key[0], s.metric, tolerances)
    sense = direction(s.metric, s.unit)
    out = []
    for step in find_steps([p.value for p in s.points], min_shift=tol):
        if sense == UNKNOWN:
            verdict = CHANGED
        else:
            verdict = IMPROVED if (step.after > step.before) == (sense == HIGHER) else REGRESSED
        position = s.points[step.index].run
        out.append(StepChange(s, position, step.before, step.after, step.p_value, verdict,
                              _entered(infos, position)))
    return out
