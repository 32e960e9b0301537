"""Short labels for records, shared by the sections."""

from __future__ import annotations

from ...results.record import Record


def device(r: Record) -> str:
    return str(r.device.get("name", "?"))


def model(r: Record) -> str:
    return str(r.model.get("name", "?"))


def scenario(r: Record) -> str:
    name = str(r.scenario.get("name", "?"))
    batch = r.scenario.get("batch")
    return f"{name} b{batch}" if batch not in (None, "") else name


def number(value) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "-" if value is None else str(value)
    return f"{value:.4g}"
