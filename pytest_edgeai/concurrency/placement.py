"""Dynamic placement: send each request to the device with the shortest queue, against each device alone.

A closed-loop client keeps ``in_flight`` requests outstanding; each new one goes to the worker
(a loaded session on some device) with the fewest requests queued or running, ties broken at
random (seeded). A faster device drains its queue sooner and so receives more requests. A
worker whose session raises is taken out of rotation with its error kept. As one study
(:func:`measure_placement`): load the model on every device, warm each, then compare the
dispatcher over all of them with each alone.
"""

from __future__ import annotations

import queue
import random
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..results.record import metric
from .tenants import Metrics, backend_load, default_feeds, describe_error

if TYPE_CHECKING:
    import numpy as np

    from ..backends.base import Session
    from ..devices import Device
    from ..models.model import Model

_STOP = object()


@dataclass
class Worker:
    """One device's session and the inputs it runs."""

    name: str
    session: Session
    feeds: dict[str, np.ndarray]


@dataclass
class DispatchResult:
    """Requests each worker served over one run, and the aggregate rate."""

    workers: list[str]
    served: list[int]
    wall_s: float
    errors: dict[str, str] = field(default_factory=dict)
    latencies_ns: list[list[int]] = field(default_factory=list)

    @property
    def completed(self) -> int:
        return sum(self.served)

    @property
    def throughput_ips(self) -> float:
        return self.completed / self.wall_s if self.wall_s > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"workers": self.workers, "served": self.served, "wall_s": self.wall_s,
                "throughput_ips": self.throughput_ips, "errors": dict(self.errors)}


class Dispatcher:
    """Join-the-shortest-queue over several workers, one thread per worker."""

    def __init__(self, workers: list[Worker], in_flight: int | None = None, seed: int = 0, timeout_s: float = 60.0):
        if not workers:
            raise ValueError("a dispatcher needs at least one worker")
        self.workers = workers
        self.in_flight = in_flight or 2 * len(workers)
        self.timeout_s = timeout_s
        self._rng = random.Random(seed)

    def run(self, duration_s: float) -> DispatchResult:
        n = len(self.workers)
        queues: list[queue.Queue[object]] = [queue.Queue() for _ in range(n)]
        pending = [0] * n
        served = [0] * n
        latencies: list[list[int]] = [[] for _ in range(n)]
        errors: dict[str, str] = {}
        dead: set[int] = set()
        lock = threading.Lock()
        permits = threading.Semaphore(self.in_flight)

        def serve(i: int) -> None:
            worker = self.workers[i]
            while queues[i].get() is not _STOP:
                t0 = time.monotonic_ns()
                try:
                    worker.session.run(worker.feeds)
                except Exception as exc:
                    with lock:
                        errors[worker.name] = describe_error(exc)
                        dead.add(i)
                        pending[i] -= 1
                    permits.release()
                    continue
                t1 = time.monotonic_ns()
                with lock:
                    pending[i] -= 1
                    served[i] += 1
                    latencies[i].append(t1 - t0)
                permits.release()

        threads = [threading.Thread(target=serve, args=(i,), daemon=True, name=f"edgeai-dispatch-{i}")
                   for i in range(n)]
        for t in threads:
            t.start()
        start = time.monotonic()
        deadline = start + duration_s
        while time.monotonic() < deadline:
            if not permits.acquire(timeout=self.timeout_s):
                errors["dispatcher"] = f"no request completed within {self.timeout_s:g} s"
                break
            with lock:
                alive = [i for i in range(n) if i not in dead]
                if not alive:
                    break
                shortest = min(pending[i] for i in alive)
                target = self._rng.choice([i for i in alive if pending[i] == shortest])
                pending[target] += 1
            queues[target].put(True)
        for q in queues:
            q.put(_STOP)
        end = time.monotonic() + self.timeout_s
        for i, t in enumerate(threads):
            t.join(max(0.0, end - time.monotonic()))
            if t.is_alive():
                errors[self.workers[i].name] = f"hung: still running {self.timeout_s:g} s after the run ended"
        wall = time.monotonic() - start
        return DispatchResult([w.name for w in self.workers], served, wall, errors, latencies)


@dataclass
class PlacementResult:
    """Every worker alone, then all of them behind the dispatcher."""

    alone: list[DispatchResult]
    together: DispatchResult
    together_first: bool = False  # the order this round was timed in (compare_placement)

    @property
    def best_single(self) -> DispatchResult:
        return max(self.alone, key=lambda r: r.throughput_ips)

    @property
    def speedup(self) -> float | None:
        best = self.best_single.throughput_ips
        return self.together.throughput_ips / best if best > 0 else None

    def to_dict(self) -> dict[str, Any]:
        return {"alone": [r.to_dict() for r in self.alone], "together": self.together.to_dict(),
                "best_single": self.best_single.workers[0], "speedup": self.speedup,
                "order": "together, then each alone" if self.together_first else "each alone, then together"}


def compare_placement(workers: list[Worker], duration_s: float, in_flight: int | None = None,
                      timeout_s: float = 60.0, together_first: bool = False) -> PlacementResult:
    """Aggregate throughput of the dispatcher over all workers against each worker alone. ``together_first``
    reverses the order (all together, then each alone), so rounds that alternate it (A B, B A, ...) cancel a
    drift of the machine within a round instead of biasing every round's ratio the same way."""
    def alone() -> list[DispatchResult]:
        return [Dispatcher([w], in_flight=in_flight, timeout_s=timeout_s).run(duration_s) for w in workers]

    def together() -> DispatchResult:
        return Dispatcher(workers, in_flight=in_flight, timeout_s=timeout_s).run(duration_s)

    if together_first:
        both = together()
        return PlacementResult(alone(), both, together_first=True)
    return PlacementResult(alone(), together())



def measure_placement(model: Model, devices: list[Device], duration_s: float, timeout_s: float,
                      together_first: bool = False) -> PlacementResult:
    """Each device alone, then all together (the other way round with ``together_first``); every session is
    closed at the end, whatever happened."""
    sessions = []
    try:
        workers = []
        for device in devices:
            session = backend_load(model, device)
            sessions.append(session)
            feeds = default_feeds(session, model)
            session.run(feeds)  # first inference (lazy initialisation) outside the timed runs
            workers.append(Worker(device.name, session, feeds))
        return compare_placement(workers, duration_s, timeout_s=timeout_s, together_first=together_first)
    finally:
        for session in sessions:
            session.close()



def placement_metrics(result: PlacementResult) -> Metrics:
    best = result.best_single
    how = f"shortest-queue dispatch over {', '.join(result.together.workers)}"
    return {
        "throughput_ips": metric(result.together.throughput_ips, "inferences/s", how),
        "best_single_ips": metric(best.throughput_ips, "inferences/s",
                                  f"{best.workers[0]} alone through the same dispatcher"),
        "placement_speedup": metric(result.speedup, "x", f"{how} / best single device", method="derived"),
    }
