"""NVIDIA GPU board energy through NVML (the ``nvidia-ml-py`` package, imported lazily).

Volta and later expose a total-energy counter in millijoules (updated every 20-100 ms); older
boards only report power in milliwatts, which is sampled on the thread and integrated. On
Ampere and later that power figure is a one-second moving average, which the readings say.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import MeterUnavailable
from .integrate import SensorInfo
from .options import Option
from .sampler import SampledMeter

if TYPE_CHECKING:
    from ..devices import Device

ENERGY_UPDATE_S = 0.1  # the counter updates every 20-100 ms; the slower bound is the safe one
POWER_AVERAGE_S = 1.0
POWER_WARNING = ("power from nvmlDeviceGetPowerUsage (this GPU has no energy counter): on recent GPUs "
                 "(Ampere and later) it is an average over about 1 s, so windows shorter than several "
                 "seconds smear the workload's power with what came before and after")


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
    OPTIONS = (Option("index", "integer", 0, minimum=0, help="NVML device index"),
               Option("mode", "string", "auto", choices=("auto", "energy", "power"),
                      help="energy counter, sampled power, or the counter when supported"))

    def __init__(self, device: Device, rate_hz: float | None = None, index: int = 0, mode: str = "auto"):
        super().__init__(0.0)
        nv = self._nv = _pynvml()
        try:
            nv.nvmlInit()
        except nv.NVMLError as exc:
            raise MeterUnavailable(f"NVML could not start ({exc}): no NVIDIA driver, or no GPU visible") from exc
        self._initialised = True
        try:
            self._handle = nv.nvmlDeviceGetHandleByIndex(index)
            name = nv.nvmlDeviceGetName(self._handle)
            self.kind = self._pick_kind(mode, index)
        except BaseException:
            self.close()
            raise
        if rate_hz is None:
            rate_hz = 0.0 if self.kind == "joules" else 10.0
        self.rate_hz = rate_hz
        name = name.decode() if isinstance(name, bytes) else str(name)
        self.info = SensorInfo(source=f"nvml {'energy counter' if self.kind == 'joules' else 'power'}",
                               covers=f"GPU {index} board ({name})",
                               update_period_s=ENERGY_UPDATE_S if self.kind == "joules" else POWER_AVERAGE_S)

    def _pick_kind(self, mode: str, index: int) -> str:
        nv = self._nv
        if mode in ("auto", "energy"):
            try:
                nv.nvmlDeviceGetTotalEnergyConsumption(self._handle)
                return "joules"
            except nv.NVMLError_NotSupported as exc:
                if mode == "energy":
                    raise MeterUnavailable(f"GPU {index} has no NVML energy counter (needs Volta or later); "
                                           f"use mode = \"power\"") from exc
        try:
            nv.nvmlDeviceGetPowerUsage(self._handle)
        except nv.NVMLError as exc:
            raise MeterUnavailable(f"GPU {index} reports neither energy nor power through NVML: {exc}") from exc
        return "watts"

    def _read(self) -> float:
        if self.kind == "joules":
            return self._nv.nvmlDeviceGetTotalEnergyConsumption(self._handle) / 1e3
        return self._nv.nvmlDeviceGetPowerUsage(self._handle) / 1e3

    def _warnings(self) -> list[str]:
        return [POWER_WARNING] if self.kind == "watts" else []

    def close(self) -> None:
        try:
            super().close()
        finally:
            if getattr(self, "_initialised", False):
                self._initialised = False
                self._nv.nvmlShutdown()
