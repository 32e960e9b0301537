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
X_PREFERENCE = ("tenants", "threshold", "batch", "depth_layers", "cut", "layer", "index", "bits", "x")


def flat(row: dict[str, Any]) -> dict[str, Any]:
    """One level of nesting lifted into dotted keys ({"bytes": {"raw": 1}} -> {"bytes.raw": 1});
    lists are summarised by their length, deeper dicts dropped."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, dict):
            out.update({f"{key}.{k}": v for k, v in value.items() if not isinstance(v, (dict, list))})
        elif isinstance(value, list):
            out[key] = f"[{len(value)} items]"
        else:
            out[key] = value
    return out


def row_lists(record: Record) -> dict[str, list[dict[str, Any]]]:
    """Every ``extra`` entry that is a non-empty list of dicts (a table), rows flattened."""
    return {k: [flat(row) for row in v] for k, v in record.extra.items()
            if isinstance(v, list) and v and all(isinstance(row, dict) for row in v)}


def mappings(record: Record) -> dict[str, dict[str, Any]]:
    """Every ``extra`` entry that is a dict with plain values (a plan, a setting), flattened."""
    out = {}
    for key, value in record.extra.items():
        if isinstance(value, dict):
            shown = {k: v for k, v in flat(value).items() if not (isinstance(v, str) and v.startswith("["))}
            if shown:
                out[key] = shown
    return out


def table(rows: list[dict[str, Any]]) -> dict[str, Any]:
    columns: list[str] = []
    for row in rows:
        columns.extend(c for c in row if c not in columns)
    shown = rows[:MAX_ROWS]
    return {"columns": columns, "rows": [[labels.number(row.get(c)) for c in columns] for row in shown],
            "more": len(rows) - len(shown)}


def _numeric(rows: list[dict[str, Any]], column: str) -> bool:
    return all(isinstance(r.get(column), (int, float)) and not isinstance(r.get(column), bool) for r in rows)


def x_column(rows: list[dict[str, Any]]) -> str | None:
    numeric = [c for c in rows[0] if _numeric(rows, c)]
    for name in X_PREFERENCE:
        if name in numeric:
            return name
    return numeric[0] if numeric else None


def sweep_charts(records: list[Record], key: str, y_filter=None, log_y: bool = False,
                 per_record: bool = False, y_label: str | None = None) -> list:
    """Charts of the ``key`` tables: one per y column with a line per record, or (``per_record``,
    for columns of one unit such as bytes per codec) one per record with a line per y column."""
    series: dict[tuple[str, str], list[tuple[str, list, list]]] = defaultdict(list)
    for r in records:
        rows = row_lists(r).get(key)
        x = x_column(rows) if rows else None
        if x is None:
            continue
        name = f"{labels.device(r)} {labels.model(r)} {labels.scenario(r)}"
        for y in (c for c in rows[0] if c != x and _numeric(rows, c)):
            if y_filter and not y_filter(y):
                continue
            pts = sorted((row[x], row[y]) for row in rows)
            group, line = ((name, x), y) if per_record else ((y, x), name)
            series[group].append((line, [p[0] for p in pts], [p[1] for p in pts]))
    return [charts.line_chart(f"{key}: {what} against {x}", x, y_label or what, lines, log_y=log_y)
            for (what, x), lines in list(series.items())[:MAX_CHARTS]]


def record_views(records: list[Record]) -> list[dict[str, Any]]:
    """Per record: its metrics, its tables and its plans, for the generic template."""
    return [{"device": labels.device(r), "model": labels.model(r), "scenario": labels.scenario(r),
             "metrics": r.metrics, "tables": {k: table(v) for k, v in row_lists(r).items()},
             "mappings": mappings(r), "warnings": r.warnings} for r in records]
