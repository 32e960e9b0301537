"""Every measurement of every suite as a table: the figures behind the charts, with their method."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from ..terminal import verdicts
from . import ReportData, labels


class Measurements:
    name = "measurements"
    title = "All measurements"

    def build(self, data: ReportData) -> dict[str, Any] | None:
        suites: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in data.records:
            suites[r.suite].append({"device": labels.device(r), "model": labels.model(r),
                                    "scenario": labels.scenario(r), "metrics": r.metrics,
                                    "claims": verdicts(r), "status": r.status, "error": r.error,
                                    "warnings": r.warnings, "test_id": r.test_id})
        if not suites:
            return None
        columns = {s: sorted({m for row in rows for m in row["metrics"]}) for s, rows in suites.items()}
        return {"suites": dict(suites), "columns": columns}


SECTION = Measurements()
