"""A run against its baseline at the end of a session, and its metrics as CI properties.

Plain Python for the plugin's hooks: resolve --edgeai-baseline (path | latest | release:TAG),
compare, and say in words what regressed; a baseline that cannot be found is an error a nightly
job must see, not a silent pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import EdgeAIError
from .compare import Comparison, compare_runs, summary_lines
from .record import Record
from .release import find_run, run_release
from .store import RunStore, load_run, read_meta


@dataclass
class Outcome:
    comparison: Comparison | None = None
    error: str | None = None
    lines: list[str] = field(default_factory=list)

    @property
    def regressed(self) -> bool:
        return bool(self.comparison and self.comparison.regressions)


def against_baseline(run_dir: Path, ref: str | None, report_dir: Path,
                     tolerances: dict[str, dict[str, float]] | None, fail: bool) -> Outcome:
    """Compare ``run_dir`` with the baseline ``ref``; with ``fail``, a missing baseline is an error."""
    if not ref:
        if fail:
            return Outcome(error="--edgeai-fail-on-regression needs --edgeai-baseline (a run, 'latest' or "
                                 "'release:TAG') to compare with", lines=[])
        return Outcome()
    try:
        base_path = find_run(ref, report_dir, exclude=run_dir)
        comparison = compare_runs(load_run(base_path), load_run(run_dir), tolerances)
    except EdgeAIError as exc:
        return Outcome(error=f"--edgeai-baseline {ref}: {exc}")
    lines = summary_lines(comparison)
    if fail and comparison.regressions:
        lines.append(f"edgeai: {len(comparison.regressions)} significant regression(s) beyond tolerance "
                     f"[--edgeai-fail-on-regression]")
    return Outcome(comparison, None, lines)


def metric_properties(records: list[Record]) -> list[tuple[str, object]]:
    """(name, value) pairs for JUnit XML properties: edgeai.<model>.<scenario>[.b<batch>].<metric>."""
    out: list[tuple[str, object]] = []
    for r in records:
        if r.status != "ok":
            out.append((f"edgeai.{r.model.get('name', '?')}.{r.scenario.get('name', '?')}.error", r.error or ""))
            continue
        batch = r.scenario.get("batch")
        prefix = f"edgeai.{r.model.get('name', '?')}.{r.scenario.get('name', '?')}" + (
            f".b{batch}" if isinstance(batch, int) else "")
        for name, entry in r.metrics.items():
            value = entry.get("value")
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out.append((f"{prefix}.{name}", value))
        out.append((f"{prefix}.record_id", r.id))
    return out


def stamp_release(store: RunStore) -> str | None:
    """Write the run's release (--edgeai-release, else the git tag) into run.json as ``release``."""
    meta, problems = read_meta(store.path)
    if problems:
        return None
    release = run_release(meta)
    store.update_meta(release=release)
    return release
