"""Throughput: batch curves (offline inferences/s against batch) and latency distributions."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from .. import charts
from ...results.record import Record
from . import ReportData, labels

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
            by_device[labels.device(r)].append(r)
        figures = []
        for dev, records in by_device.items():
            curves = defaultdict(list)
            for r in _offline(records):
                curves[labels.model(r)].append((int(r.scenario.get("batch") or 1), r.metric("throughput_ips")))
            lines = [(m, [b for b, _ in sorted(p)], [t for _, t in sorted(p)]) for m, p in curves.items()
                     if len(p) > 1]
            if lines:
                figures.append(charts.line_chart(f"{dev}: offline throughput against batch", "batch",
                                                 "inferences/s (log scale)", lines, log_x=True, log_y=True))
            groups = [(f"{labels.model(r)} {labels.scenario(r)}", [v / 1e6 for v in r.samples["latency_ns"][:MAX_SAMPLES]])
                      for r in records if r.samples.get("latency_ns") and
                      (r.scenario.get("name") == "single_stream" or r.scenario.get("batch") == 1)]
            if groups:
                figures.append(charts.distribution_chart(f"{dev}: latency per query (box 25-75%, whiskers 1-99%)",
                                                         "ms (log scale)", groups))
        rows = [{"device": labels.device(r), "model": labels.model(r), "scenario": labels.scenario(r),
                 "metrics": r.metrics} for r in timed]
        return {"figures": figures, "rows": rows,
                "columns": ["throughput_ips", "latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "latency_cv"]}


SECTION = Throughput()
