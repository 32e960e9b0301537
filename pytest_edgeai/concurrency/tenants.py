"""N tenants on one device over one window: what a tenant is, the loop each one runs, the two ways to run
them (threads of this process, or one child process each), each tenant's thread share, and what a step
of N tenants yields (aggregate throughput, each tenant's percentiles, fairness).

All tenants start together and are measured over one common window: the window opens ``warmup_s``
after every tenant is ready and lasts ``duration_s``; a query counts when it completes inside it.
Tenants keep running until the window closes, so the load is the same from its first to its last
nanosecond. Clocks are ``time.monotonic_ns`` (system-wide on Linux, so tenants in other processes
share it).

Threads: onnxruntime's intra-op pool defaults to one thread per physical core in every session, so N
tenants run N x cores threads. Unless devices.toml pins a positive thread count, each tenant gets
max(1, cores // N). The setting and where it came from go into the record.

- :class:`ThreadRunner` loads tenants here one after another, so a device that refuses another session
  fails at that tenant, with the runtime's reason. A tenant that raises ends with its error; one that is
  still running ``timeout_s`` after the window closed is reported hung (a thread cannot be killed; it is
  a daemon, so it never keeps the session alive, and its session is left open rather than closed under it).
- :class:`ProcessRunner` runs one session per process (started by lab.child), as a runtime that lets one
  process own a device (the EdgeTPU) or a lab's serving setup would have it. Each child loads its model,
  runs it once, says it is ready, waits for the window (sent to every child once all are ready) and sends
  back its latencies. A child that fails sends its reason; one that goes silent past the timeout is killed
  and reported hung.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any, Protocol

from ..backends.base import get_backend
from ..lab import child
from ..measure.inputs import make_feeds
from ..measure.stats import quantile_fields, summarize
from ..results.record import metric

if TYPE_CHECKING:
    import numpy as np

    from ..backends.base import Session
    from ..devices import Device
    from ..models.model import Model

Loader = Callable[["Model", "Device"], "Session"]
Feeder = Callable[["Session"], "dict[str, np.ndarray]"]
Metrics = dict[str, dict[str, Any]]



# The option each backend reads for its per-session CPU thread count.
# (devices.toml documents each; OpenVINO splits cores by streams instead, so it is left to its hint)
THREAD_OPTION: dict[str, str] = {"onnxruntime": "intra_op_num_threads", "litert": "num_threads",
                                 "torch": "num_threads"}


@dataclass(frozen=True)
class ThreadPlan:
    """Threads each tenant's session gets, and why."""

    threads_per_tenant: int | None  # None: the backend has no per-session thread knob we know
    source: str
    cores: int

    def to_dict(self) -> dict[str, object]:
        return {"threads_per_tenant": self.threads_per_tenant, "source": self.source, "cores": self.cores}


def usable_cores() -> int:
    """CPUs this process may run on (affinity), not the host's total."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def plan_threads(device: Device, tenants: int, cores: int | None = None) -> tuple[Device, ThreadPlan]:
    """The device each tenant loads on (thread option set) and the plan to record."""
    cores = cores or usable_cores()
    key = THREAD_OPTION.get(device.backend)
    if key is None:
        return device, ThreadPlan(None, f"{device.backend}: its own default (no per-session thread option known)",
                                  cores)
    configured = device.options.get(key)
    if isinstance(configured, int) and configured > 0:
        return device, ThreadPlan(configured, f"devices.{device.name}.options.{key}", cores)
    per_tenant = max(1, cores // tenants)
    return (replace(device, options={**device.options, key: per_tenant}),
            ThreadPlan(per_tenant, f"max(1, {cores} cores // {tenants} tenants)", cores))


def split_device(device: Device, parts: int, cores: int | None = None) -> list[Device]:
    """One device seen as ``parts`` devices, each with its share of the cores (placement tests)."""
    shared, _ = plan_threads(device, parts, cores)
    return [replace(shared, name=f"{device.name}#{i}") for i in range(parts)]



def jain_index(values: list[float]) -> float:
    """Jain's index (sum x)^2 / (n * sum x^2): 1 when all equal, 1/n when one gets everything."""
    if not values:
        raise ValueError("Jain's index of no tenants is undefined")
    if any(v < 0 for v in values):
        raise ValueError("Jain's index needs non-negative throughputs")
    total = sum(values)
    squares = sum(v * v for v in values)
    if squares == 0:
        return 1.0  # nobody got anything: equally (un)served
    return total * total / (len(values) * squares)


@dataclass(frozen=True)
class Fairness:
    """Each tenant's share of the aggregate and how unequal the shares are."""

    shares: tuple[float, ...]
    jain: float
    min_share: float
    max_share: float

    @property
    def min_max_ratio(self) -> float:
        """The least-served tenant's share over the best-served one's (1 = perfectly even)."""
        return self.min_share / self.max_share if self.max_share > 0 else 1.0

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "shares": list(self.shares), "min_max_ratio": self.min_max_ratio}


def fairness(throughputs: list[float]) -> Fairness:
    """Shares of the aggregate throughput, Jain's index, smallest and largest share."""
    total = sum(throughputs)
    shares = tuple(t / total if total > 0 else 1.0 / len(throughputs) for t in throughputs)
    return Fairness(shares=shares, jain=jain_index(throughputs), min_share=min(shares), max_share=max(shares))



def backend_load(model: Model, device: Device) -> Session:
    """Load through the device's registered backend (picklable: tenants in other processes use it)."""
    return get_backend(device.backend).load(model, device)


def default_feeds(session: Session, model: Model | None = None) -> dict[str, np.ndarray]:
    """Batch-1 inputs matching the session's specs (and the model's input_shapes, if any)."""
    overrides = model.params.get("input_shapes") if model is not None else None
    return make_feeds(session.inputs, 1, overrides=overrides)


@dataclass(frozen=True)
class TenantSpec:
    """One tenant: a model on a device (the device already carries its thread setting)."""

    name: str
    model: Model
    device: Device


@dataclass(frozen=True)
class Window:
    """The common measurement window, and how long past it a tenant may take to return."""

    warmup_s: float
    duration_s: float
    timeout_s: float


@dataclass
class TenantOutcome:
    """What one tenant did inside the window; ``error`` says why it has nothing."""

    name: str
    model: str
    latencies_ns: list[int] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def drive(session: Session, feeds: dict[str, np.ndarray], start_ns: int, end_ns: int) -> list[int]:
    """Run back to back until the window closes; latencies of queries completing inside it."""
    run = session.run
    clock = time.monotonic_ns
    kept: list[int] = []
    while True:
        t0 = clock()
        run(feeds)
        t1 = clock()
        if t1 >= end_ns:
            return kept
        if t1 >= start_ns:
            kept.append(t1 - t0)


def feeds_for(session: Session, spec: TenantSpec, feeder: Feeder | None) -> dict[str, np.ndarray]:
    return feeder(session) if feeder else default_feeds(session, spec.model)


class LoadingRunner:
    """What every runner holds: how tenants are loaded and fed (fakes replace the loader)."""

    def __init__(self, loader: Loader = backend_load, feeder: Feeder | None = None):
        self.loader = loader
        self.feeder = feeder


class TenantRunner(Protocol):
    """Runs N tenants together (threads in this process, or one process each)."""

    mode: str

    def run(self, tenants: list[TenantSpec], window: Window) -> list[TenantOutcome]: ...


@dataclass
class Step:
    """N tenants measured together, or the reason that step failed."""

    tenants: int
    outcomes: list[TenantOutcome]
    window_s: float
    threads: ThreadPlan | None = None
    mode: str = "thread"
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and all(o.ok for o in self.outcomes) and len(self.outcomes) == self.tenants

    @property
    def reason(self) -> str | None:
        if self.error:
            return self.error
        bad = [f"{o.name}: {o.error}" for o in self.outcomes if not o.ok]
        return "; ".join(bad) or None

    def tenant_ips(self) -> list[float]:
        return [len(o.latencies_ns) / self.window_s for o in self.outcomes]

    @property
    def aggregate_ips(self) -> float | None:
        return sum(self.tenant_ips()) if self.ok else None

    def fairness(self) -> Fairness | None:
        return fairness(self.tenant_ips()) if self.ok else None

    def to_dict(self) -> dict[str, Any]:
        """One row of the sweep: aggregate, each tenant's percentiles and share, or the failure."""
        row: dict[str, Any] = {"tenants": self.tenants, "mode": self.mode, "ok": self.ok,
                               "window_s": self.window_s,
                               "threads": self.threads.to_dict() if self.threads else None}
        if not self.ok:
            row["error"] = self.reason
            return row
        fair = self.fairness()
        row["aggregate_ips"] = self.aggregate_ips
        row["fairness"] = fair.to_dict() if fair else None
        row["per_tenant"] = [_tenant_row(o, ips) for o, ips in zip(self.outcomes, self.tenant_ips())]
        return row

    def worst_p90_ms(self) -> float | None:
        if not self.ok or any(not o.latencies_ns for o in self.outcomes):
            return None
        return max(summarize(o.latencies_ns).p90_ms for o in self.outcomes)


def _tenant_row(outcome: TenantOutcome, ips: float) -> dict[str, Any]:
    row: dict[str, Any] = {"name": outcome.name, "model": outcome.model, "throughput_ips": ips,
                           "queries": len(outcome.latencies_ns), "settings": outcome.settings}
    if outcome.latencies_ns:
        s = summarize(outcome.latencies_ns)
        row.update(latency_p50_ms=s.median_ms, latency_p90_ms=s.p90_ms, latency_p99_ms=s.p99_ms,
                   latency_mean_ms=s.mean_ms)
    return row


def run_step(runner: TenantRunner, specs: list[TenantSpec], window: Window,
             plan: ThreadPlan | None) -> Step:
    """Run tenants together as one step; a runner that fails itself fails the step, not the caller."""
    try:
        return Step(len(specs), runner.run(specs, window), window.duration_s, threads=plan, mode=runner.mode)
    except Exception as exc:
        return Step(len(specs), [], window.duration_s, threads=plan, mode=runner.mode,
                    error=f"the {runner.mode} runner failed: {describe_error(exc)}")


def describe_error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__



class ThreadRunner(LoadingRunner):
    """Runs every tenant in its own thread of this process."""

    mode = "thread"

    def run(self, tenants: list[TenantSpec], window: Window) -> list[TenantOutcome]:
        outcomes = [TenantOutcome(t.name, t.model.name) for t in tenants]
        sessions: list[Session] = []
        hung: set[int] = set()
        try:
            feeds = []
            for spec, outcome in zip(tenants, outcomes):
                try:
                    session = self.loader(spec.model, spec.device)
                    sessions.append(session)
                    outcome.settings = session.settings()
                    feed = feeds_for(session, spec, self.feeder)
                    session.run(feed)  # the first inference is excluded, as everywhere
                    feeds.append(feed)
                except Exception as exc:
                    outcome.error = f"load failed: {describe_error(exc)}"
                    for other in outcomes:
                        if other is not outcome and other.ok:
                            other.error = f"not run: {spec.name} could not be loaded"
                    return outcomes
            hung = self._run_threads(sessions, feeds, outcomes, window)
        finally:
            for i, session in enumerate(sessions):
                if i not in hung:
                    session.close()
        return outcomes

    def _run_threads(self, sessions: list[Session], feeds: list[dict[str, np.ndarray]],
                     outcomes: list[TenantOutcome], window: Window) -> set[int]:
        times: list[int] = []

        def open_window() -> None:
            start = time.monotonic_ns() + int(window.warmup_s * 1e9)
            times.extend((start, start + int(window.duration_s * 1e9)))

        barrier = threading.Barrier(len(sessions) + 1, action=open_window)
        deadline_s = window.warmup_s + window.duration_s + window.timeout_s

        def tenant(i: int) -> None:
            try:
                barrier.wait(timeout=window.timeout_s)
                outcomes[i].latencies_ns = drive(sessions[i], feeds[i], times[0], times[1])
            except threading.BrokenBarrierError:
                outcomes[i].error = "the tenants never started together (barrier broken)"
            except Exception as exc:
                outcomes[i].error = f"crashed: {describe_error(exc)}"

        threads = [threading.Thread(target=tenant, args=(i,), name=f"edgeai-tenant-{i}", daemon=True)
                   for i in range(len(sessions))]
        for t in threads:
            t.start()
        barrier.wait(timeout=window.timeout_s)
        end = time.monotonic() + deadline_s
        hung: set[int] = set()
        for i, t in enumerate(threads):
            t.join(max(0.0, end - time.monotonic()))
            if t.is_alive():
                hung.add(i)
                outcomes[i].error = (f"hung: still running {window.timeout_s:g} s after the "
                                     f"measurement window closed")
                outcomes[i].latencies_ns = []
        return hung



def _tenant_main(conn: Connection, spec: TenantSpec, loader: Loader, feeder: Feeder | None) -> None:
    try:
        session = loader(spec.model, spec.device)
        feeds = feeds_for(session, spec, feeder)
        session.run(feeds)
        conn.send(("ready", session.settings()))
        order = conn.recv()  # ("go", start_ns, end_ns) on the host's monotonic clock, or ("stop",)
        if order[0] == "go":
            conn.send(("done", drive(session, feeds, order[1], order[2])))
        session.close()
    except Exception as exc:
        conn.send(("error", describe_error(exc)))


class ProcessRunner(LoadingRunner):
    """Runs every tenant in its own spawned process."""

    mode = "process"

    def run(self, tenants: list[TenantSpec], window: Window) -> list[TenantOutcome]:
        outcomes = [TenantOutcome(t.name, t.model.name) for t in tenants]
        procs: list[child.Child] = []
        try:
            for spec in tenants:
                procs.append(child.start(_tenant_main, spec, self.loader, self.feeder, name=f"tenant-{spec.name}"))
            load_timeout = window.timeout_s
            for outcome, proc in zip(outcomes, procs):
                kind, payload = _receive(proc.conn, load_timeout, "loading")
                if kind != "ready":
                    outcome.error = f"load failed: {payload}"
                    for other in outcomes:
                        if other.ok and other is not outcome:
                            other.error = f"not run: {outcome.name} could not be loaded"
                    return outcomes
                outcome.settings = payload
            start = time.monotonic_ns() + int(window.warmup_s * 1e9)
            for proc in procs:
                proc.conn.send(("go", start, start + int(window.duration_s * 1e9)))
            limit = window.warmup_s + window.duration_s + window.timeout_s
            for outcome, proc in zip(outcomes, procs):
                kind, payload = _receive(proc.conn, limit, "measuring")
                if kind == "done":
                    outcome.latencies_ns = list(payload)
                else:
                    outcome.error = payload if kind == "hung" else f"crashed: {payload}"
            return outcomes
        finally:
            for proc in procs:
                if proc.is_alive():
                    try:
                        proc.conn.send(("stop",))
                    except OSError:
                        pass  # it is going anyway
                proc.join(timeout=1.0)
                proc.close()


def _receive(pipe: Connection, timeout_s: float, doing: str) -> tuple[str, Any]:
    """The child's next message, or why there is none (it died, or it went silent)."""
    if not pipe.poll(timeout_s):
        return "hung", f"hung: no answer within {timeout_s:g} s while {doing}"
    try:
        message: tuple[str, Any] = pipe.recv()  # the tenant sends only (kind, payload) pairs
        return message
    except EOFError:
        return "error", f"the tenant process died while {doing}"



def _worst(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in rows if key in r]
    return max(values) if values else None



def step_metrics(step: Step) -> Metrics:
    """Aggregate throughput, the worst tenant's latency and fairness of a step that succeeded. A worst tenant's
    quantile is a maximum of per-tenant quantiles, each from that tenant's own queries: it rests on no more
    than the fewest queries any tenant ran, so that count is its ``quantile_fields`` (a comparison then says
    "too few samples for p99" of a step of ~150 queries a tenant, rather than judging one or two queries)."""
    how = f"{step.tenants} {step.mode} tenants together over a common {step.window_s:g} s window"
    fair = step.fairness()
    if fair is None:
        raise ValueError(f"a failed step has no metrics ({step.reason})")
    rows = step.to_dict()["per_tenant"]
    fewest = min(len(o.latencies_ns) for o in step.outcomes)
    return {
        "throughput_ips": metric(step.aggregate_ips, "inferences/s", f"sum of tenants' completions / window; {how}"),
        "tenants": metric(step.tenants, "tenants", how),
        "tenant_throughput_min_ips": metric(min(r["throughput_ips"] for r in rows), "inferences/s", how),
        "latency_p50_ms": {**metric(_worst(rows, "latency_p50_ms"), "ms", f"the worst tenant's p50; {how}"),
                           **quantile_fields(0.50, fewest)},
        "latency_p90_ms": {**metric(step.worst_p90_ms(), "ms", f"the worst tenant's p90; {how}"),
                           **quantile_fields(0.90, fewest)},
        "latency_p99_ms": {**metric(_worst(rows, "latency_p99_ms"), "ms", f"the worst tenant's p99; {how}"),
                           **quantile_fields(0.99, fewest)},
        "jain_index": metric(fair.jain, "ratio", f"Jain's fairness index of tenants' throughputs; {how}"),
        "min_share": metric(fair.min_share, "fraction", f"the least-served tenant's share; {how}"),
        "max_share": metric(fair.max_share, "fraction", f"the best-served tenant's share; {how}"),
    }
