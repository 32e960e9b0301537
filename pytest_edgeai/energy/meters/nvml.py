"""NVIDIA GPU board energy through NVML (the ``nvidia-ml-py`` package, imported lazily).

Volta and later expose a total-energy counter in millijoules (updated every 20-100 ms); older
boards only report power in milliwatts, which is sampled on the thread and integrated. On
Ampere and later that power figure is a one-second moving average, which the readings say.

Which GPU: CUDA numbers devices fastest first (unless CUDA_DEVICE_ORDER=PCI_BUS_ID) and after
CUDA_VISIBLE_DEVICES; NVML numbers them in PCI order and ignores that variable. So a CUDA device
index is never used as an NVML index: it is mapped through its PCI bus id (NVML API reference,
nvmlDeviceGetHandleByPciBusId_v2; CUDA Runtime API, cudaDeviceGetPCIBusId).
"""

from __future__ import annotations

import functools
import importlib
import os
from typing import TYPE_CHECKING, Any, Literal

from ...errors import MeterUnavailable
from ...keys import Key
from ..reading import SensorInfo
from ..sampling import SampledMeter

if TYPE_CHECKING:
    from ...devices import Device

ENERGY_UPDATE_S = 0.1  # the counter updates every 20-100 ms; the slower bound is the safe one
POWER_AVERAGE_S = 1.0
POWER_WARNING = ("power from nvmlDeviceGetPowerUsage (this GPU has no energy counter): on recent GPUs "
                 "(Ampere and later) it is an average over about 1 s, so windows shorter than several "
                 "seconds smear the workload's power with what came before and after")


def cuda_index(device: Device) -> int:
    """The CUDA device index the device's backend runs on (TensorRT device_id, torch cuda:N,
    onnxruntime's CUDA provider device_id)."""
    opts = device.options
    provider = opts.get("provider_options", {})
    cuda_ep = provider.get("CUDAExecutionProvider", {}) if isinstance(provider, dict) else {}
    if isinstance(cuda_ep, dict) and "device_id" in cuda_ep:
        return int(cuda_ep["device_id"])
    dev = opts.get("device")
    if isinstance(dev, str) and dev.startswith("cuda:") and dev[5:].isdigit():
        return int(dev[5:])
    return int(opts.get("device_id", opts.get("gpu_index", 0)))


@functools.cache
def cuda_pci_bus_id(index: int) -> tuple[str | None, str]:
    """(PCI bus id, how it was found) of CUDA device ``index``; (None, why not) without a CUDA binding."""
    for name in ("cuda.bindings.runtime", "cuda.cudart"):  # cuda-python 12.6+ / 13, and <= 12.x
        try:
            rt = importlib.import_module(name)
        except ImportError:
            continue
        err, bus = rt.cudaDeviceGetPCIBusId(16, index)
        if int(err) == 0:
            text = bus.decode(errors="replace") if isinstance(bus, bytes) else str(bus)
            return text.rstrip("\x00").strip(), "cudaDeviceGetPCIBusId"
    try:
        torch = importlib.import_module("torch")
        if torch.cuda.is_available() and index < torch.cuda.device_count():
            p = torch.cuda.get_device_properties(index)
            return f"{p.pci_domain_id:08x}:{p.pci_bus_id:02x}:{p.pci_device_id:02x}.0", "torch device properties"
    except (ImportError, AttributeError, RuntimeError):
        pass
    return None, "neither cuda-python nor a CUDA torch is importable to ask CUDA for the PCI bus id"


def nvml_handle(nv: Any, device: Device, pci_bus_id: str = "") -> tuple[Any, str]:
    """The NVML handle of the GPU ``device`` runs on, and how it was matched (for the record)."""
    if pci_bus_id:
        return nv.nvmlDeviceGetHandleByPciBusId(pci_bus_id), f"PCI bus id {pci_bus_id} (configured)"
    index = cuda_index(device)
    bus, how = cuda_pci_bus_id(index)
    if bus:
        return nv.nvmlDeviceGetHandleByPciBusId(bus), f"CUDA device {index} = PCI bus id {bus} ({how})"
    same_order = os.environ.get("CUDA_DEVICE_ORDER") == "PCI_BUS_ID" and not os.environ.get("CUDA_VISIBLE_DEVICES")
    if same_order or nv.nvmlDeviceGetCount() == 1:
        return nv.nvmlDeviceGetHandleByIndex(index), f"NVML index {index} (same order as CUDA here)"
    raise MeterUnavailable(f"cannot tell which NVML GPU is CUDA device {index}: {how}; CUDA's order is not "
                           f"NVML's PCI order: set the meter's pci_bus_id (nvidia-smi --query-gpu=pci.bus_id "
                           f"--format=csv) or install cuda-python")


def _pynvml() -> Any:
    try:
        import pynvml
    except ImportError as exc:
        raise MeterUnavailable("NVML meter needs the nvidia-ml-py package: pip install nvidia-ml-py") from exc
    return pynvml


class NvmlMeter(SampledMeter):
    """Energy of one GPU board: the energy counter where supported, sampled power otherwise."""

    # nvmlDeviceGetTotalEnergyConsumption costs about 3.6 ms of CPU a call on an H100 host; sampled
    # at 10 Hz it took 7% of a 16-thread onnxruntime workload (benchmarks/bench_meter_overhead.py).
    # The counter neither wraps nor needs sampling, so by default it is read only at the window's
    # edges; the power query is cheap (0.05 ms) and is sampled at 10 Hz. rate_hz overrides both.
    DEFAULT_RATE_HZ = None
    OPTIONS = (Key("pci_bus_id", "string", "", help="the GPU's PCI bus id (default: the one the device's "
                                                        "CUDA index maps to)"),
               Key("mode", "string", "auto", choices=("auto", "energy", "power"),
                      help="energy counter, sampled power, or the counter when supported"))

    def __init__(self, device: Device, rate_hz: float | None = None, pci_bus_id: str = "", mode: str = "auto"):
        super().__init__(0.0)
        nv = self._nv = _pynvml()
        try:
            nv.nvmlInit()
        except nv.NVMLError as exc:
            raise MeterUnavailable(f"NVML could not start ({exc}): no NVIDIA driver, or no GPU visible") from exc
        self._initialised = True
        try:
            self._handle, matched = nvml_handle(nv, device, pci_bus_id)
            name = nv.nvmlDeviceGetName(self._handle)
            self.kind = self._pick_kind(mode, matched)
        except BaseException:
            self.close()
            raise
        if rate_hz is None:
            rate_hz = 0.0 if self.kind == "joules" else 10.0
        self.rate_hz = rate_hz
        name = name.decode() if isinstance(name, bytes) else str(name)
        self.info = SensorInfo(source=f"nvml {'energy counter' if self.kind == 'joules' else 'power'}",
                               covers=f"GPU board ({name}), {matched}",
                               update_period_s=ENERGY_UPDATE_S if self.kind == "joules" else POWER_AVERAGE_S)

    def _pick_kind(self, mode: str, gpu: str) -> Literal["watts", "joules"]:
        nv = self._nv
        if mode in ("auto", "energy"):
            try:
                nv.nvmlDeviceGetTotalEnergyConsumption(self._handle)
                return "joules"
            except nv.NVMLError_NotSupported as exc:
                if mode == "energy":
                    raise MeterUnavailable(f"GPU ({gpu}) has no NVML energy counter (needs Volta or later); "
                                           f"use mode = \"power\"") from exc
        try:
            nv.nvmlDeviceGetPowerUsage(self._handle)
        except nv.NVMLError as exc:
            raise MeterUnavailable(f"GPU ({gpu}) reports neither energy nor power through NVML: {exc}") from exc
        return "watts"

    def _read(self) -> float:
        if self.kind == "joules":
            return float(self._nv.nvmlDeviceGetTotalEnergyConsumption(self._handle)) / 1e3
        return float(self._nv.nvmlDeviceGetPowerUsage(self._handle)) / 1e3

    def _warnings(self) -> list[str]:
        return [POWER_WARNING] if self.kind == "watts" else []

    def close(self) -> None:
        try:
            super().close()
        finally:
            if getattr(self, "_initialised", False):
                self._initialised = False
                self._nv.nvmlShutdown()
