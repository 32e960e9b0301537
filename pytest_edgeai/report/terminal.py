"""What the terminal shows: a live progress line and the end-of-session summary table."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from ..measure.scenarios import Progress
from ..results.record import Record

SHOW_AFTER_S = 3.0


class Writer(Protocol):
    """The part of pytest's TerminalWriter we use (duck-typed: no pytest import here)."""

    def write(self, msg: str, **markup: bool) -> None: ...


class ProgressLine:
    """Rewrites one line with elapsed vs target and running throughput, for long measurements."""

    def __init__(self, writer: Writer, label: str):
        self.writer = writer
        self.label = label
        self.shown = False

    def __call__(self, p: Progress) -> None:
        if p.elapsed_s < SHOW_AFTER_S:
            return
        prefix = "\r" if self.shown else "\n"
        self.shown = True
        self.writer.write(f"{prefix}  [edgeai] {self.label}: {p.elapsed_s:.0f}/{p.target_s:.0f} s, "
                          f"{p.count}/{p.min_count} queries, {p.items_per_s:.1f} inferences/s   ", flush=True)


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _interval(claim: dict) -> str:
    span = claim.get("interval")
    return "" if not span or span[0] == span[1] else f"[{span[0]:.4g}, {span[1]:.4g}]"


def verdicts(record: Record) -> str:
    """Each claim's verdict with the interval it was judged on; "no claims configured" where none were."""
    return (" ".join(f"{c['name']}:{c['verdict']}{_interval(c)}" for c in record.claims)
            or ("no claims configured" if record.extra.get("claims_note") else "-"))


def summary_rows(records: Iterable[Record]) -> list[list[str]]:
    rows = []
    for r in records:
        judged = bool(r.claims) or "claims_note" in r.extra
        one_round = "round" in r.scenario or "window" in r.scenario  # its figure is on the pooled record
        if r.status == "ok" and not judged and (r.scenario.get("name") not in ("single_stream", "offline")
                                                 or one_round):
            continue
        rows.append([r.suite, r.device.get("name", "?"), r.model.get("name", "?"),
                     str(r.scenario.get("name", "?")), str(r.scenario.get("batch", "")),
                     _fmt(r.metric("throughput_ips"), 1), _fmt(r.metric("latency_p50_ms")),
                     _fmt(r.metric("latency_p90_ms")),
                     verdicts(r) if r.status == "ok" else f"error: {(r.error or '')[:60]}"])
    return rows


def format_table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(header)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return [line(header), line(["-" * w for w in widths])] + [line(r) for r in rows]


SUMMARY_HEADER = ["suite", "device", "model", "scenario", "batch", "inf/s", "p50 ms", "p90 ms", "claims"]


def summary_lines(records: Iterable[Record]) -> list[str]:
    rows = summary_rows(records)
    return format_table(SUMMARY_HEADER, rows) if rows else []
