"""Asynchronous submission for throughput modes: many requests in flight at once.

A runtime with a request pool (OpenVINO's AsyncInferQueue, several CUDA streams) reaches its
throughput only when the pool is kept full; a synchronous loop measures something else. A
session that can do this implements :class:`AsyncSession`; :func:`drive` is the one timing
loop over any :class:`RequestQueue`, and it stops the clock only after every request has
completed (``wait_all``), so an asynchronous device cannot finish after the clock stopped.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..errors import MeasurementError

if TYPE_CHECKING:
    import numpy as np

# Called with (elapsed_s, completed requests) about twice a second while a run goes on.
AsyncProgress = Callable[[float, int], None]
PROGRESS_EVERY_NS = 500_000_000


@dataclass
class AsyncRun:
    """One asynchronous run: every request's host-clock latency and the wall time of all."""

    latencies_ns: list[int]  # submit -> completion callback, per request, in completion order
    wall_ns: int  # first submit -> last completion (after wait_all)
    in_flight: int  # how many requests the pool held
    errors: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.latencies_ns)


class RequestQueue(Protocol):
    """A runtime's pool of requests, shaped like OpenVINO's AsyncInferQueue."""

    size: int

    def set_callback(self, callback: Callable[[Any, str | None], None]) -> None:
        """``callback(userdata, error)`` runs when a request completes (on any thread)."""
        ...

    def start(self, userdata: Any) -> None:
        """Submit one request on the prepared inputs; blocks only while no request is idle."""
        ...

    def wait_idle(self) -> None:
        """Block until at least one request is idle, so a submit that follows does not wait."""
        ...

    def wait_all(self) -> None:
        """Block until every submitted request has completed."""
        ...


@runtime_checkable
class AsyncSession(Protocol):
    """A Session that can also keep a pool of requests in flight."""

    def prefers_async(self) -> bool:
        """True when the runtime was configured for throughput (e.g. OpenVINO hint THROUGHPUT)."""
        ...

    def run_async(self, feeds: dict[str, np.ndarray], min_count: int, min_duration_s: float,
                  progress: AsyncProgress | None = None) -> AsyncRun:
        """Keep the pool full until both minima are reached; return after every request completed."""
        ...


def drive(queue: RequestQueue, min_count: int, min_duration_s: float,
          progress: AsyncProgress | None = None) -> AsyncRun:
    """Submit requests until ``min_count`` and ``min_duration_s`` are reached, then wait for all."""
    clock = time.perf_counter_ns
    latencies: list[int] = []
    errors: list[str] = []
    lock = threading.Lock()

    def done(submitted_ns: int, error: str | None) -> None:
        now = clock()
        with lock:
            if error:
                errors.append(error)
            else:
                latencies.append(now - submitted_ns)

    queue.set_callback(done)
    submitted = 0
    start = clock()
    deadline = start + int(min_duration_s * 1e9)
    next_report = start + PROGRESS_EVERY_NS
    while True:
        queue.wait_idle()
        now = clock()
        if submitted >= min_count and now >= deadline:
            break
        queue.start(now)
        submitted += 1
        if progress is not None and now >= next_report:
            next_report = now + PROGRESS_EVERY_NS
            progress((now - start) / 1e9, len(latencies))
    queue.wait_all()
    wall_ns = clock() - start
    if errors:
        raise MeasurementError(f"{len(errors)} of {submitted} asynchronous requests failed; first: {errors[0]}")
    if len(latencies) != submitted:
        raise MeasurementError(f"{submitted} requests submitted but {len(latencies)} completed before wait_all "
                               f"returned: the runtime's queue did not wait for its requests")
    return AsyncRun(latencies_ns=latencies, wall_ns=wall_ns, in_flight=queue.size)


class StreamSlot(Protocol):
    """One request on its own device stream (a CUDA stream with its buffers): enqueue, then wait."""

    def submit(self, feeds: dict[str, np.ndarray] | None) -> None:
        """Enqueue a request (None: on the inputs already in place) and return without waiting."""
        ...

    def complete(self) -> Any:
        """Wait for the request enqueued last; what it measured (passed to ``on_complete``)."""
        ...


class OldestFirstQueue:
    """Stream slots as a RequestQueue: requests complete in the order they were enqueued, and the oldest
    is waited for when no slot is idle (a stream's work runs in order, so the oldest finishes first)."""

    def __init__(self, slots: Sequence[StreamSlot], on_complete: Callable[[Any], None] = lambda measured: None,
                 errors: tuple[type[BaseException], ...] = (Exception,)):
        self.size = len(slots)
        self._idle: deque[StreamSlot] = deque(slots)
        self._busy: deque[tuple[StreamSlot, Any]] = deque()
        self._on_complete = on_complete
        self._errors = errors
        self._callback: Callable[[Any, str | None], None] = lambda userdata, error: None

    def set_callback(self, callback: Callable[[Any, str | None], None]) -> None:
        self._callback = callback

    def start(self, userdata: Any) -> None:
        slot = self._idle.popleft()
        slot.submit(None)
        self._busy.append((slot, userdata))

    def _finish_oldest(self) -> None:
        slot, userdata = self._busy.popleft()
        error = None
        try:
            self._on_complete(slot.complete())
        except self._errors as exc:  # the runtime's failure, reported through drive's error list
            error = f"{type(exc).__name__}: {exc}"
        self._idle.append(slot)
        self._callback(userdata, error)

    def wait_idle(self) -> None:
        if not self._idle:
            self._finish_oldest()

    def wait_all(self) -> None:
        while self._busy:
            self._finish_oldest()


class ThreadSlot:
    """A blocking request (one that returns when its outputs are on the host) as a StreamSlot: each slot runs
    its requests on a host thread of its own, so N slots keep N requests in flight wherever the runtime
    releases the GIL while it runs and may be called from several threads (onnxruntime's run does both).
    Use it as a context manager: leaving it waits for the thread to end."""

    def __init__(self, run: Callable[[dict[str, np.ndarray]], Any], feeds: dict[str, np.ndarray]):
        self._run, self._feeds = run, feeds
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="edgeai-slot")
        self._pending: Future[Any] | None = None

    def submit(self, feeds: dict[str, np.ndarray] | None) -> None:
        self._pending = self._worker.submit(self._run, self._feeds if feeds is None else feeds)

    def complete(self) -> Any:
        pending, self._pending = self._pending, None
        if pending is None:
            raise MeasurementError("a request slot was waited for with nothing submitted")
        return pending.result()

    def __enter__(self) -> ThreadSlot:
        return self

    def __exit__(self, *exc: object) -> None:
        self._worker.shutdown(wait=True)
