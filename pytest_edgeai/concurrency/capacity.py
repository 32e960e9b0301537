"""Memory: how much a tenant takes and how much the device has, and how many tenants fit: predicted from a
tenant's footprint, observed by loading until memory (or the budget) runs out.

Probes behind one protocol: process RSS for CPU runtimes, NVML for NVIDIA GPUs (pynvml imported
lazily), host memory in use for Jetsons (GPU and host share it). The EdgeTPU's on-chip
parameter cache (8 MiB) cannot be read, so there the footprint is the compiled int8 model's parameter
memory from edgetpu_compiler's report (backends.litert.edgetpu_parameter_bytes), labelled an estimate.

The loads run in a child process (lab.child) so that running out of memory ends one step of the
probe, never the pytest session. ``address_space_mb`` caps the child's address space
(RLIMIT_AS, relative to what it uses once started) so a test can provoke a real allocation
failure cheaply. The first tenant's footprint includes the runtime's one-off cost (its
environment, thread pools); the second tenant's is the marginal cost of one more, so:
    overhead  = footprint(1) - footprint(2)
    predicted = floor((memory - overhead) / footprint(2))
and the observed maximum is the largest N whose memory in use stays within the budget.
"""

from __future__ import annotations

import math
import resource
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..energy.meters.nvml import cuda_index, nvml_handle
from ..errors import DeviceUnavailable
from ..lab import child
from ..results.record import metric
from .tenants import Loader, Metrics, backend_load, default_feeds, describe_error

if TYPE_CHECKING:
    from ..devices import Device
    from ..models.model import Model

MIB = 1 << 20


def proc_kib(path: str, key: str) -> int | None:
    """A "Key:   123 kB" line of a /proc file, in KiB; None when it cannot be read."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


class MemoryProbe(Protocol):
    """Bytes in use on the device (or by this process on it); ``source`` names how."""

    source: str

    def used_bytes(self) -> int: ...


class RssProbe:
    """Resident set of this process: what CPU runtimes' sessions cost."""

    source = "process RSS (/proc/self/status VmRSS)"

    def used_bytes(self) -> int:
        kib = proc_kib("/proc/self/status", "VmRSS")
        if kib is not None:
            return kib * 1024
        # no /proc (macOS): the peak, which only grows, still bounds each step
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class HostUsedProbe:
    """Host memory in use (MemTotal - MemAvailable): a Jetson's GPU allocates from it."""

    source = "host memory in use (/proc/meminfo MemTotal - MemAvailable)"

    def used_bytes(self) -> int:
        total = proc_kib("/proc/meminfo", "MemTotal")
        free = proc_kib("/proc/meminfo", "MemAvailable")
        if total is None or free is None:
            raise DeviceUnavailable("/proc/meminfo has no MemTotal/MemAvailable: cannot measure host memory")
        return (total - free) * 1024


class NvmlProbe:
    """GPU memory in use on the NVIDIA GPU a device runs on, from NVML (matched by PCI bus id, not by
    CUDA index: CUDA's order is not NVML's)."""

    def __init__(self, device: Device):
        self.device = device
        self.source = f"NVML memory used, CUDA device {cuda_index(device)}"

    def _handle(self) -> tuple[Any, Any]:
        try:
            import pynvml
        except ImportError:
            raise DeviceUnavailable("pynvml is not importable: pip install nvidia-ml-py") from None
        pynvml.nvmlInit()
        return pynvml, nvml_handle(pynvml, self.device)[0]

    def used_bytes(self) -> int:
        pynvml, handle = self._handle()
        return int(pynvml.nvmlDeviceGetMemoryInfo(handle).used)

    def total_free_bytes(self) -> int:
        pynvml, handle = self._handle()
        return int(pynvml.nvmlDeviceGetMemoryInfo(handle).free)


def probe_for(device: Device) -> MemoryProbe:
    """The probe that sees a tenant's memory on this kind of device."""
    if device.kind == "gpu":
        return NvmlProbe(device)
    if device.kind == "jetson":
        return HostUsedProbe()
    return RssProbe()


def available_bytes(device: Device) -> tuple[int, str]:
    """Memory the device offers to models, and where the figure comes from."""
    if device.memory_mb:
        return int(device.memory_mb * MIB), f"devices.{device.name}.memory_mb"
    if device.kind == "gpu":
        probe = NvmlProbe(device)
        return probe.total_free_bytes(), probe.source.replace("used", "free")
    kib = proc_kib("/proc/meminfo", "MemAvailable")
    if kib is None:
        raise DeviceUnavailable(f"{device.name}: no memory_mb in devices.toml and no /proc/meminfo to read")
    return kib * 1024, "host MemAvailable (/proc/meminfo)"



@dataclass(frozen=True)
class CapacityPlan:
    """Where the probe stops: a tenant count, a memory budget, an optional address-space cap."""

    max_tenants: int
    budget_bytes: int
    step_timeout_s: float = 60.0
    address_space_mb: float | None = None  # extra address space the child may map (RLIMIT_AS)


@dataclass
class CapacityStep:
    tenants: int
    used_bytes: int | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _limit_address_space(extra_mb: float) -> None:
    import resource

    current = (proc_kib("/proc/self/status", "VmSize") or 0) * 1024
    limit = current + int(extra_mb * MIB)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _capacity_main(conn: Connection, model: Model, device: Device, loader: Loader, plan: CapacityPlan) -> None:
    sessions = []  # held until the end: each one occupies its memory
    try:
        probe = probe_for(device)
        if plan.address_space_mb is not None:
            _limit_address_space(plan.address_space_mb)
        baseline = probe.used_bytes()
        conn.send(("baseline", baseline, probe.source))
        for n in range(1, plan.max_tenants + 1):
            try:
                session = loader(model, device)
                sessions.append(session)
                session.run(default_feeds(session, model))
            except (Exception, MemoryError) as exc:
                conn.send(("failed", n, describe_error(exc)))
                return
            used = probe.used_bytes()
            conn.send(("loaded", n, used))
            if used - baseline > plan.budget_bytes:
                return
    except Exception as exc:
        conn.send(("failed", len(sessions) + 1, describe_error(exc)))
    finally:
        conn.send(("end",))
        for session in sessions:
            session.close()


@dataclass
class CapacityResult:
    """The memory line: per-tenant footprints, predicted and observed maximum tenants."""

    plan: CapacityPlan
    available_bytes: int
    available_source: str
    probe_source: str = ""
    baseline_bytes: int | None = None
    steps: list[CapacityStep] = field(default_factory=list)
    stopped: str = ""

    def _used(self) -> list[int]:
        """Memory in use after each tenant that loaded (a loaded step always carries its reading)."""
        return [s.used_bytes for s in self.steps if s.ok and s.used_bytes is not None]

    def footprints(self) -> list[int]:
        """Each tenant's memory: what loading it (and running it once) added."""
        if self.baseline_bytes is None:  # the child failed before its first reading
            return []
        used = [self.baseline_bytes, *self._used()]
        return [b - a for a, b in zip(used, used[1:])]

    @property
    def footprint_bytes(self) -> int | None:
        """The marginal footprint: tenant 2's (tenant 1 carries the runtime's one-off cost)."""
        fp = self.footprints()
        return fp[1] if len(fp) > 1 else (fp[0] if fp else None)

    @property
    def overhead_bytes(self) -> int:
        fp = self.footprints()
        return max(0, fp[0] - fp[1]) if len(fp) > 1 else 0

    def predicted(self, memory_bytes: int) -> int | None:
        """Tenants that fit in ``memory_bytes`` by the footprint; None when it is not measurable."""
        fp = self.footprint_bytes
        if not fp or fp <= 0:
            return None
        return max(0, math.floor((memory_bytes - self.overhead_bytes) / fp))

    @property
    def predicted_device_max(self) -> int | None:
        return self.predicted(self.available_bytes)

    @property
    def predicted_budget_max(self) -> int | None:
        """The prediction for the probe's own bounds (its memory budget and tenant cap)."""
        p = self.predicted(self.plan.budget_bytes)
        return None if p is None else min(p, self.plan.max_tenants)

    @property
    def observed_max(self) -> int:
        """Tenants loaded and run whose memory in use stayed within the budget."""
        baseline = self.baseline_bytes
        if baseline is None:
            return 0
        return sum(1 for used in self._used() if used - baseline <= self.plan.budget_bytes)

    @property
    def prediction_error(self) -> float | None:
        """|predicted - observed| / observed, both under the probe's bounds."""
        p, o = self.predicted_budget_max, self.observed_max
        if p is None or o == 0:
            return None
        return abs(p - o) / o

    def to_dict(self) -> dict[str, Any]:
        return {
            "available_bytes": self.available_bytes, "available_source": self.available_source,
            "probe": self.probe_source, "baseline_bytes": self.baseline_bytes,
            "budget_bytes": self.plan.budget_bytes, "max_tenants": self.plan.max_tenants,
            "address_space_mb": self.plan.address_space_mb,
            "steps": [{"tenants": s.tenants, "used_bytes": s.used_bytes, "ok": s.ok, "error": s.error}
                      for s in self.steps],
            "footprints_bytes": self.footprints(), "footprint_bytes": self.footprint_bytes,
            "overhead_bytes": self.overhead_bytes,
            "predicted_device_max": self.predicted_device_max,
            "predicted_budget_max": self.predicted_budget_max,
            "observed_max": self.observed_max, "prediction_error": self.prediction_error,
            "stopped": self.stopped,
        }


def probe_capacity(model: Model, device: Device, plan: CapacityPlan, available: tuple[int, str],
                   loader: Loader = backend_load) -> CapacityResult:
    """Load tenants one by one in a child process until the budget, the cap or a failure."""
    result = CapacityResult(plan, *available)
    proc = child.start(_capacity_main, model, device, loader, plan, name="capacity")
    parent = proc.conn
    try:
        while True:
            next_n = len(result.steps) + 1
            if not parent.poll(plan.step_timeout_s):
                result.steps.append(CapacityStep(next_n, error=f"hung: no answer within {plan.step_timeout_s:g} s"))
                break
            try:
                message = parent.recv()
            except EOFError:
                proc.join(timeout=5)
                result.steps.append(CapacityStep(next_n, error=f"the child process died while loading tenant "
                                                                f"{next_n} (exit code {proc.exitcode})"))
                break
            kind = message[0]
            if kind == "baseline":
                result.baseline_bytes, result.probe_source = message[1], message[2]
            elif kind == "loaded":
                result.steps.append(CapacityStep(message[1], used_bytes=message[2]))
            elif kind == "failed":
                result.steps.append(CapacityStep(message[1], error=message[2]))
            elif kind == "end":
                break
    finally:
        proc.join(timeout=5)
        proc.close()
    result.stopped = _why_stopped(result)
    return result


def _why_stopped(result: CapacityResult) -> str:
    last = result.steps[-1] if result.steps else None
    if last is None:
        return "nothing was loaded"
    if not last.ok:
        return f"tenant {last.tenants} failed: {last.error}"
    if (result.baseline_bytes is not None and last.used_bytes is not None
            and last.used_bytes - result.baseline_bytes > result.plan.budget_bytes):
        return f"tenant {last.tenants} took memory in use past the budget of {result.plan.budget_bytes / MIB:.0f} MiB"
    return f"reached the cap of {result.plan.max_tenants} tenants"



def capacity_metrics(result: CapacityResult) -> Metrics:
    """The memory line: footprint, predicted and observed maximum tenants."""
    how = f"loads in a child process, {result.probe_source}; {result.stopped}"
    fp = result.footprint_bytes
    budget = f"budget {result.plan.budget_bytes / MIB:.0f} MiB, cap {result.plan.max_tenants} tenants"
    return {
        "tenant_footprint_mb": metric(None if fp is None else fp / MIB, "MiB",
                                      f"memory added by the second tenant (load + one run); {how}"),
        "runtime_overhead_mb": metric(result.overhead_bytes / MIB, "MiB",
                                      f"the first tenant's extra over the second (runtime one-off); {how}"),
        "available_mb": metric(result.available_bytes / MIB, "MiB", result.available_source),
        "predicted_max_tenants": metric(result.predicted_device_max, "tenants",
                                        f"(available - overhead) / footprint, available from "
                                        f"{result.available_source}", method="predicted"),
        "predicted_budget_tenants": metric(result.predicted_budget_max, "tenants",
                                           f"(budget - overhead) / footprint; {budget}", method="predicted"),
        "observed_max_tenants": metric(result.observed_max, "tenants",
                                       f"tenants loaded and run within the budget; {budget}; {how}"),
        "prediction_error": metric(result.prediction_error, "fraction",
                                   "|predicted - observed| / observed, within the budget", method="derived"),
    }
