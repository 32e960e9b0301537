"""The report's sections, in page order, each turning records into a template context
(``templates/sections/<name>.html.j2``).

A section knows only result records, the run's test outcomes (run.json ``tests``), and the
comparison and history built from them; it returns None when it has nothing to show, and the
report leaves it out. The first screen (Summary) answers what a lab asks: did the tests and the
claims hold, what regressed, and the headline figures beside the published ones. Each suite then
gets a section of its own (charts drawn from that suite's records only, raw tables folded away).
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from markupsafe import Markup

from ..results.compare import (
    DIAGNOSTIC_REGRESSED,
    UNCHANGED,
    VERDICTS,
    Comparison,
    describe,
    label,
    rule,
    run_release,
    scenario_label,
)
from ..results.history import History, Series, step_rule
from ..results.record import Record
from ..results.store import Run, TestOutcome
from . import charts
from .terminal import verdicts


@dataclass
class ReportData:
    """What every section may read: the run, its records and test outcomes, and optional comparison and history."""

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

    @property
    def outcomes(self) -> list[TestOutcome]:
        return self.run.outcomes


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


def base_model(r: Record) -> str:
    """The model without its variant ('mobilenet_v2@int8_static' -> 'mobilenet_v2')."""
    return label_model(r).split("@")[0]


def number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "-" if value is None else str(value)
    return f"{value:.4g}"


def breakable(name: str) -> Markup:
    """A column name that may wrap after '_' and '.' (long metric names make tables wide)."""
    escaped = str(Markup.escape(name))
    return Markup(escaped.replace("_", "_<wbr>").replace(".", ".<wbr>"))


def parts_that_differ(parts: Sequence[Sequence[str]]) -> list[str]:
    """Labels for several series made of the parts that differ between them (parts common to all
    are said once, in the chart's title, not in every legend entry)."""
    if not parts:
        return []
    width = max(len(p) for p in parts)
    padded = [list(p) + [""] * (width - len(p)) for p in parts]
    keep = [i for i in range(width) if len({p[i] for p in padded}) > 1] or [0]
    return [" ".join(p[i] for i in keep if p[i]) for p in padded]


def common_parts(parts: Sequence[Sequence[str]]) -> str:
    if not parts:
        return ""
    width = min(len(p) for p in parts)
    return " ".join(parts[0][i] for i in range(width) if all(p[i] == parts[0][i] for p in parts) and parts[0][i])


def record_parts(r: Record) -> list[str]:
    """What identifies a record's series: device, model, scenario, and every scenario setting."""
    settings = [f"{k}={v}" for k, v in sorted(r.scenario.items())
                if k not in ("name", "batch") and isinstance(v, (str, int, float)) and not isinstance(v, bool)]
    return [label_device(r), label_model(r), label_scenario(r), *settings]


# Tests' outcomes and claims: what the first screen counts

OUTCOME_CSS = {"passed": "pass", "failed": "fail", "error": "fail", "skipped": "skip", "xfailed": "skip",
               "xpassed": "warn"}
OUTCOME_ORDER = ("failed", "error", "xpassed", "skipped", "xfailed", "passed")
CLAIM_WORDS = {"met": "met", "missed": "missed", "inconclusive": "inconclusive", "skip": "not checkable here"}
CSS = {"met": "pass", "missed": "fail", "inconclusive": "warn", "skip": "skip"}


def verdict_of(claim: dict[str, Any]) -> str:
    return str(claim.get("verdict"))


def outcome_counts(outcomes: Iterable[TestOutcome]) -> list[tuple[str, int, str]]:
    counts = Counter(o.outcome for o in outcomes)
    return [(name, counts[name], OUTCOME_CSS[name]) for name in OUTCOME_ORDER if counts[name]]


def grouped_reasons(outcomes: Iterable[TestOutcome], kinds: tuple[str, ...]) -> list[dict[str, Any]]:
    """Outcomes of ``kinds`` grouped by reason (one line per reason, with how many tests and which)."""
    groups: dict[str, list[TestOutcome]] = defaultdict(list)
    for o in outcomes:
        if o.outcome in kinds:
            groups[o.reason or "(no reason given)"].append(o)
    return [{"reason": reason, "tests": [o.test_id for o in tests], "suites": sorted({o.suite for o in tests}),
             "outcome": tests[0].outcome, "css": OUTCOME_CSS[tests[0].outcome]}
            for reason, tests in sorted(groups.items(), key=lambda kv: -len(kv[1]))]


# The headline figures: per device, one row per model, the few figures a lab reads first.

@dataclass(frozen=True)
class Headline:
    column: str
    suite: str
    metric: str
    claims: tuple[str, ...]  # the claims that judge this figure
    pick: Callable[[Record], bool]  # which of the suite's records carries it
    published: str = ""  # what the field published that this figure re-checks, with the source


def _scenario(*names: str, batch: int | None = None) -> Callable[[Record], bool]:
    return lambda r: r.scenario.get("name") in names and (batch is None or r.scenario.get("batch") == batch)


HEADLINES = (
    Headline("throughput (b1)", "throughput", "throughput_ips", ("min_inferences_per_s",),
             _scenario("offline", batch=1),
             "Liang et al., IISWC 2020: edge accelerators reach cloud-CPU throughput, some exceed it"),
    Headline("p90 latency", "throughput", "latency_p90_ms", ("max_p90_latency_ms",), _scenario("single_stream")),
    Headline("batching speed-up", "throughput", "batching_speedup", ("min_batching_speedup",),
             _scenario("batching_speedup"),
             "Hao et al., ACM TOIT 2023: batching gives more than 2.4x throughput on a Jetson Xavier NX"),
    Headline("J / inference", "energy", "joules_per_inference", ("max_joules_per_inference",), lambda r: True,
             "Liang et al., IISWC 2020: cloud CPU and GPU draw about 131 W and 112 W; accelerators 0.5-15 W"),
    Headline("best-cut saving", "split", "best_cut_saving", ("min_best_cut_saving",), lambda r: True,
             "Liang et al., IISWC 2020: MobileNetV2 split near layer 10 sends nearly 8x fewer bytes than the "
             "losslessly compressed input; InceptionV4 saves nothing before its last 4 layers"),
    Headline("int8 speed-up", "compression", "speedup_interleaved", ("min_int8_speedup",), lambda r: True),
    Headline("max tenants", "concurrency", "observed_max_tenants", ("min_tenants",), lambda r: True,
             "Liang et al., IISWC 2020: concurrency is bounded by device memory; Hao et al., ACM TOIT 2023: "
             "concurrent model executions up to 3x on GPU edge devices, 10x on EdgeTPUs"),
)


def _claims_by(records: Iterable[Record]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Claims by (device, model, claim name); where several records checked one claim, the worst verdict."""
    rank = {"missed": 0, "inconclusive": 1, "met": 2, "skip": 3}
    out: dict[tuple[str, str, str], dict[str, Any]] = {}
    for r in records:
        for c in r.claims:
            key = (label_device(r), str(c.get("model") or base_model(r)), str(c.get("name")))
            if key not in out or rank.get(verdict_of(c), 4) < rank.get(verdict_of(out[key]), 4):
                out[key] = c
    return out


def headline_tables(records: list[Record]) -> list[dict[str, Any]]:
    """Per device: one row per model, one cell per headline figure that was measured (the claim's
    observed figure and interval where a claim judged it, else the record's metric)."""
    claims = _claims_by(records)
    devices: dict[str, dict[str, dict[str, dict[str, Any]]]] = defaultdict(lambda: defaultdict(dict))
    for h in HEADLINES:
        for r in records:
            if r.suite != h.suite or r.status != "ok" or h.metric not in r.metrics or not h.pick(r):
                continue
            device, model = label_device(r), base_model(r)
            if h.column in devices[device][model]:
                continue
            entry = r.metrics[h.metric]
            cell: dict[str, Any] = {"value": entry.get("value"), "ci": entry.get("ci95"), "unit": entry.get("unit"),
                                    "method": entry.get("method"), "claim": None}
            claim = next((claims[(device, model, c)] for c in h.claims if (device, model, c) in claims), None)
            if claim is not None:
                interval = claim.get("interval")
                cell.update(value=claim.get("observed", cell["value"]), unit=claim.get("unit") or cell["unit"],
                            ci=interval if interval and interval[0] != interval[1] else cell["ci"],
                            claim={"verdict": verdict_of(claim), "css": CSS.get(verdict_of(claim), "skip"),
                                   "threshold": claim.get("threshold"), "name": claim.get("name"),
                                   "word": CLAIM_WORDS.get(verdict_of(claim), verdict_of(claim))})
            devices[device][model][h.column] = cell
    tables = []
    for device, models in devices.items():
        columns = [h for h in HEADLINES if any(h.column in cells for cells in models.values())]
        tables.append({"device": device, "columns": [{"name": h.column, "suite": h.suite, "metric": h.metric}
                                                     for h in columns],
                       "rows": [{"model": m, "cells": [cells.get(h.column) for h in columns]}
                                for m, cells in sorted(models.items())],
                       "published": [{"column": h.column, "text": h.published} for h in columns if h.published]})
    return tables


SHOW = 8  # the rest are in the comparison and trend sections


class Summary:
    name = "summary"
    title = "At a glance"

    def build(self, data: ReportData) -> dict[str, Any]:
        claims = [{**c, "record": _measured_on(r), "css": CSS.get(verdict_of(c), "skip"),
                   "word": CLAIM_WORDS.get(verdict_of(c), verdict_of(c))}
                  for r in data.records for c in r.claims]
        order = {"missed": 0, "inconclusive": 1, "skip": 2, "met": 3}
        claims.sort(key=lambda c: order.get(verdict_of(c), 4))
        counted = Counter(c.get("verdict") for c in claims)
        comparison = data.comparison
        outcomes = data.outcomes
        errors = [r for r in data.records if r.status == "error"]
        return {
            "tests": len(outcomes),
            "outcomes": outcome_counts(outcomes),
            "broken": grouped_reasons(outcomes, ("failed", "error", "xpassed")),
            "skips": grouped_reasons(outcomes, ("skipped", "xfailed")),
            "claim_counts": [(CLAIM_WORDS[v], counted[v], CSS[v]) for v in ("met", "missed", "inconclusive", "skip")
                             if counted[v]],
            "attention": [c for c in claims if c.get("verdict") in ("missed", "inconclusive")],
            "settled": [c for c in claims if c.get("verdict") not in ("missed", "inconclusive")],
            "settled_counts": [(CLAIM_WORDS[v], counted[v], CSS[v]) for v in ("met", "skip") if counted[v]],
            "claims": claims,
            "unclaimed": sorted({r.extra["claims_note"] for r in data.records if r.extra.get("claims_note")}),
            "headlines": headline_tables(data.records),
            "regressions": comparison.regressions[:SHOW] if comparison else [],
            "regression_count": len(comparison.regressions) if comparison else 0,
            "failed_count": len(comparison.failed) if comparison else 0,
            "improvements": comparison.by_verdict("improved") if comparison else [],
            "compared": comparison is not None,
            "steps": data.history.regressions[:SHOW] if data.history else [],
            "step_count": len(data.history.regressions) if data.history else 0,
            "errors": errors,
            "problems": data.problems,
            "record_count": len([r for r in data.records if r.suite != "canary"]),
        }


def _measured_on(record: Record) -> str:
    """What the claim was judged on (a variant, a scenario and batch), since one claim may be
    checked against several records of the same model."""
    scenario = record.scenario or {}
    batch = f" batch {scenario['batch']}" if "batch" in scenario else ""
    return f"{record.model.get('name', '?')}, {scenario.get('name', '?')}{batch}"


# Raw tables: every record's metrics and extra tables, folded away below each suite's charts

MAX_ROWS = 200
MAX_SWEEP_CHARTS = 8
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


TEXT_MIN_LINES = 3  # a string of more lines is a log or a summary: shown as preformatted text


def texts(record: Record) -> dict[str, str]:
    """Multi-line strings in ``extra`` (a LoadGen summary), one level deep, to be shown with their line breaks."""
    out = {}
    for key, value in record.extra.items():
        found = value.items() if isinstance(value, dict) else [("", value)]
        for sub, text in found:
            if isinstance(text, str) and text.count("\n") >= TEXT_MIN_LINES:
                out[f"{key}.{sub}" if sub else key] = text
    return out


def mappings(record: Record) -> dict[str, dict[str, Any]]:
    """Every ``extra`` entry that is a dict with plain values (a plan, a setting), flattened."""
    out = {}
    for key, value in record.extra.items():
        if isinstance(value, dict):
            shown = {k: v for k, v in flat(value).items()
                     if not (isinstance(v, str) and (v.startswith("[") or v.count("\n") >= TEXT_MIN_LINES))}
            if shown:
                out[key] = shown
    return out


def table(rows: list[dict[str, Any]]) -> dict[str, Any]:
    columns: list[str] = []
    for row in rows:
        columns.extend(c for c in row if c not in columns)
    shown = rows[:MAX_ROWS]
    return {"columns": [breakable(c) for c in columns],
            "rows": [[number(row.get(c)) for c in columns] for row in shown], "more": len(rows) - len(shown)}


def metric_tables(records: list[Record]) -> list[dict[str, Any]]:
    """The records' metrics, one table per scenario (records of one scenario share their metrics,
    so no table is as wide as the union of a suite's metrics)."""
    by_scenario: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        by_scenario[str(r.scenario.get("name", "?"))].append(r)
    out = []
    for scenario, group in by_scenario.items():
        columns = list(dict.fromkeys(m for r in group for m in r.metrics))
        out.append({"scenario": scenario, "columns": [{"name": c, "label": breakable(c), "unit": next(
            (r.metrics[c].get("unit") for r in group if c in r.metrics), "")} for c in columns],
            "rows": [{"device": label_device(r), "model": label_model(r), "scenario": label_scenario(r),
                      "metrics": r.metrics, "claims": verdicts(r), "status": r.status, "error": r.error,
                      "warnings": r.warnings, "test_id": r.test_id} for r in group]})
    return out


def record_views(records: list[Record]) -> list[dict[str, Any]]:
    """Per record with extra tables, plans or texts: those, for the generic template."""
    views = []
    for r in records:
        tables, maps, text = row_lists(r), mappings(r), texts(r)
        if tables or maps or text:
            views.append({"device": label_device(r), "model": label_model(r), "scenario": label_scenario(r),
                          "tables": {k: table(v) for k, v in tables.items()}, "mappings": maps, "texts": text})
    return views


# Charts of the suites' sweeps

def _numeric(rows: list[dict[str, Any]], column: str) -> bool:
    return all(isinstance(r.get(column), (int, float)) and not isinstance(r.get(column), bool) for r in rows)


def x_column(rows: list[dict[str, Any]]) -> str | None:
    numeric = [c for c in rows[0] if _numeric(rows, c)]
    for name in X_PREFERENCE:
        if name in numeric:
            return name
    return numeric[0] if numeric else None


@dataclass
class SweepStyle:
    """How a suite's sweep tables are charted: which y columns (measured figures only, never the
    configuration a row was run with), on which scale, one chart per y or per record."""

    y_filter: Callable[[str], bool] = lambda column: True
    log_y: bool = False
    per_record: bool = False
    y_label: str | None = None
    by_model: bool = False  # one chart per model (figures of different models differ by orders of magnitude)
    what: str | None = None  # what a per-record chart shows, for its title
    baselines: Callable[[Record], list[tuple[float, str]]] = lambda r: []  # horizontal lines, per record
    marks: Callable[[Record, str, list[dict[str, Any]]], list[tuple[float, str]]] = lambda r, x, rows: []


def sweep_charts(records: list[Record], key: str, style: SweepStyle) -> list[Markup]:
    """Charts of the ``key`` tables: one per y column with a line per record (named by what differs
    between the records), or (``per_record``, for columns of one unit such as bytes per codec) one per
    record with a line per y column."""
    groups: dict[tuple[Any, ...], list[tuple[Record, str, list[Any], list[Any]]]] = defaultdict(list)
    for r in records:
        rows = row_lists(r).get(key)
        x = x_column(rows) if rows else None
        if x is None or rows is None:
            continue
        for y in (c for c in rows[0] if c != x and _numeric(rows, c) and style.y_filter(c)):
            pts = sorted((row[x], row[y]) for row in rows)
            group = (r.id, x) if style.per_record else (y, x, base_model(r) if style.by_model else "")
            groups[group].append((r, y, [p[0] for p in pts], [p[1] for p in pts]))
    figures = []
    for (what, x, *_), lines in list(groups.items())[:MAX_SWEEP_CHARTS]:
        if style.per_record:
            r = lines[0][0]
            title = f"{label_device(r)} {label_model(r)}: {style.what or key} against {x}"
            names = [y.split(".", 1)[-1] for _, y, _, _ in lines]
            hlines, marks = style.baselines(r), style.marks(r, x, row_lists(r)[key])
        else:
            parts = [record_parts(r) for r, _, _, _ in lines]
            common = common_parts(parts)
            title = f"{what} against {x}" + (f" ({common})" if common else "")
            names = parts_that_differ(parts) if len(lines) > 1 else [common or what]
            hlines, marks = [], []
        figures.append(charts.line_chart(title, x, style.y_label or what,
                                         [(n, xs, ys) for n, (_, _, xs, ys) in zip(names, lines)],
                                         log_y=style.log_y, hlines=hlines, marks=marks))
    return figures


@dataclass
class SuiteSection:
    """One suite: its skipped and failed tests, its key figures (visible), charts of its sweeps, and
    its raw tables folded away."""

    suite: str
    title: str
    chart_keys: tuple[str, ...] = ()
    style: SweepStyle = field(default_factory=SweepStyle)
    key_metrics: tuple[str, ...] = ()  # shown in a visible table for the records that have them
    key_pick: Callable[[Record], bool] = lambda r: True  # and that this picks (the judged records, not every window)
    own_charts: Callable[[list[Record]], list[Markup]] = lambda records: []  # the suite's own charts
    name: str = "suite"

    def build(self, data: ReportData) -> dict[str, Any] | None:
        records = [r for r in data.records if r.suite == self.suite]
        outcomes = [o for o in data.outcomes if o.suite == self.suite]
        if not records and not outcomes:
            return None
        ok = [r for r in records if r.status == "ok"]
        figures = self.own_charts(ok) + [f for key in self.chart_keys for f in sweep_charts(ok, key, self.style)]
        keyed = sorted((r for r in ok if self.key_pick(r) and any(m in r.metrics for m in self.key_metrics)),
                       key=lambda r: (label_device(r), label_model(r), label_scenario(r)))
        key_columns = [m for m in self.key_metrics if any(m in r.metrics for r in keyed)]
        return {"title": self.title, "figures": figures, "outcomes": outcome_counts(outcomes),
                "skips": grouped_reasons(outcomes, ("skipped", "xfailed")),
                "broken": grouped_reasons(outcomes, ("failed", "error", "xpassed")),
                "key_columns": [{"name": c, "label": breakable(c), "unit": next(
                    (r.metrics[c].get("unit") for r in keyed if c in r.metrics), "")} for c in key_columns],
                "key_rows": [{"device": label_device(r), "model": label_model(r), "scenario": label_scenario(r),
                              "metrics": r.metrics, "warnings": r.warnings} for r in keyed],
                "metric_tables": metric_tables(records), "records": record_views(ok),
                "plans": self.plans(ok)}

    def plans(self, records: list[Record]) -> list[dict[str, str]]:
        """Plans a record chose (a split plan), stated in words where a reader sees them first."""
        out = []
        for r in records:
            for key, value in r.extra.items():
                chosen = value[0] if key == "plans" and isinstance(value, list) and value else value
                if (key in ("plans", "throughput_plan") and isinstance(chosen, dict)
                        and isinstance(chosen.get("summary"), str)):
                    out.append({"record": f"{label_device(r)} {label_model(r)}",
                                "objective": str(chosen.get("objective", key)), "summary": chosen["summary"]})
        return out


# The throughput suite's own charts: batch curves and latency distributions, of its records only

MAX_SAMPLES = 20_000  # per box: a box plot of more is the same box


def throughput_charts(records: list[Record]) -> list[Markup]:
    by_device: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        by_device[label_device(r)].append(r)
    figures = []
    for dev, recs in by_device.items():
        curves: dict[str, list[tuple[int, float]]] = defaultdict(list)
        pooled = {label_model(r) for r in recs if r.scenario.get("name") == "offline_rounds"}
        for r in recs:
            value = r.metric("throughput_ips")
            # one point per batch: the interleaved rounds' pooled figure where there is one, else each window
            wanted = "offline_rounds" if label_model(r) in pooled else "offline"
            if r.scenario.get("name") == wanted and value is not None:
                curves[label_model(r)].append((int(r.scenario.get("batch") or 1), value))
        lines = [(m, [b for b, _ in sorted(p)], [t for _, t in sorted(p)]) for m, p in curves.items() if len(p) > 1]
        if lines:
            figures.append(charts.line_chart(f"{dev}: offline throughput against batch (throughput suite)",
                                             "batch", "inferences/s (log scale)", lines, log_x=True, log_y=True))
        timed = [r for r in recs if r.samples.get("latency_ns") and r.scenario.get("name") == "single_stream"]
        names = Counter(label_model(r) for r in timed)
        seen: Counter[str] = Counter()
        groups = []
        for r in timed:
            seen[label_model(r)] += 1
            name = label_model(r) + (f" (window {seen[label_model(r)]})" if names[label_model(r)] > 1 else "")
            groups.append((name, [v / 1e6 for v in r.samples["latency_ns"][:MAX_SAMPLES]]))
        if groups:
            figures.append(charts.distribution_chart(
                f"{dev}: single-stream latency per query (box 25-75%, whiskers 1-99%)", "ms (log scale)", groups))
    return figures


def split_baselines(r: Record) -> list[tuple[float, str]]:
    """The compressed inputs a cut's saving is measured against."""
    names = {"input_compressed_bytes": "input as PNG (lossless)", "input_jpeg_bytes": "input as JPEG q90"}
    return [(float(v), text) for m, text in names.items() if (v := r.metric(m)) is not None]


def split_marks(r: Record, x: str, rows: list[dict[str, Any]]) -> list[tuple[float, str]]:
    """The best cut, where the record names one."""
    best = r.extra.get("best_cut")
    at = next((row.get(x) for row in rows if row.get("cut") == best), None)
    return [(float(at), f"best cut {best}")] if isinstance(at, (int, float)) else []


# whole words of a metric's name (split at "_"): "agreement_with_large" is not a per-watt figure
ENERGY_WORDS = frozenset({"joule", "joules", "energy", "power", "watt", "watts", "w", "j", "mj", "usd", "dollar"})
ENERGY_UNITS = ("j", "mj", "w", "mw")


def is_energy(name: str, unit: object) -> bool:
    """Whether a metric is an energy figure; ``unit`` is as a record on disk has it (not always a string)."""
    u = unit.strip().lower() if isinstance(unit, str) else ""
    return (u in ENERGY_UNITS or u.endswith(("/w", "/$", "/usd"))
            or not ENERGY_WORDS.isdisjoint(name.lower().split("_")))


class Energy:
    """Energy figures from any suite (a throughput record may carry them too), and the energy suite's skips."""

    name = "energy"
    title = "Energy"

    def build(self, data: ReportData) -> dict[str, Any] | None:
        records = [r for r in data.ok if any(is_energy(n, m.get("unit")) for n, m in r.metrics.items())]
        outcomes = [o for o in data.outcomes if o.suite == "energy"]
        if not records and not outcomes:
            return None
        columns = sorted({n for r in records for n, m in r.metrics.items() if is_energy(n, m.get("unit"))})
        rows = [{"device": label_device(r), "model": label_model(r), "scenario": label_scenario(r),
                 "metrics": r.metrics, "warnings": r.warnings} for r in records]
        return {"columns": [{"name": c, "label": breakable(c), "unit": next(
            (r.metrics[c].get("unit") for r in records if c in r.metrics), "")} for c in columns], "rows": rows,
            "outcomes": outcome_counts(outcomes), "skips": grouped_reasons(outcomes, ("skipped", "xfailed")),
            "broken": grouped_reasons(outcomes, ("failed", "error", "xpassed"))}


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
                 "change_text": d.change_text, "ci": d.ratio_ci, "p": d.p_value, "significant": d.significant,
                 "tolerance": d.tolerance, "sense": describe(d.sense), "verdict": d.verdict,
                 "css": "diagnostic" if d.verdict == DIAGNOSTIC_REGRESSED else d.verdict.split()[0],
                 "test": d.test} for d in deltas]
        return {"base": str(c.base.path), "base_release": run_release(c.base.meta),
                "counts": c.counts(), "order": ORDER,
                "rows": [r for r in rows if r["verdict"] != UNCHANGED],
                "unchanged": [r for r in rows if r["verdict"] == UNCHANGED],
                "rule": rule(), "gate": c.gate,
                "failed": [f"{label(k)}: {why}" for k, why in c.failed.items()],
                "only_base": [label(k) for k in c.only_base], "only_new": [label(k) for k in c.only_new],
                "notes": c.notes}


HEADLINE = ("throughput_ips", "latency_p99_ms", "joules_per_inference")
MAX_TREND_CHARTS = 6  # a chart costs ~0.2 s; every step of every metric is in the table
MAX_LINES = 8
MAX_TICKS = 7  # run ids on the trend's x-axis: wider than a number, so fewer


def run_ticks(history: History) -> list[tuple[float, str]]:
    """Tick labels of the trend's x-axis: run ids and start dates, at most MAX_TICKS of them."""
    last = len(history.runs) - 1
    every = max(1, -(-len(history.runs) // MAX_TICKS))
    shown = [i for i in range(0, last + 1, every) if last - i >= every / 2 or i == last] + [last]
    return [(i, f"{history.runs[i].run_id}\n{time.strftime('%m-%d %H:%M', time.localtime(history.runs[i].started))}")
            for i in sorted(set(shown))]


def _trend_charts(history: History) -> tuple[list[Markup], int]:
    """One chart per (suite, model, headline metric); groups with a regression step come first."""
    stepped = {(s.series.key[0], s.series.key[2], s.series.metric) for s in history.regressions}
    groups: dict[tuple[str, str, str], list[Series]] = defaultdict(list)
    for (key, metric), s in history.series.items():
        if metric in HEADLINE and len(s.points) > 1:
            groups[(key[0], key[2], metric)].append(s)
    marks = [(float(i), r) for i, r in history.releases()]
    ticks = run_ticks(history)
    figures = []
    ordered = sorted(groups.items(), key=lambda kv: (kv[0] not in stepped, kv[0]))
    for (suite, model, metric), series in ordered[:MAX_TREND_CHARTS]:
        lines = [(f"{s.key.device[0]} {scenario_label(s.key)}",
                  [float(p.run) for p in s.points], [p.value for p in s.points]) for s in series[:MAX_LINES]]
        figures.append(charts.line_chart(f"{suite} {model}: {metric}", "run (id, start)",
                                         f"{metric} ({series[0].unit})", lines, marks=marks, xticks=ticks))
    return figures, max(0, len(groups) - MAX_TREND_CHARTS)


def profile_name(meta: dict[str, Any]) -> str | None:
    """The run's measurement profile (run.json holds its settings, or its name in older runs)."""
    profile = meta.get("profile")
    return str(profile.get("name")) if isinstance(profile, dict) else profile


class Trend:
    name = "trend"
    title = "Trend across runs"

    def build(self, data: ReportData) -> dict[str, Any] | None:
        h = data.history
        if h is None or len(h.runs) < 2:
            return None
        figures, more = _trend_charts(h)
        steps = sorted(h.steps, key=lambda s: (s.verdict != "regressed", s.position))
        return {"runs": h.runs, "figures": figures, "more": more, "shown": MAX_TREND_CHARTS, "releases": h.releases(),
                "profile": profile_name(data.run.meta), "rule": step_rule(),
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


def _bytes(column: str) -> bool:
    return column.startswith("bytes.")


CASCADE_FIGURES = ("latency_reduction", "accuracy_loss")  # the trade-off the threshold sets (the rest is in the tables)
TENANT_FIGURES = ("aggregate_ips", "fairness.min_share")  # measured; threads.*, window_s are settings
BUILT_IN = ("throughput", "energy", "split", "compression", "concurrency", "canary")


def all_sections(suites: Iterable[str] = ()) -> list[Section]:
    """In page order: what needs attention first, then each suite's results (built-in ones, then any
    other suite in ``suites``), then the comparison, the trend and the context."""
    others: list[Section] = [SuiteSection(s, f"Suite: {s}") for s in sorted(set(suites) - set(BUILT_IN))]
    return [Summary(),
            SuiteSection("throughput", "Throughput and latency", own_charts=throughput_charts,
                         key_metrics=("throughput_ips", "latency_p50_ms", "latency_p90_ms", "latency_p99_ms",
                                      "batching_speedup", "best_batch"),
                         key_pick=_scenario("single_stream", "batching_speedup")),
            Energy(),
            SuiteSection("split", "Split: bytes per cut and the chosen plan", ("cuts",),
                         SweepStyle(y_filter=_bytes, log_y=True, per_record=True, y_label="bytes per input (log scale)",
                                    what="bytes sent per input at each cut (encoding+codec)",
                                    baselines=split_baselines, marks=split_marks),
                         key_metrics=("best_cut_saving", "best_cut_saving_vs_jpeg", "saving_depth_layers",
                                      "predicted_latency_ms", "measured_latency_ms", "prediction_error")),
            SuiteSection("compression", "Compression trade-offs", ("sweep",),
                         SweepStyle(y_filter=lambda c: c in CASCADE_FIGURES),
                         key_metrics=("size_reduction", "speedup_interleaved", "speedup", "top1_agreement",
                                      "latency_reduction", "accuracy_loss", "fraction_offloaded")),
            SuiteSection("concurrency", "Concurrency", ("sweep",),
                         SweepStyle(y_filter=lambda c: c in TENANT_FIGURES, by_model=True),
                         key_metrics=("aggregate_speedup_at_2", "aggregate_speedup_at_4", "max_tenants_run",
                                      "observed_max_tenants", "predicted_max_tenants", "concurrency_gain",
                                      "placement_speedup", "server_max_qps")),
            *others, ComparisonSection(), Trend(), Environment()]
