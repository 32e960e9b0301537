"""The HTML report of a run: one self-contained file, rendered from result records only.

Autoescaping is on: device names, model names, paths and notes come from users.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from ..results.record import Record
from ..results.store import Run, load_run
from .terminal import verdicts

REPORT_FILE = "report.html"


def _environment():
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("pytest_edgeai", "report/templates"),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        trim_blocks=True, lstrip_blocks=True,
    )


def _row(r: Record) -> dict[str, Any]:
    return {"device": r.device.get("name", "?"), "model": r.model.get("name", "?"),
            "scenario": r.scenario.get("name", "?"), "batch": r.scenario.get("batch", ""),
            "metrics": r.metrics, "claims": verdicts(r), "status": r.status, "error": r.error,
            "warnings": r.warnings, "test_id": r.test_id}


def context(run: Run) -> dict[str, Any]:
    suites: dict[str, list[dict[str, Any]]] = defaultdict(list)
    claims: list[dict[str, Any]] = []
    for r in sorted(run.records, key=lambda r: (r.suite, r.created)):
        suites[r.suite].append(_row(r))
        claims.extend(r.claims)
    metric_names = {s: sorted({m for row in rows for m in row["metrics"]}) for s, rows in suites.items()}
    return {
        "run": run.meta, "path": str(run.path), "complete": run.complete, "problems": run.problems,
        "suites": dict(suites), "metric_names": metric_names, "claims": claims,
        "failed": [c for c in claims if c["verdict"] == "fail"],
        "errors": [r for r in run.records if r.status == "error"],
        "generated": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def render(run: Run) -> str:
    return _environment().get_template("report.html.j2").render(**context(run))


def write_report(run_dir: Path, output: Path | None = None) -> Path:
    """Render a run directory's report (a partial run too) and return its path."""
    run = load_run(run_dir)
    target = output or run.path / REPORT_FILE
    target.write_text(render(run), encoding="utf-8")
    return target
