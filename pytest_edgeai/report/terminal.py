"""What the terminal shows: a live progress line and the end-of-session summary table."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from ..measure.scenarios import Progress
from ..results.record import Record

SHOW_AFTER_S = 3.0
MIN_ROOM = 24  # fewer free columns than this on the current line: no live line (it would say nothing)


class LiveLine:
    """The tail of the terminal's current line, rewritten while a long measurement runs and cleared
    before pytest writes again.

    ``write`` puts raw text on the terminal (the plugin passes one that goes around pytest's capture and
    past its TerminalWriter's count of the current line, which places the ``[NN%]`` column: that count
    never includes this text). The text is taken back with backspaces, which every terminal honours, and
    kept within ``room()``, the columns left on the line, so it never wraps. ``column()`` is where pytest
    believes the cursor is: when it moved (pytest or a live log wrote meanwhile), the old text is no
    longer under the cursor and is left alone. Only the main thread writes: pytest's capture is
    suspended and resumed around each write, which another thread must not do."""

    def __init__(self, write: Callable[[str], None], room: Callable[[], int], column: Callable[[], int]):
        self.write = write
        self.room = room
        self.column = column
        self.shown = 0
        self.at: int | None = None

    def show(self, text: str) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        if self.column() != self.at:
            self.shown = 0
        room = self.room() if self.column() >= 0 else 0  # a count of -1: pytest lost track of the line
        text = text[:room] if room >= MIN_ROOM else ""
        if not text and not self.shown:
            return
        pad = max(0, self.shown - len(text))
        self.write("\b" * self.shown + text + " " * pad + "\b" * pad)
        self.shown, self.at = len(text), self.column()

    def clear(self) -> None:
        """Take the text back off the line, leaving the cursor where pytest left it."""
        if self.shown and self.column() == self.at and threading.current_thread() is threading.main_thread():
            self.write("\b" * self.shown + " " * self.shown + "\b" * self.shown)
        self.shown = 0


class ProgressLine:
    """One measurement's progress on the live line: elapsed vs target and the running throughput,
    once it has run for ``SHOW_AFTER_S`` (a short measurement says nothing)."""

    def __init__(self, line: LiveLine, label: str):
        self.line = line
        self.label = label

    def __call__(self, p: Progress) -> None:
        if p.elapsed_s >= SHOW_AFTER_S:
            self.line.show(f" [edgeai] {self.label}: {p.elapsed_s:.0f}/{p.target_s:.0f} s, "
                           f"{p.count}/{p.min_count} queries, {p.items_per_s:.1f} inferences/s")


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _interval(claim: dict[str, Any]) -> str:
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
