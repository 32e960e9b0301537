"""What the terminal shows: a live progress line and the end-of-session summary table."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ..measure.scenarios import Progress
from ..results.record import Record

SHOW_AFTER_S = 3.0
MIN_ROOM = 24  # fewer free columns than this on the current line: no live line (it would say nothing)


class LiveLine:
    """The tail of the terminal's current line, rewritten while a test measures and cleared before pytest
    writes again. It shows once the test has reported progress for ``delay`` seconds: a short test says
    nothing, and a long one made of many short measurements (interleaved rounds) is not silent.

    ``write`` puts raw text on the terminal (the plugin passes one that goes around pytest's capture and
    past its TerminalWriter's count of the current line, which places the ``[NN%]`` column: that count
    never includes this text). The text is taken back with backspaces, which every terminal honours, and
    kept within ``room()``, the columns left on the line, so it never wraps. ``column()`` is where pytest
    believes the cursor is: when it moved (pytest or a live log wrote meanwhile), the old text is no
    longer under the cursor and is left alone. Only the main thread writes: pytest's capture is
    suspended and resumed around each write, which another thread must not do."""

    def __init__(self, write: Callable[[str], None], room: Callable[[], int], column: Callable[[], int],
                 delay: float = SHOW_AFTER_S, clock: Callable[[], float] = time.monotonic):
        self.write = write
        self.room = room
        self.column = column
        self.delay = delay
        self.clock = clock
        self.shown = 0
        self.at: int | None = None
        self.since: float | None = None  # the first progress since the line was last cleared

    def show(self, text: str) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        if self.since is None:
            self.since = self.clock()
        if self.clock() - self.since < self.delay:
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
        self.since = None


class ProgressLine:
    """One measurement's progress on the live line: elapsed vs target, queries, running throughput."""

    def __init__(self, line: LiveLine, label: str):
        self.line = line
        self.label = label

    def __call__(self, p: Progress) -> None:
        self.line.show(f" [edgeai] {self.label}: {p.elapsed_s:.0f}/{p.target_s:.0f} s, "
                       f"{p.count}/{p.min_count} queries, {p.items_per_s:.1f} inferences/s")


UNMEASURED = ("predicted", "estimated")  # figures a table must not pass off as measured (results.record.METHODS)
SHOWN = ("throughput_ips", "latency_p50_ms", "latency_p90_ms")
MEASURED_SHOWN = 3  # a record without the table's figures: this many of its own, named
MAX_SKIP_REASONS = 20


def _fmt(record: Record, name: str, digits: int = 2) -> str:
    """A figure of the table; a predicted or estimated one says so."""
    value = record.metric(name)
    if value is None:
        return "-"
    method = record.metrics[name].get("method")
    return f"{value:.{digits}f}" + (f" ({method})" if method in UNMEASURED else "")


def _num(value: float) -> str:
    """Four significant figures, without an exponent for the thousands a throughput reaches."""
    return f"{value:.0f}" if 1e4 <= abs(value) < 1e9 else f"{value:.4g}"


def _interval(claim: dict[str, Any]) -> str:
    """The interval a verdict was judged on; a deterministic figure (a point) as its value."""
    span = claim.get("interval")
    if span and span[0] != span[1]:
        return f"[{_num(span[0])}, {_num(span[1])}]"
    observed = span[0] if span else claim.get("observed")
    return f"={_num(observed)}" if isinstance(observed, (int, float)) else ""


def verdicts(record: Record) -> str:
    """Each claim's verdict with the interval it was judged on; "no claims configured" where none were."""
    return (" ".join(f"{c['name']}:{c['verdict']}{_interval(c)}" for c in record.claims)
            or ("no claims configured" if record.extra.get("claims_note") else ""))


def measured(record: Record) -> str:
    """What a record without throughput or latency measured: its first figures, named, with units."""
    shown = []
    for name, entry in list(record.metrics.items())[:MEASURED_SHOWN]:
        value = entry.get("value")
        if isinstance(value, (int, float)):
            method = entry.get("method")
            shown.append(f"{name}={_num(value)}{' ' + str(entry.get('unit')) if entry.get('unit') else ''}"
                         + (f" ({method})" if method in UNMEASURED else ""))
    return "measured: " + ", ".join(shown) if shown else "-"


def function_of(record: Record) -> str:
    """The test function that wrote a record (its parameters are the device and model columns)."""
    return record.test_id.split("::")[-1].split("[")[0]


def _row(r: Record) -> list[str]:
    if r.status != "ok":
        outcome = f"error: {(r.error or '')[:60]}"
    else:
        has_figures = any(r.metric(name) is not None for name in SHOWN)
        outcome = verdicts(r) or ("-" if has_figures else measured(r))
    return [function_of(r), r.suite, r.device.get("name", "?"), r.model.get("name", "?"),
            str(r.scenario.get("name", "?")), str(r.scenario.get("batch", "")), _fmt(r, "throughput_ips", 1),
            _fmt(r, "latency_p50_ms"), _fmt(r, "latency_p90_ms"), outcome]


def _headline(r: Record) -> bool:
    """A record worth a row of its own: judged, failed, or a plain latency/throughput figure (one round of
    an interleaved comparison is not: its figure is on the pooled record)."""
    judged = bool(r.claims) or "claims_note" in r.extra
    one_round = "round" in r.scenario or "window" in r.scenario
    return (r.status != "ok" or judged
            or (r.scenario.get("name") in ("single_stream", "offline") and not one_round and bool(r.metrics)))


def summary_rows(records: Iterable[Record]) -> list[list[str]]:
    """One row per headline record, and at least one per test: a test none of whose records is a headline
    shows its last one with figures (its last one if none has any), so every test that measured says what."""
    by_test: dict[str, list[Record]] = {}
    for r in records:
        by_test.setdefault(r.test_id, []).append(r)
    rows: list[list[str]] = []
    for test_records in by_test.values():
        chosen = ([r for r in test_records if _headline(r)] or [r for r in test_records if r.metrics][-1:]
                  or test_records[-1:])
        rows.extend(_row(r) for r in chosen)
    return rows


def format_table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(header)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

    return [line(header), line(["-" * w for w in widths])] + [line(r) for r in rows]


SUMMARY_HEADER = ["test", "suite", "device", "model", "scenario", "batch", "inf/s", "p50 ms", "p90 ms",
                  "claims (or what was measured)"]


def summary_lines(records: Iterable[Record]) -> list[str]:
    rows = summary_rows(records)
    return format_table(SUMMARY_HEADER, rows) if rows else []


def skip_lines(reasons: Iterable[str]) -> list[str]:
    """Why tests skipped, one line per reason with how many, most frequent first (shown without -rs: a skip
    is a claim not checked, and a run where everything skipped must say why)."""
    counts: dict[str, int] = {}
    for reason in reasons:
        counts[reason] = counts.get(reason, 0) + 1
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    lines = [f"{count:>4} x {reason}" for reason, count in ranked[:MAX_SKIP_REASONS]]
    if len(ranked) > MAX_SKIP_REASONS:
        rest = sum(count for _, count in ranked[MAX_SKIP_REASONS:])
        lines.append(f"{rest:>4} x for {len(ranked) - MAX_SKIP_REASONS} more reasons (pytest -rs lists every skip)")
    return lines


def run_line(records: int, run: Path, report: Path | None, latest: Path | None) -> str:
    """The session's last line: where the run and its report are; a run that measured nothing says that
    'latest' still names the last one that did (results.store.point_latest)."""
    where = f"{records} records in {run}"
    if records == 0:
        kept = f"still names {latest}" if latest is not None else "names no run yet"
        where += f" (nothing was measured: {run.parent / 'latest'} {kept})"
    return f"edgeai: {where}" + (f"; HTML report: {report}" if report is not None else "")
