"""The comparison with the baseline: coloured, significance-aware deltas, worst first."""

from __future__ import annotations

from typing import Any

from ...results.compare import UNCHANGED, VERDICTS, describe, label, run_release
from . import ReportData

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
                 "css": d.verdict.split()[0], "test": d.test} for d in deltas]
        return {"base": str(c.base.path), "base_release": run_release(c.base.meta),
                "counts": c.counts(), "order": ORDER,
                "rows": [r for r in rows if r["verdict"] != UNCHANGED],
                "unchanged": [r for r in rows if r["verdict"] == UNCHANGED],
                "only_base": [label(k) for k in c.only_base], "only_new": [label(k) for k in c.only_new],
                "notes": c.notes}


SECTION = ComparisonSection()
