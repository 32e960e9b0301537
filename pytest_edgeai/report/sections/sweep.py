"""A suite section drawn from records' ``extra`` tables: split cuts, compression and concurrency sweeps."""

from __future__ import annotations

from typing import Any

from . import ReportData, extras


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
        figures = [f for key in self.chart_keys for f in extras.sweep_charts(records, key, self.y_filter, self.log_y,
                                                                        self.per_record, self.y_label)]
        return {"title": self.title, "figures": figures, "records": extras.record_views(records)}
