"""One JSON object per measurement: what ran, what was measured, which claims, where.

The schema is versioned (``schema_version``) and documented in docs/record-schema.md; a reader
accepts older versions it knows and refuses newer ones with a clear message.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

SCHEMA = "pytest-edgeai/result"
SCHEMA_VERSION = 1
METHODS = ("measured", "derived", "predicted", "estimated")
COMPARISONS = ("exact", "measured")  # how a comparison between runs may judge it (results.compare.nature)


def metric(value: Any, unit: str, source: str, method: str = "measured", *, comparison: str | None = None,
           windows: list[float] | None = None) -> dict[str, Any]:
    """One metric as records hold it: the figure, its unit, and how it was obtained (``METHODS``).

    ``comparison``: "exact" for a deterministic figure (bytes, counts, accuracy on a fixed set), "measured"
    for one that varies between runs; omitted, its name and unit decide. ``windows``: the figure in each
    independent repeated window, the evidence a comparison judges its between-run noise on."""
    if method not in METHODS:
        raise ValueError(f"metric method {method!r} is not one of {', '.join(METHODS)}")
    if comparison is not None and comparison not in COMPARISONS:
        raise ValueError(f"metric comparison {comparison!r} is not one of {', '.join(COMPARISONS)}")
    out = {"value": value, "unit": unit, "method": method, "source": source}
    if comparison is not None:
        out["comparison"] = comparison
    if windows is not None:
        out["windows"] = [float(w) for w in windows]
    return out


@dataclass
class Record:
    """A measurement as stored. Metrics are ``{name: {value, unit, method, source, ci95?, comparison?,
    windows?}}``."""

    suite: str
    test_id: str
    device: dict[str, Any]
    backend: dict[str, Any]
    model: dict[str, Any]
    scenario: dict[str, Any]
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    samples: dict[str, list[float]] = field(default_factory=dict)
    claims: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    status: str = "ok"  # "ok" or "error"
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    run_id: str = ""
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    created: float = field(default_factory=time.time)
    schema: str = SCHEMA
    schema_version: int = SCHEMA_VERSION

    def metric(self, name: str) -> float | None:
        entry = self.metrics.get(name)
        return None if entry is None else entry.get("value")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Record:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})
