"""Where the run happened: the environment, the options, the profile, the merged sources."""

from __future__ import annotations

from typing import Any

from ...results.compare import run_release
from . import ReportData


def flatten(data: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Nested dicts as (dotted key, value) rows."""
    if isinstance(data, dict):
        out = []
        for k, v in data.items():
            out.extend(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return [(prefix, "" if data is None else str(data))]


class Environment:
    name = "environment"
    title = "Environment"

    def build(self, data: ReportData) -> dict[str, Any]:
        meta = data.run.meta
        return {"release": run_release(meta),
                "environment": flatten(meta.get("environment") or {}),
                "options": flatten(meta.get("options") or {}),
                "profile": flatten(meta.get("profile") or {}),
                "sources": meta.get("sources") or []}


SECTION = Environment()
