"""Text from outside meters: a number out of a line, and a child process read line by line.

Used by the command meter, the serial meter and tegrastats. A child process is always
terminated (then killed) when its window ends; its stderr goes to a temporary file so a chatty
meter can never block on a full pipe, and is quoted when the process dies.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import tempfile
from typing import IO

from ..errors import ConfigError, MeterError, MeterUnavailable
from .options import Option

NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
DEFAULT_PATTERN = f"({NUMBER})"
TERMINATE_WAIT_S = 1.0

LINE_OPTIONS = (
    Option("reports", "string", "watts", choices=("watts", "joules"),
           help="whether each value is power in watts or a cumulative energy in joules"),
    Option("pattern", "string", DEFAULT_PATTERN,
           help="regular expression whose first group (or group 'value') is the number"),
    Option("scale", "number", 1.0, minimum=0.0, above_minimum=True,
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
