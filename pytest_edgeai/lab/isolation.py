"""Isolation from crashing runtimes: each device's measurements run in a persistent worker process.

The worker keeps the last model loaded, so a suite's tests on one model pay one load. A native crash
(SIGSEGV in a vendor library) fails that measurement with the signal named and the session goes on with
a fresh worker; a measurement that outlives its time limit is killed and its device reported lost.
"""

from __future__ import annotations

import os
import pickle
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from ..errors import DeviceLost, DeviceUnavailable, EdgeAIError, RuntimeCrashed, from_wire
from ..measure.scenarios import ProgressCallback
from .execute import CallRequest, CallResult, MeasureRequest, MeasureResult
from .runner import EventCallback

START_TIMEOUT_S = 60.0
CLOSE_TIMEOUT_S = 5.0
LOG_TAIL_LINES = 40


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
        """One measurement: it must end within ``timeout_s`` of getting the device."""
        def on_message(event: str, value: Any) -> bool:
            if event == "progress" and progress is not None:
                progress(value)
            return False  # progress is not a sign of life: a measurement ends within its limit

        return self._converse(("measure", request, progress is not None), request.label, timeout_s, on_message)

    def call(self, request: CallRequest, timeout_s: float, on_event: EventCallback) -> CallResult:
        """A study of many steps: it may not go ``timeout_s`` without relaying an event."""
        def on_message(event: str, value: Any) -> bool:
            if event == "event":
                on_event(*value)
                return True
            return False

        return self._converse(("call", request, False), request.label, timeout_s, on_message)

    def _converse(self, message: tuple[Any, ...], label: str, timeout_s: float,
                  on_message: Callable[[str, Any], bool]) -> Any:
        """Send a request; answer its messages until it is done. The time limit starts once the device
        is locked (waiting for the device is not a hang) and restarts when ``on_message`` says so."""
        self.phase = "the request"
        try:
            self.conn.send(message)  # pickled whole before a byte is sent: a failure leaves the worker in step
        except (pickle.PicklingError, AttributeError, TypeError) as exc:
            raise EdgeAIError(f"{label}: cannot be sent to the isolated worker ({type(exc).__name__}: {exc}); "
                              f"a study is a module-level function and its arguments plain data") from None
        deadline = None
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            answer = self._recv(remaining) if remaining is None or remaining > 0 else None
            if answer is None:
                self.kill()
                raise DeviceLost(f"{label}: no answer within {timeout_s:g} s (--edgeai-timeout) during "
                                 f"{self.phase}; the isolated worker (pid {self.pid}) was killed")
            event = answer[0]
            if event == "locked":
                deadline = time.monotonic() + timeout_s
            elif event == "phase":
                self.phase = answer[1]
            elif event == "done":
                self.phase = "idle"
                return answer[1]
            elif event == "error":
                self.phase = "idle"
                raise from_wire(*answer[1:])
            elif on_message(event, answer[1]) and deadline is not None:
                deadline = time.monotonic() + timeout_s

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
        return self._with_worker(request.device.name, lambda worker: worker.measure(request, timeout_s, progress))

    def call(self, request: CallRequest, timeout_s: float, on_event: EventCallback) -> CallResult:
        return self._with_worker(request.device.name, lambda worker: worker.call(request, timeout_s, on_event))

    def _with_worker(self, name: str, use: Callable[[Worker], Any]) -> Any:
        """The device's worker (started when needed), replaced when it crashed or stopped answering."""
        if name not in self._workers:
            self._workers[name] = Worker(name)
        worker = self._workers[name]
        try:
            return use(worker)
        except BaseException as exc:
            # kept: a worker that answered with an error of ours; replaced: one that crashed, stopped
            # answering, or was left mid-conversation by the caller's own callback failing
            if isinstance(exc, (RuntimeCrashed, DeviceUnavailable)) or not isinstance(exc, EdgeAIError):
                self._workers.pop(name, None)
                worker.kill()
            raise

    def release(self, device_name: str) -> None:
        worker = self._workers.pop(device_name, None)
        if worker is not None:
            worker.close()

    def close(self) -> None:
        while self._workers:
            self._workers.popitem()[1].close()
