"""What makes two records comparable: the device and the measurement, not the host's jitter.

A record is matched across runs on (suite, device, model, scenario, batch). The device is its
configured identity (name, kind, backend, hardware id), never the host name, clocks or load.
The runtime and driver versions are carried beside the key: a comparison still pairs records whose
runtime was upgraded, and says so, since that is exactly the change a release manager looks for.
"""

from __future__ import annotations

from typing import Any

from .record import Record

DEVICE_FIELDS = ("name", "kind", "backend", "hardware_id")

Key = tuple[str, tuple[str, ...], str, str, str]


def device_identity(record: Record) -> tuple[str, ...]:
    return tuple(str(record.device.get(f) or "") for f in DEVICE_FIELDS)


def versions(record: Record) -> dict[str, Any]:
    """The runtime and driver versions a result depends on (empty values dropped)."""
    out = {"runtime": record.backend.get("runtime"), "runtime_version": record.backend.get("runtime_version")}
    drivers = record.backend.get("drivers") or record.device.get("drivers") or {}
    if isinstance(drivers, dict):
        out.update({f"driver:{k}": v for k, v in drivers.items()})
    return {k: v for k, v in out.items() if v not in (None, "")}


def batch_of(record: Record) -> str:
    batch = record.scenario.get("batch")
    return "" if batch is None else str(batch)


def record_key(record: Record) -> Key:
    return (record.suite, device_identity(record), str(record.model.get("name", "")),
            str(record.scenario.get("name", "")), batch_of(record))


def label(key: Key) -> str:
    """A short human label for a key: 'throughput cpu mobilenet_v2 offline b8'."""
    suite, device, model, scenario, batch = key
    parts = [suite, device[0], model, scenario] + ([f"b{batch}"] if batch else [])
    return " ".join(p for p in parts if p)


def index(records: list[Record]) -> tuple[dict[Key, Record], list[str]]:
    """Records by key (the latest wins when a key repeats, and that is reported)."""
    out: dict[Key, Record] = {}
    notes: list[str] = []
    for r in sorted(records, key=lambda r: r.created):
        k = record_key(r)
        if k in out:
            notes.append(f"{label(k)}: measured more than once in one run; the latest record {r.id} is used")
        out[k] = r
    return out, notes
