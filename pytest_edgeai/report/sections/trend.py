"""Trends across runs: charts of the headline metrics with releases marked, and every step found."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from ...results.compare import scenario_label
from ...results.history import History, Series
from .. import charts
from . import ReportData

HEADLINE = ("throughput_ips", "latency_p99_ms", "joules_per_inference")
MAX_CHARTS = 12  # a chart costs ~0.2 s; every step of every metric is in the table
MAX_LINES = 8


def _charts(history: History) -> tuple[list, int]:
    """One chart per (suite, model, headline metric); groups with a regression step come first."""
    stepped = {(s.series.key[0], s.series.key[2], s.series.metric) for s in history.regressions}
    groups: dict[tuple[str, str, str], list[Series]] = defaultdict(list)
    for (key, metric), s in history.series.items():
        if metric in HEADLINE and len(s.points) > 1:
            groups[(key[0], key[2], metric)].append(s)
    marks = [(i, r) for i, r in history.releases()]
    figures = []
    ordered = sorted(groups.items(), key=lambda kv: (kv[0] not in stepped, kv[0]))
    for (suite, model, metric), series in ordered[:MAX_CHARTS]:
        lines = [(f"{s.key.device[0]} {scenario_label(s.key)}",
                  [p.run for p in s.points], [p.value for p in s.points]) for s in series[:MAX_LINES]]
        figures.append(charts.line_chart(f"{suite} {model}: {metric}", "run (oldest to newest)",
                                         f"{metric} ({series[0].unit})", lines, marks=marks))
    return figures, max(0, len(groups) - MAX_CHARTS)


class Trend:
    name = "trend"
    title = "Trend across runs"

    def build(self, data: ReportData) -> dict[str, Any] | None:
        h = data.history
        if h is None or len(h.runs) < 2:
            return None
        figures, more = _charts(h)
        steps = sorted(h.steps, key=lambda s: (s.verdict != "regressed", s.position))
        return {"runs": h.runs, "figures": figures, "more": more, "releases": h.releases(),
                "steps": [{"series": s.series.label, "run": h.runs[s.position].run_id, "entered": s.entered,
                           "before": s.before, "after": s.after, "change": s.change, "p": s.p_value,
                           "verdict": s.verdict, "css": s.verdict.split()[0]} for s in steps]}


SECTION = Trend()
