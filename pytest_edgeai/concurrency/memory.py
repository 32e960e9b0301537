"""How much memory a tenant takes and how much the device has.

Probes behind one protocol: process RSS for CPU runtimes, NVML for NVIDIA GPUs (pynvml imported
lazily), host memory in use for Jetsons (GPU and host share it). The EdgeTPU's on-chip
parameter cache (8 MiB) cannot be read, so there the footprint is the compiled int8 model's parameter
memory from edgetpu_compiler's report (backends.litert.edgetpu_parameter_bytes), labelled an estimate.
"""

from __future__ import annotations

import resource
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ..errors import DeviceUnavailable

if TYPE_CHECKING:
    from ..devices import Device

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
    """GPU memory in use on one NVIDIA GPU, from NVML."""

    def __init__(self, index: int = 0):
        self.index = index
        self.source = f"NVML memory used, GPU {index}"

    def _handle(self):
        try:
            import pynvml
        except ImportError:
            raise DeviceUnavailable("pynvml is not importable: pip install nvidia-ml-py") from None
        pynvml.nvmlInit()
        return pynvml, pynvml.nvmlDeviceGetHandleByIndex(self.index)

    def used_bytes(self) -> int:
        pynvml, handle = self._handle()
        return int(pynvml.nvmlDeviceGetMemoryInfo(handle).used)

    def total_free_bytes(self) -> int:
        pynvml, handle = self._handle()
        return int(pynvml.nvmlDeviceGetMemoryInfo(handle).free)


def gpu_index(device: Device) -> int:
    """The CUDA device a session lands on (onnxruntime's provider_options device_id)."""
    opts = device.options.get("provider_options", {}).get("CUDAExecutionProvider", {})
    return int(opts.get("device_id", device.options.get("device_id", 0)))


def probe_for(device: Device) -> MemoryProbe:
    """The probe that sees a tenant's memory on this kind of device."""
    if device.kind == "gpu":
        return NvmlProbe(gpu_index(device))
    if device.kind == "jetson":
        return HostUsedProbe()
    return RssProbe()


def available_bytes(device: Device) -> tuple[int, str]:
    """Memory the device offers to models, and where the figure comes from."""
    if device.memory_mb:
        return int(device.memory_mb * MIB), f"devices.{device.name}.memory_mb"
    if device.kind == "gpu":
        probe = NvmlProbe(gpu_index(device))
        return probe.total_free_bytes(), probe.source.replace("used", "free")
    kib = proc_kib("/proc/meminfo", "MemAvailable")
    if kib is None:
        raise DeviceUnavailable(f"{device.name}: no memory_mb in devices.toml and no /proc/meminfo to read")
    return kib * 1024, "host MemAvailable (/proc/meminfo)"

