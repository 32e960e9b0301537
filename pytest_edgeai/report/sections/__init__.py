"""The report's sections, each a small module that turns records into a template context.

A section knows only result records (and the comparison and history built from them); it returns
None when it has nothing to show, and the report leaves it out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from ...results.compare import Comparison
from ...results.history import History
from ...results.record import Record
from ...results.store import Run


@dataclass
class ReportData:
    """What every section may read: the run, its records, and optional comparison and history."""

    run: Run
    comparison: Comparison | None = None
    history: History | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def records(self) -> list[Record]:
        return sorted(self.run.records, key=lambda r: (r.suite, r.created))

    @property
    def ok(self) -> list[Record]:
        return [r for r in self.records if r.status == "ok"]


class Section(Protocol):
    name: str  # its template: templates/sections/<name>.html.j2
    title: str

    def build(self, data: ReportData) -> dict[str, Any] | None: ...


def all_sections() -> list[Section]:
    """In page order: what needs attention first, then each suite's results, then context."""
    from . import (comparison, compression, concurrency, energy, environment, measurements, split,
                   summary, throughput, trend)

    return [summary.SECTION, throughput.SECTION, energy.SECTION, split.SECTION, compression.SECTION,
            concurrency.SECTION, measurements.SECTION, comparison.SECTION, trend.SECTION,
            environment.SECTION]
