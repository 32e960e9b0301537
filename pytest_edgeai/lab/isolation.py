"""Isolation from crashing runtimes: each device's measurements run in a persistent worker process.

The worker keeps the last model loaded, so a suite's tests on one model pay one load. A native crash
(SIGSEGV in a vendor library) fails that measurement with the signal named and the session goes on with
a fresh worker; a measurement that outlives its time limit is killed and its device reported lost.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import deque
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from .. import errors
from ..errors import DeviceUnavailable, EdgeAIError, MeasurementError
from ..measure.scenarios import ProgressCallback
from .execute import MeasureRequest, MeasureResult, RuntimeFailure

START_TIMEOUT_S = 60.0
CLOSE_TIMEOUT_S = 5.0
LOG_TAIL_LINES = 40


class RuntimeCrashed(MeasurementError):
    """The runtime took its worker process down (a signal, or an exit in native code)."""


class DeviceLost(DeviceUnavailable):
    """The device stopped answering: a measurement outlived its time limit."""


def rebuild_error(kind: str, type_name: str, message: str) -> EdgeAIError:
    """The child's error as the same kind of exception here (errors do not all pickle faithfully)."""
    if kind == "runtime":
        return RuntimeFailure(message)
    cls = getattr(errors, type_name, None)
    if cls is errors.ConfigError:
        return errors.ConfigError(message.splitlines())
    if isinstance(cls, type) and issubclass(cls, EdgeAIError):
        return cls(message)
    return DeviceUnavailable(message) if kind == "unavailable" else EdgeAIError(message)


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"crashed with {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with status {returncode}"


class Worker:
    """One child process and the pipe to it."""

    def __init__(self, name: str):
        from ..backends.base import BUILTIN

        ours, theirs = socket.socketpair()
        self.log_path = Path(tempfile.mkstemp(prefix=f"edgeai-worker-{name}-", suffix=".log")[1])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "pytest_edgeai.lab.worker", str(theirs.fileno())],
                pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)
        theirs.close()
        self.conn = Connection(ours.detach())
        self.phase = "start-up"
        self.conn.send(("hello", dict(BUILTIN)))
        self._expect("ready", START_TIMEOUT_S, "starting")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _recv(self, timeout: float | None) -> tuple[Any, ...] | None:
        """The next message; None when ``timeout`` passed first; RuntimeCrashed when the worker died."""
        try:
            if not self.conn.poll(timeout):
                return None
            return self.conn.recv()
        except (EOFError, OSError):
            try:
                code = self.proc.wait(CLOSE_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.kill()
                code = self.proc.returncode
            raise RuntimeCrashed(self._crash_text(describe_exit(code))) from None

    def _crash_text(self, what: str) -> str:
        tail = self.log_tail()
        return (f"the runtime {what} during {self.phase} (isolated worker pid {self.pid}); the session goes on "
                f"with a fresh worker" + (f"\nlast output of the worker:\n{tail}" if tail else ""))

    def _expect(self, event: str, timeout: float, doing: str) -> tuple[Any, ...]:
        message = self._recv(timeout)
        if message is None or message[0] != event:
            self.kill()
            raise DeviceUnavailable(f"the isolated worker did not answer while {doing} "
                                    f"(got {message!r} within {timeout:.0f} s)")
        return message

    def measure(self, request: MeasureRequest, timeout_s: float,
                progress: ProgressCallback | None = None) -> MeasureResult:
        self.phase = "the request"
        self.conn.send(("measure", request, progress is not None))
        deadline = None
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            message = self._recv(remaining) if remaining is None or remaining > 0 else None
            if message is None:
                self.kill()
                raise DeviceLost(f"{request.label}: no answer within {timeout_s:g} s (--edgeai-timeout) during "
                                 f"{self.phase}; the isolated worker (pid {self.pid}) was killed")
            event = message[0]
            if event == "locked":  # the time limit counts from here: waiting for the device is not a hang
                deadline = time.monotonic() + timeout_s
            elif event == "phase":
                self.phase = message[1]
            elif event == "progress" and progress is not None:
                progress(message[1])
            elif event == "done":
                self.phase = "idle"
                return message[1]
            elif event == "error":
                self.phase = "idle"
                raise rebuild_error(*message[1:])

    def log_tail(self) -> str:
        """The worker's last words: from faulthandler's 'Fatal Python error' line when there is one."""
        try:
            with self.log_path.open("r", encoding="utf-8", errors="replace") as fh:
                lines = list(deque(fh, LOG_TAIL_LINES))
        except OSError:
            return ""
        start = next((i for i, line in enumerate(lines) if line.startswith("Fatal Python error")), 0)
        return "".join(line for line in lines[start:] if not line.startswith("Extension modules:")).rstrip()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._cleanup()

    def close(self) -> None:
        try:
            self.conn.send(("close",))
            self.proc.wait(CLOSE_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()

    def _cleanup(self) -> None:
        self.conn.close()
        self.log_path.unlink(missing_ok=True)


class IsolatedRunner:
    """A worker per device, started on first use and replaced after a crash or a hang."""

    isolated = True

    def __init__(self) -> None:
        self._workers: dict[str, Worker] = {}

    def measure(self, request: MeasureRequest, timeout_s: float,
                progress: ProgressCallback | None = None) -> MeasureResult:
        name = request.device.name
        if name not in self._workers:
            self._workers[name] = Worker(name)
        worker = self._workers[name]
        try:
            return worker.measure(request, timeout_s, progress)
        except (RuntimeCrashed, DeviceUnavailable):
            self._workers.pop(name, None)
            worker.kill()
            raise

    def close(self) -> None:
        while self._workers:
            self._workers.popitem()[1].close()
