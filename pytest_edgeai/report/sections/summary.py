"""What needs attention first: claims (failed first), regressions, errors, unreadable records."""

from __future__ import annotations

from typing import Any

from . import ReportData

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


SECTION = Summary()
