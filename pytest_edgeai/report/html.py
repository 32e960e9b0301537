"""The HTML report: ONE self-contained file (inline CSS and SVG, no request leaves the page),
rendered from result records only, section by section (sections.py).

Autoescaping is on: device names, model names, paths and notes come from users. The only markup
embedded unescaped is matplotlib's SVG (charts.py), whose text matplotlib escapes itself.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from ..errors import EdgeAIError
from ..results.compare import BASELINE_RUNS, Comparison, judge_builds, parse_runs, run_release
from ..results.history import History, build_history
from ..results.store import Run, load_run
from .sections import ReportData, all_sections, number, profile_name

REPORT_FILE = "report.html"


def _environment() -> jinja2.Environment:

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("pytest_edgeai", "report/templates"),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        trim_blocks=True, lstrip_blocks=True,
    )
    env.filters["num"] = number
    env.filters["pct"] = lambda v: "-" if v is None else f"{v:+.1%}"
    return env


def render(run: Run, comparison: Comparison | None = None, history: History | None = None) -> str:
    """The report of ``run``, with the comparison and the history when given."""
    data = ReportData(run, comparison, history,
                      problems=list(run.problems) + (list(history.problems) if history else []))
    sections = []
    for section in all_sections({r.suite for r in run.records} | {o.suite for o in run.outcomes}):
        ctx = section.build(data)
        if ctx is not None:
            sections.append({"name": section.name, "title": ctx.get("title", section.title), "ctx": ctx})
    meta: dict[str, Any] = run.meta
    page: str = _environment().get_template("report.html.j2").render(
        run=meta, path=str(run.path), complete=run.complete, release=run_release(meta),
        sections=sections, generated=time.strftime("%Y-%m-%d %H:%M:%S"),
        runs=len(history.runs) if history else 1)
    return page


@dataclass
class Report:
    path: Path
    problems: list[str]  # records and runs that could not be read (the rest were used)


def build_report(run_dir: Path, output: Path | None = None, *, baseline: Path | None = None,
                 history: list[Path] | None = None, tolerances: dict[str, dict[str, float]] | None = None,
                 comparison: Comparison | None = None) -> Report:
    """Render a run directory's report (a partial run too).

    ``baseline``: a run to compare with (default: the one named in run.json, if any);
    ``history``: further runs for the trend (the run itself is added; runs of another measurement
    profile are left out, their figures are not comparable); ``comparison``: one already made.
    """
    run = load_run(run_dir)
    base_path = baseline or run.meta.get("baseline")
    unavailable = []
    if comparison is None and base_path:
        try:
            runs = parse_runs(run.meta.get(BASELINE_RUNS), "run.json baseline_runs")
            comparison = judge_builds(load_run(base_path), run, tolerances, runs=runs)
        except EdgeAIError as exc:  # a baseline deleted since: the run is still reported
            unavailable.append(f"baseline {base_path}: {exc}; reported without a comparison")
    trend = None
    if history:
        profile = profile_name(run.meta)
        others = [other for other in (load_run(p) for p in history if Path(p).resolve() != run.path)
                  if profile_name(other.meta) == profile]
        trend = build_history(others + [run], tolerances)
    target = Path(output) if output else run.path / REPORT_FILE
    try:
        target.write_text(render(run, comparison, trend), encoding="utf-8")
    except OSError as exc:
        raise EdgeAIError(f"{target}: cannot write the report: {exc.strerror or exc}") from None
    problems = list(run.problems) + unavailable + (trend.problems if trend else []) + (
        [f"baseline: {p}" for p in comparison.base.problems] if comparison else [])
    return Report(target, list(dict.fromkeys(problems)))


def write_report(run_dir: Path, output: Path | None = None, **options: Any) -> Path:
    """Render a run directory's report and return its path (options as for build_report)."""
    return build_report(run_dir, output, **options).path
