"""Meters that read numbers from lines of text: a command, a serial port, tegrastats.

A line source either answers each read on demand (a command run once per sample: polled at
``rate_hz``, and output that does not parse is an error) or streams at its own pace (a
long-running command, a serial meter: lines that do not match are skipped, and the last one
is quoted if no value ever arrives).
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Callable
from typing import Protocol

from ..errors import MeterError
from .sampler import SampledMeter


class LineSource(Protocol):
    def open(self) -> None: ...

    def readline(self) -> str | None:
        """The next line, or None when none arrived within the source's timeout."""
        ...

    def interrupt(self) -> None: ...

    def close(self) -> None: ...


class CommandOnce:
    """A command run to completion on every read; its last non-empty output line is the answer."""

    def __init__(self, argv: list[str], timeout_s: float, where: str):
        self.argv, self.timeout_s, self.where = argv, timeout_s, where

    def open(self) -> None:
        """Nothing to open: each read runs the command."""

    def readline(self) -> str:
        shown = shlex.join(self.argv)
        try:
            done = subprocess.run(self.argv, capture_output=True, text=True, timeout=self.timeout_s,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise MeterError(f"{self.where}: {shown} did not finish within {self.timeout_s:g} s") from None
        except OSError as exc:
            raise MeterError(f"{self.where}: cannot run {shown}: {exc}") from exc
        if done.returncode != 0:
            tail = done.stderr.strip()[-300:]
            raise MeterError(f"{self.where}: {shown} exited with status {done.returncode}"
                             f"{': ' + tail if tail else ''}")
        lines = [ln for ln in done.stdout.splitlines() if ln.strip()]
        return lines[-1] if lines else ""

    def interrupt(self) -> None:
        """A polled command is never left running between reads."""

    def close(self) -> None:
        """Nothing stays open."""


class LineMeter(SampledMeter):
    """Values that ``parse`` finds in a line source's lines; subclasses set ``info`` and ``kind``."""

    def __init__(self, rate_hz: float, lines: LineSource, polled: bool, what: str,
                 parse: Callable[[str], float | None]):
        super().__init__(rate_hz)
        self.polled = polled
        self._lines = lines
        self._what = what  # how a good line looks, for error messages
        self._parse = parse
        self._unmatched: str | None = None

    def _read(self) -> float | None:
        line = self._lines.readline()
        if line is None:
            return None
        value = self._parse(line)
        if value is None:
            if self.polled:
                raise MeterError(f"{self._where()}: printed {line.strip()[:80]!r}, not {self._what}")
            self._unmatched = line.strip()[:80] or self._unmatched
        return value

    def _no_sample_hint(self) -> str:
        return f"; the last line that was not {self._what}: {self._unmatched!r}" if self._unmatched else ""

    def _begin(self) -> None:
        self._unmatched = None
        self._lines.open()

    def _interrupt(self) -> None:
        self._lines.interrupt()

    def _end(self) -> None:
        self._lines.close()
