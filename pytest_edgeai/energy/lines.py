"""Meters that read numbers from lines of text: a command, a serial port, tegrastats.

A line source either answers each read on demand (a command run once per sample: polled at
``rate_hz``, and output that does not parse is an error) or streams at its own pace (a
long-running command, a serial meter: lines that do not match are skipped, and the last one
is quoted if no value ever arrives). A long-running process is always terminated (then killed)
when its window ends; its stderr goes to a temporary file so a chatty meter can never block on
a full pipe, and is quoted when the process dies.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import tempfile
from collections.abc import Callable
from typing import IO, Protocol

from ..errors import ConfigError, MeterError, MeterUnavailable
from ..keys import Key
from .sampling import SampledMeter

NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
DEFAULT_PATTERN = f"({NUMBER})"
TERMINATE_WAIT_S = 1.0

LINE_OPTIONS = (
    Key("reports", "string", "watts", choices=("watts", "joules"),
           help="whether each value is power in watts or a cumulative energy in joules"),
    Key("pattern", "string", DEFAULT_PATTERN,
           help="regular expression whose first group (or group 'value') is the number"),
    Key("scale", "number", 1.0, minimum=0.0, above_minimum=True,
           help="multiplier to watts or joules (0.001 for mW or mJ)"),
)


class LineParser:
    """The number in a line, scaled to watts or joules."""

    def __init__(self, pattern: str, scale: float, where: str):
        try:
            self.regex = re.compile(pattern)
        except re.error as exc:
            raise ConfigError([f"{where}.pattern: {pattern!r} is not a valid regular expression: {exc}"]) from None
        if self.regex.groups < 1:
            raise ConfigError([f"{where}.pattern: {pattern!r} needs a group around the number, e.g. ({NUMBER})"])
        self.scale = scale

    def parse(self, line: str) -> float | None:
        """The value in ``line``, or None when the pattern does not match it."""
        match = self.regex.search(line)
        if not match:
            return None
        text = match.group("value") if "value" in self.regex.groupindex else match.group(1)
        try:
            return float(text) * self.scale
        except (TypeError, ValueError):
            return None


def argv_of(command: str | list[str]) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else list(command)


class ProcessLines:
    """A long-running child process whose stdout is read one line at a time."""

    def __init__(self, argv: list[str], where: str):
        self.argv = argv
        self.where = where
        self._proc: subprocess.Popen[str] | None = None
        self._stderr: IO[bytes] | None = None

    def open(self) -> None:
        self._stderr = tempfile.TemporaryFile()
        try:
            self._proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=self._stderr,
                                          stdin=subprocess.DEVNULL, text=True, bufsize=1,
                                          start_new_session=True)
        except OSError as exc:
            self.close()
            raise MeterUnavailable(f"{self.where}: cannot start {shlex.join(self.argv)}: {exc}") from exc

    def readline(self) -> str:
        """The next line; MeterError when the process has ended."""
        proc = self._proc
        if proc is None or proc.stdout is None:
            raise MeterError(f"{self.where}: the process is not running")
        line = proc.stdout.readline()
        if line == "":
            code = proc.wait()
            raise MeterError(f"{self.where}: {shlex.join(self.argv)} exited with status {code}"
                             f"{stderr_tail(self._stderr)}")
        return line

    def interrupt(self) -> None:
        """End the process group (a shell's children too), so a blocked readline sees EOF."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(TERMINATE_WAIT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        except ProcessLookupError:
            pass

    def close(self) -> None:
        """Interrupt, then close the pipes (call after the reading thread has been joined)."""
        self.interrupt()
        proc, self._proc = self._proc, None
        if proc is not None and proc.stdout is not None:
            proc.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None


def stderr_tail(stream: IO[bytes] | None, limit: int = 300) -> str:
    """': <last lines of stderr>' or ''."""
    if stream is None or stream.closed:
        return ""
    stream.seek(0)
    text = stream.read().decode(errors="replace").strip()
    return f": {text[-limit:]}" if text else ""


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
