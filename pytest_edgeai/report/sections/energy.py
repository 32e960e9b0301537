"""Energy: every record with an energy or power metric, with how each figure was obtained."""

from __future__ import annotations

from typing import Any

from . import ReportData, labels

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
        rows = [{"device": labels.device(r), "model": labels.model(r), "scenario": labels.scenario(r),
                 "metrics": r.metrics, "warnings": r.warnings} for r in records]
        return {"columns": columns, "rows": rows}


SECTION = Energy()
