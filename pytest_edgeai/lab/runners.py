"""Where measurements and studies run: the :class:`Runner` protocol and its two runners.

- :class:`IsolatedRunner` (the default): each device's work runs in a persistent worker process (started by
  ``lab.child``). The worker keeps the last model loaded, so a suite's tests on one model pay one load. A
  native crash (SIGSEGV in a vendor library) fails that measurement with the signal named and the session
  goes on with a fresh worker; a measurement that outlives its time limit is killed and its device reported
  lost.
- :class:`InProcessRunner` (``--edgeai-no-isolation``, and a bench without a session): everything in this
  process, for a debugger. No protection: a native crash takes pytest down, a hang is not cut off.

A request carries its own limits (``timeout_s``, ``lock_timeout_s``); the session sets them. The session is a
Runner too: it adds what a run needs around the runner it holds (devices lost mid-run).
"""

from __future__ import annotations

import os
import pickle
import time
from collections.abc import Callable, Iterable
from multiprocessing.connection import Connection
from typing import Any, Protocol, TypeVar

from ..backends.base import Availability, probe
from ..devices import Device
from ..errors import ConfigError, DeviceLost, DeviceUnavailable, EdgeAIError, RuntimeCrashed, from_wire, to_wire
from ..measure.scenarios import ProgressCallback
from . import child
from .child import describe_exit
from .work import CallRequest, CallResult, MeasureRequest, MeasureResult, ModelCache, call, execute

START_TIMEOUT_S = 60.0
PROBE_TIMEOUT_S = 60.0  # a device that takes longer to say whether it is there is stuck
CLOSE_TIMEOUT_S = 5.0
LOCK_WAIT_FACTOR = 4  # a device lock held longer than this many time limits is held by something stuck

# on_event(name, args): a study's callback ``name`` was called with ``args`` (see work.CallRequest)
EventCallback = Callable[[str, tuple[Any, ...]], None]
_T = TypeVar("_T")


class Runner(Protocol):
    def measure(self, request: MeasureRequest, progress: ProgressCallback | None = None) -> MeasureResult: ...

    def call(self, request: CallRequest, on_event: EventCallback) -> CallResult: ...

    def release(self, device_name: str) -> None:
        """Free what is held for a device nothing more will run on."""
        ...

    def close(self) -> None: ...


def serve(conn: Connection) -> None:
    """The worker's side: answer ``("measure", MeasureRequest, progress?)`` and ``("call", CallRequest, False)``
    until told to close or the parent goes."""
    conn.send(("ready", os.getpid()))
    cache = ModelCache()
    try:
        while True:
            try:
                message: Any = conn.recv()
            except EOFError:
                return
            if message[0] == "close":
                return
            kind, request, want_progress = message
            notify = lambda event, value: conn.send((event, value))  # noqa: E731
            result: MeasureResult | CallResult
            try:
                if kind == "call":
                    result = call(request, cache, notify)
                else:
                    result = execute(request, cache, notify=notify,
                                     progress=(lambda p: conn.send(("progress", p))) if want_progress else None)
                conn.send(("done", result))
            except EdgeAIError as exc:
                conn.send(("error", *to_wire(exc)))
            except Exception as exc:  # e.g. a result that cannot be pickled: say so, keep serving
                conn.send(("error", "EdgeAIError", f"isolated worker: {type(exc).__name__}: {exc}", {}))
    finally:
        cache.close_all()


class Worker:
    """One device's worker process and the connection to it."""

    def __init__(self, name: str):
        self.child = child.start(serve, name=f"worker-{name}", log=True)
        self.phase = "start-up"
        self._expect("ready", START_TIMEOUT_S, "starting")

    @property
    def pid(self) -> int:
        return self.child.pid

    def _recv(self, timeout: float | None) -> tuple[Any, ...] | None:
        """The next message; None when ``timeout`` passed first; RuntimeCrashed when the worker died."""
        try:
            if not self.child.conn.poll(timeout):
                return None
            message: tuple[Any, ...] = self.child.conn.recv()  # the worker sends only tuples
            return message
        except (EOFError, OSError):
            code = self.child.join(CLOSE_TIMEOUT_S)
            if code is None:
                self.child.kill()
                code = self.child.exitcode
            raise RuntimeCrashed(self._crash_text(describe_exit(code if code is not None else -9))) from None

    def _crash_text(self, what: str) -> str:
        tail = self.child.log_tail()
        return (f"the runtime {what} during {self.phase} (isolated worker pid {self.pid}); the session goes on "
                f"with a fresh worker" + (f"\nlast output of the worker:\n{tail}" if tail else ""))

    def _expect(self, event: str, timeout: float, doing: str) -> tuple[Any, ...]:
        message = self._recv(timeout)
        if message is None or message[0] != event:
            self.kill()
            raise DeviceUnavailable(f"the isolated worker did not answer while {doing} "
                                    f"(got {message!r} within {timeout:.0f} s)")
        return message

    def measure(self, request: MeasureRequest, progress: ProgressCallback | None = None) -> MeasureResult:
        """One measurement: it must end within ``request.timeout_s`` of getting the device."""
        def on_message(event: str, value: Any) -> bool:
            if event == "progress" and progress is not None:
                progress(value)
            return False  # progress is not a sign of life: a measurement ends within its limit

        result: MeasureResult = self._converse(("measure", request, progress is not None), request.label,
                                               request.timeout_s, on_message)
        return result

    def call(self, request: CallRequest, on_event: EventCallback) -> CallResult:
        """A study of many steps: it may not go ``request.timeout_s`` without relaying an event."""
        def on_message(event: str, value: Any) -> bool:
            if event == "event":
                on_event(*value)
                return True
            return False

        result: CallResult = self._converse(("call", request, False), request.label, request.timeout_s, on_message)
        return result

    def _converse(self, message: tuple[Any, ...], label: str, timeout_s: float | None,
                  on_message: Callable[[str, Any], bool]) -> Any:
        """Send a request; answer its messages until it is done. The time limit starts once the device
        is locked (waiting for the device is not a hang) and restarts when ``on_message`` says so."""
        self.phase = "the request"
        try:
            self.child.conn.send(message)  # pickled whole before a byte is sent: a failure leaves the worker in step
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
                deadline = None if timeout_s is None else time.monotonic() + timeout_s
            elif event == "phase":
                self.phase = answer[1]
            elif event == "done":
                self.phase = "idle"
                return answer[1]
            elif event == "error":
                self.phase = "idle"
                raise from_wire(*answer[1:])
            elif on_message(event, answer[1]) and deadline is not None and timeout_s is not None:
                deadline = time.monotonic() + timeout_s

    def kill(self) -> None:
        self.child.close()

    def close(self) -> None:
        try:
            self.child.conn.send(("close",))
            self.child.join(CLOSE_TIMEOUT_S)
        except OSError:
            pass
        self.kill()


class IsolatedRunner:
    """A worker per device, started on first use and replaced after a crash or a hang."""

    def __init__(self) -> None:
        self._workers: dict[str, Worker] = {}

    def measure(self, request: MeasureRequest, progress: ProgressCallback | None = None) -> MeasureResult:
        return self._with_worker(request.device.name, lambda worker: worker.measure(request, progress))

    def call(self, request: CallRequest, on_event: EventCallback) -> CallResult:
        return self._with_worker(request.device.name, lambda worker: worker.call(request, on_event))

    def _with_worker(self, name: str, use: Callable[[Worker], _T]) -> _T:
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


class InProcessRunner:
    """Everything in this process; limits are not enforced (a thread cannot be killed)."""

    def __init__(self) -> None:
        self._caches: dict[str, ModelCache] = {}

    def measure(self, request: MeasureRequest, progress: ProgressCallback | None = None) -> MeasureResult:
        return execute(request, self._cache(request.device.name), progress=progress)

    def call(self, request: CallRequest, on_event: EventCallback) -> CallResult:
        """A study here, its callbacks called directly."""
        return call(request, self._cache(request.device.name),
                    lambda event, value: on_event(*value) if event == "event" else None)

    def _cache(self, name: str) -> ModelCache:
        return self._caches.setdefault(name, ModelCache())

    def release(self, device_name: str) -> None:
        cache = self._caches.pop(device_name, None)
        if cache is not None:
            cache.close_all()

    def close(self) -> None:
        while self._caches:
            self._caches.popitem()[1].close_all()


def no_events(name: str, args: tuple[Any, ...]) -> None:
    """A probe relays nothing."""


def probe_isolated(devices: Iterable[Device], timeout_s: float = PROBE_TIMEOUT_S) -> dict[str, Availability]:
    """Whether each device is attached, asked in an isolated worker (one for all, replaced after a crash or a
    hang): a vendor's probe that segfaults or hangs makes its device 'not attached', with one line saying
    why, and the caller (``pytest-edgeai devices``, ``--device auto``) goes on."""
    found: dict[str, Availability] = {}
    worker: Worker | None = None
    try:
        for device in devices:
            request = CallRequest(device, probe, (device,), exclusive=False, timeout_s=timeout_s)
            try:
                worker = worker or Worker("probes")
                found[device.name] = worker.call(request, no_events).value
            except EdgeAIError as exc:
                first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                found[device.name] = Availability(False, f"probing it in an isolated worker failed: {first}")
                if worker is not None and isinstance(exc, (RuntimeCrashed, DeviceUnavailable)):
                    worker.kill()  # crashed, hung or never started: the next device gets a fresh one
                    worker = None
    finally:
        if worker is not None:
            worker.close()
    return found


def make_runner(isolated: bool) -> Runner:
    return IsolatedRunner() if isolated else InProcessRunner()


MAX_TIMEOUT_S = 7 * 24 * 3600.0


def parse_timeout(value: object, default: float) -> float:
    """--edgeai-timeout: seconds a measurement (load + measure) may take before it counts as a hang."""
    if value in (None, ""):
        return float(default)
    try:
        seconds = float(str(value))
    except ValueError:
        seconds = 0.0
    if not 0 < seconds <= MAX_TIMEOUT_S:  # inf or 1e400 would overflow every wait on it
        raise ConfigError([f"--edgeai-timeout {value}: give a positive number of seconds up to "
                           f"{MAX_TIMEOUT_S:g} (a week), e.g. 120"])
    return seconds
