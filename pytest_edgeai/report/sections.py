"""The report's sections, in page order, each turning records into a template context
(``templates/sections/<name>.html.j2``).

A section knows only result records (and the comparison and history built from them); it returns
None when it has nothing to show, and the report leaves it out. The suites' own sections (split,
compression, concurrency) are drawn from records' ``extra`` tables: lists of rows (cuts, sweeps) and
plans, rendered generically, whatever rows are present.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..results.compare import DIAGNOSTIC_REGRESSED, UNCHANGED, VERDICTS, Comparison, describe, label, run_release, scenario_label
from ..results.history import History, Series
from ..results.record import Record
from ..results.store import Run
from . import charts
from .terminal import verdicts


@dataclass
class ReportData:
    """What every section may read: the run, its records, and optional comparison and history."""

    run: Run
    comparison: Comparison | None = None
    history: History | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def records(self) -> list[Record]:
        return sorted(self.run.records, key=lambda r: (r.suite, r.created))

    @property
    def ok(self) -> list[Record]:
        return [r for r in self.records if r.status == "ok"]


class Section(Protocol):
    name: str  # its template: templates/sections/<name>.html.j2
    title: str

    def build(self, data: ReportData) -> dict[str, Any] | None: ...



# short labels for records, shared by the sections
def label_device(r: Record) -> str:
    return str(r.device.get("name", "?"))


def label_model(r: Record) -> str:
    return str(r.model.get("name", "?"))


def label_scenario(r: Record) -> str:
    name = str(r.scenario.get("name", "?"))
    batch = r.scenario.get("batch")
    return f"{name} b{batch}" if batch not in (None, "") else name


def number(value) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "-" if value is None else str(value)
    return f"{value:.4g}"



MAX_ROWS = 200
MAX_SWEEP_CHARTS = 12
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
    return {"columns": columns, "rows": [[number(row.get(c)) for c in columns] for row in shown],
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
        name = f"{label_device(r)} {label_model(r)} {label_scenario(r)}"
        for y in (c for c in rows[0] if c != x and _numeric(rows, c)):
            if y_filter and not y_filter(y):
                continue
            pts = sorted((row[x], row[y]) for row in rows)
            group, line = ((name, x), y) if per_record else ((y, x), name)
            series[group].append((line, [p[0] for p in pts], [p[1] for p in pts]))
    return [charts.line_chart(f"{key}: {what} against {x}", x, y_label or what, lines, log_y=log_y)
            for (what, x), lines in list(series.items())[:MAX_SWEEP_CHARTS]]


def record_views(records: list[Record]) -> list[dict[str, Any]]:
    """Per record: its metrics, its tables and its plans, for the generic template."""
    return [{"device": label_device(r), "model": label_model(r), "scenario": label_scenario(r),
             "metrics": r.metrics, "tables": {k: table(v) for k, v in row_lists(r).items()},
             "mappings": mappings(r), "warnings": r.warnings} for r in records]



class SuiteSection:
    """Records of one suite: their metrics, their extra tables, and charts of ``chart_keys``."""

    name = "sweep"

    def __init__(self, suite: str, title: str, chart_keys: tuple[str, ...], y_filter=None, log_y: bool = False,
                 per_record: bool = False, y_label: str | None = None):
        self.suite = suite
        self.title = title
        self.chart_keys = chart_keys
        self.y_filter = y_filter
        self.log_y = log_y
        self.per_record = per_record
        self.y_label = y_label

    def build(self, data: ReportData) -> dict[str, Any] | None:
        records = [r for r in data.ok if r.suite == self.suite]
        if not records:
            return None
        figures = [f for key in self.chart_keys
                   for f in sweep_charts(records, key, self.y_filter, self.log_y, self.per_record, self.y_label)]
        return {"title": self.title, "figures": figures, "records": record_views(records)}



SHOW = 15  # the rest are in the comparison and trend sections
CSS = {"met": "pass", "missed": "fail", "inconclusive": "warn", "skip": "skip"}


class Summary:
    name = "summary"
    title = "Summary"

    def build(self, data: ReportData) -> dict[str, Any]:
        claims = [{**c, "record": _measured_on(r), "css": CSS.get(c.get("verdict"), "skip")}
                  for r in data.records for c in r.claims]
        order = {"missed": 0, "inconclusive": 1, "skip": 2, "met": 3}
        claims.sort(key=lambda c: order.get(c.get("verdict"), 4))
        comparison = data.comparison
        return {
            "claims": claims,
            "failed": [c for c in claims if c.get("verdict") == "missed"],
            "inconclusive": [c for c in claims if c.get("verdict") == "inconclusive"],
            "unclaimed": sorted({r.extra["claims_note"] for r in data.records if r.extra.get("claims_note")}),
            "regressions": comparison.regressions[:SHOW] if comparison else [],
            "regression_count": len(comparison.regressions) if comparison else 0,
            "improvements": comparison.by_verdict("improved") if comparison else [],
            "compared": comparison is not None,
            "steps": data.history.regressions[:SHOW] if data.history else [],
            "step_count": len(data.history.regressions) if data.history else 0,
            "errors": [r for r in data.records if r.status == "error"],
            "problems": data.problems,
            "record_count": len(data.records),
        }


def _measured_on(record) -> str:
    """What the claim was judged on (a variant, a scenario and batch), since one claim may be
    checked against several records of the same model."""
    scenario = record.scenario or {}
    batch = f" batch {scenario['batch']}" if "batch" in scenario else ""
    return f"{record.model.get('name', '?')}, {scenario.get('name', '?')}{batch}"



MAX_SAMPLES = 20_000  # per box: a box plot of more is the same box


def _offline(records: list[Record]) -> list[Record]:
    return [r for r in records if r.scenario.get("name") == "offline" and r.metric("throughput_ips") is not None]


class Throughput:
    name = "throughput"
    title = "Throughput and latency"

    def build(self, data: ReportData) -> dict[str, Any] | None:
        timed = [r for r in data.ok if r.scenario.get("name") in ("offline", "single_stream")
                 and r.metric("throughput_ips") is not None]
        if not timed:
            return None
        by_device: dict[str, list[Record]] = defaultdict(list)
        for r in timed:
            by_device[label_device(r)].append(r)
        figures = []
        for dev, records in by_device.items():
            curves = defaultdict(list)
            for r in _offline(records):
                curves[label_model(r)].append((int(r.scenario.get("batch") or 1), r.metric("throughput_ips")))
            lines = [(m, [b for b, _ in sorted(p)], [t for _, t in sorted(p)]) for m, p in curves.items()
                     if len(p) > 1]
            if lines:
                figures.append(charts.line_chart(f"{dev}: offline throughput against batch", "batch",
                                                 "inferences/s (log scale)", lines, log_x=True, log_y=True))
            groups = [(f"{label_model(r)} {label_scenario(r)}", [v / 1e6 for v in r.samples["latency_ns"][:MAX_SAMPLES]])
                      for r in records if r.samples.get("latency_ns") and
                      (r.scenario.get("name") == "single_stream" or r.scenario.get("batch") == 1)]
            if groups:
                figures.append(charts.distribution_chart(f"{dev}: latency per query (box 25-75%, whiskers 1-99%)",
                                                         "ms (log scale)", groups))
        rows = [{"device": label_device(r), "model": label_model(r), "scenario": label_scenario(r),
                 "metrics": r.metrics} for r in timed]
        return {"figures": figures, "rows": rows,
                "columns": ["throughput_ips", "latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "latency_cv"]}



# whole words of a metric's name (split at "_"): "agreement_with_large" is not a per-watt figure
ENERGY_WORDS = frozenset({"joule", "joules", "energy", "power", "watt", "watts", "w", "j", "mj", "usd", "dollar"})
ENERGY_UNITS = ("j", "mj", "w", "mw")


def is_energy(name: str, unit: str | None) -> bool:
    u = (unit or "").strip().lower()
    return (u in ENERGY_UNITS or u.endswith(("/w", "/$", "/usd"))
            or not ENERGY_WORDS.isdisjoint(name.lower().split("_")))


class Energy:
    name = "energy"
    title = "Energy"

    def build(self, data: ReportData) -> dict[str, Any] | None:
        records = [r for r in data.ok if any(is_energy(n, m.get("unit")) for n, m in r.metrics.items())]
        if not records:
            return None
        columns = sorted({n for r in records for n, m in r.metrics.items() if is_energy(n, m.get("unit"))})
        rows = [{"device": label_device(r), "model": label_model(r), "scenario": label_scenario(r),
                 "metrics": r.metrics, "warnings": r.warnings} for r in records]
        return {"columns": columns, "rows": rows}



class Measurements:
    name = "measurements"
    title = "All measurements"

    def build(self, data: ReportData) -> dict[str, Any] | None:
        suites: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in data.records:
            suites[r.suite].append({"device": label_device(r), "model": label_model(r),
                                    "scenario": label_scenario(r), "metrics": r.metrics,
                                    "claims": verdicts(r), "status": r.status, "error": r.error,
                                    "warnings": r.warnings, "test_id": r.test_id})
        if not suites:
            return None
        columns = {s: sorted({m for row in rows for m in row["metrics"]}) for s, rows in suites.items()}
        return {"suites": dict(suites), "columns": columns}



ORDER = VERDICTS


class ComparisonSection:
    name = "comparison"
    title = "Comparison with the baseline"

    def build(self, data: ReportData) -> dict[str, Any] | None:
        c = data.comparison
        if c is None:
            return None
        rank = {v: i for i, v in enumerate(ORDER)}
        deltas = sorted(c.deltas, key=lambda d: (rank.get(d.verdict, len(ORDER)), -abs(d.change)))
        rows = [{"label": d.label, "metric": d.metric, "unit": d.unit, "base": d.base, "new": d.new,
                 "change": d.change, "ci": d.ratio_ci, "p": d.p_value, "significant": d.significant,
                 "tolerance": d.tolerance, "sense": describe(d.sense), "verdict": d.verdict,
                 "css": "diagnostic" if d.verdict == DIAGNOSTIC_REGRESSED else d.verdict.split()[0],
                 "test": d.test} for d in deltas]
        return {"base": str(c.base.path), "base_release": run_release(c.base.meta),
                "counts": c.counts(), "order": ORDER,
                "rows": [r for r in rows if r["verdict"] != UNCHANGED],
                "unchanged": [r for r in rows if r["verdict"] == UNCHANGED],
                "only_base": [label(k) for k in c.only_base], "only_new": [label(k) for k in c.only_new],
                "notes": c.notes}



HEADLINE = ("throughput_ips", "latency_p99_ms", "joules_per_inference")
MAX_TREND_CHARTS = 12  # a chart costs ~0.2 s; every step of every metric is in the table
MAX_LINES = 8


def _trend_charts(history: History) -> tuple[list, int]:
    """One chart per (suite, model, headline metric); groups with a regression step come first."""
    stepped = {(s.series.key[0], s.series.key[2], s.series.metric) for s in history.regressions}
    groups: dict[tuple[str, str, str], list[Series]] = defaultdict(list)
    for (key, metric), s in history.series.items():
        if metric in HEADLINE and len(s.points) > 1:
            groups[(key[0], key[2], metric)].append(s)
    marks = [(i, r) for i, r in history.releases()]
    figures = []
    ordered = sorted(groups.items(), key=lambda kv: (kv[0] not in stepped, kv[0]))
    for (suite, model, metric), series in ordered[:MAX_TREND_CHARTS]:
        lines = [(f"{s.key.device[0]} {scenario_label(s.key)}",
                  [p.run for p in s.points], [p.value for p in s.points]) for s in series[:MAX_LINES]]
        figures.append(charts.line_chart(f"{suite} {model}: {metric}", "run (oldest to newest)",
                                         f"{metric} ({series[0].unit})", lines, marks=marks))
    return figures, max(0, len(groups) - MAX_TREND_CHARTS)


class Trend:
    name = "trend"
    title = "Trend across runs"

    def build(self, data: ReportData) -> dict[str, Any] | None:
        h = data.history
        if h is None or len(h.runs) < 2:
            return None
        figures, more = _trend_charts(h)
        steps = sorted(h.steps, key=lambda s: (s.verdict != "regressed", s.position))
        return {"runs": h.runs, "figures": figures, "more": more, "releases": h.releases(),
                "steps": [{"series": s.series.label, "run": h.runs[s.position].run_id, "entered": s.entered,
                           "before": s.before, "after": s.after, "change": s.change, "p": s.p_value,
                           "verdict": s.verdict, "css": s.verdict.split()[0]} for s in steps]}



def flatten(data: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Nested dicts as (dotted key, value) rows."""
    if isinstance(data, dict):
        out = []
        for k, v in data.items():
            out.extend(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return [(prefix, "" if data is None else str(data))]


class Environment:
    name = "environment"
    title = "Environment"

    def build(self, data: ReportData) -> dict[str, Any]:
        meta = data.run.meta
        return {"release": run_release(meta),
                "environment": flatten(meta.get("environment") or {}),
                "options": flatten(meta.get("options") or {}),
                "profile": flatten(meta.get("profile") or {}),
                "sources": meta.get("sources") or []}


def all_sections() -> list[Section]:
    """In page order: what needs attention first, then each suite's results, then context."""
    return [Summary(), Throughput(), Energy(),
            SuiteSection("split", "Split: bytes per cut and the chosen plan", ("cuts", "sweep"),
                         y_filter=lambda column: "bytes" in column, log_y=True, per_record=True,
                         y_label="bytes on the wire (log scale)"),
            SuiteSection("compression", "Compression trade-offs", ("sweep",)),
            SuiteSection("concurrency", "Concurrency", ("sweep",)),
            Measurements(), ComparisonSection(), Trend(), Environment()]
