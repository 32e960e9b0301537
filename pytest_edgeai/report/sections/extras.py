"""Tables and charts from a record's ``extra``: lists of rows (cuts, sweeps) and plans.

Other suites put their detail there (split: bytes per cut and the chosen plan; compression and
concurrency: ``extra["sweep"]``); this renders whatever rows are present, generically.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from .. import charts
from ...results.record import Record
from . import labels

MAX_ROWS = 200
MAX_CHARTS = 12
X_PREFERENCE = ("tenants", "threshold", "batch", "cut", "layer", "index", "bits", "x")


def row_lists(record: Record) -> dict[str, list[dict[str, Any]]]:
    """Every ``extra`` entry that is a non-empty list of dicts (a table)."""
    return {k: v for k, v in record.extra.items()
            if isinstance(v, list) and v and all(isinstance(row, dict) for row in v)}


def mappings(record: Record) -> dict[str, dict[str, Any]]:
    """Every ``extra`` entry that is a flat dict (a plan, a setting)."""
    return {k: v for k, v in record.extra.items() if isinstance(v, dict) and v}


def table(rows: list[dict[str, Any]]) -> dict[str, Any]:
    columns: list[str] = []
    for row in rows:
        columns.extend(c for c in row if c not in columns)
    shown = rows[:MAX_ROWS]
    return {"columns": columns, "rows": [[labels.number(row.get(c)) if not isinstance(row.get(c), (dict, list))
                                          else str(row.get(c)) for c in columns] for row in shown],
            "more": len(rows) - len(shown)}


def _numeric(rows: list[dict[str, Any]], column: str) -> bool:
    return all(isinstance(r.get(column), (int, float)) and not isinstance(r.get(column), bool) for r in rows)


def x_column(rows: list[dict[str, Any]]) -> str | None:
    numeric = [c for c in rows[0] if _numeric(rows, c)]
    for name in X_PREFERENCE:
        if name in numeric:
            return name
    return numeric[0] if numeric else None


def sweep_charts(records: list[Record], key: str, y_filter=None) -> list:
    """One chart per (row list name, y column), one line per device/model/scenario."""
    series: dict[tuple[str, str], list[tuple[str, list, list]]] = defaultdict(list)
    for r in records:
        rows = row_lists(r).get(key)
        if not rows:
            continue
        x = x_column(rows)
        if x is None:
            continue
        for y in (c for c in rows[0] if c != x and _numeric(rows, c)):
            if y_filter and not y_filter(y):
                continue
            pts = sorted((row[x], row[y]) for row in rows)
            series[(x, y)].append((f"{labels.device(r)} {labels.model(r)} {labels.scenario(r)}",
                                   [p[0] for p in pts], [p[1] for p in pts]))
    out = []
    for (x, y), lines in list(series.items())[:MAX_CHARTS]:
        out.append(charts.line_chart(f"{key}: {y} against {x}", x, y, lines))
    return out


def record_views(records: list[Record]) -> list[dict[str, Any]]:
    """Per record: its metrics, its tables and its plans, for the generic template."""
    return [{"device": labels.device(r), "model": labels.model(r), "scenario": labels.scenario(r),
             "metrics": r.metrics, "tables": {k: table(v) for k, v in row_lists(r).items()},
             "mappings": mappings(r), "warnings": r.warnings} for r in records]
