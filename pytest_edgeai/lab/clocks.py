"""Clocks and heat around a measurement: CPU governor and frequency, thermal zones, NVIDIA GPU clocks
and throttle reasons (NVML), Jetson power mode (nvpmodel) and pinned clocks (jetson_clocks).

A snapshot is taken before and after each measurement, next to the timed loop, and stored in
``record.extra["clocks"]``; a measurement during which the device was throttled is flagged, because its
figures describe a hot or power-capped device, not the device. The Jetson power state comes from
the Jetson backend's reading of ``nvpmodel -q`` and ``jetson_clocks --show``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..results.environment import cpu_clocks

if TYPE_CHECKING:
    from ..devices import Device

MAX_THERMAL_ZONES = 16
# A CPU measurement that ends with cpu0 below this fraction of its maximum clock ran throttled
# (thermal or power capping) or under a power-saving governor: either way the figure is low.
CPU_MIN_CLOCK_RATIO = 0.8
# NVML reasons that do not slow a busy GPU: idle, and clocks the administrator set on purpose.
NVML_BENIGN = ("GpuIdle", "ApplicationsClocksSetting")
NVML_REASONS = ("GpuIdle", "ApplicationsClocksSetting", "SwPowerCap", "HwSlowdown", "SyncBoost",
                "SwThermalSlowdown", "HwThermalSlowdown", "HwPowerBrakeSlowdown", "DisplayClockSetting")


def thermal_zones(root: Path = Path("/")) -> dict[str, float]:
    """Temperature of each thermal zone the kernel exposes, in degrees Celsius."""
    out: dict[str, float] = {}
    for zone in sorted((root / "sys/class/thermal").glob("thermal_zone*"))[:MAX_THERMAL_ZONES]:
        try:
            kind = (zone / "type").read_text().strip() or zone.name
            key = kind if kind not in out else f"{kind}:{zone.name}"
            out[key] = int((zone / "temp").read_text()) / 1000
        except (OSError, ValueError):
            continue
    return out


_nvml_state: dict[str, Any] = {}


def _nvml() -> Any:
    """pynvml, initialised once per process; raises with the reason when it cannot be used."""
    if "error" in _nvml_state:
        raise RuntimeError(_nvml_state["error"])
    if "module" not in _nvml_state:
        try:
            import pynvml
        except ImportError:
            _nvml_state["error"] = "NVML unavailable: nvidia-ml-py is not installed (pip install nvidia-ml-py)"
            raise RuntimeError(_nvml_state["error"]) from None
        try:
            pynvml.nvmlInit()
        except Exception as exc:  # NVMLError when there is no driver or no GPU
            _nvml_state["error"] = f"NVML unavailable: {type(exc).__name__}: {exc}"
            raise RuntimeError(_nvml_state["error"]) from None
        _nvml_state["module"] = pynvml
    return _nvml_state["module"]


def _reason_bits(pynvml: Any) -> dict[str, int]:
    return {name: bit for name in NVML_REASONS
            if (bit := getattr(pynvml, f"nvmlClocksEventReason{name}",
                               getattr(pynvml, f"nvmlClocksThrottleReason{name}", None))) is not None}


def gpu_clocks(index: int = 0) -> dict[str, Any]:
    """SM and memory clocks (current and max, MHz), temperature, and the active throttle reasons."""
    try:
        nv = _nvml()
        handle = nv.nvmlDeviceGetHandleByIndex(index)
        get_reasons = getattr(nv, "nvmlDeviceGetCurrentClocksEventReasons", None) or \
            nv.nvmlDeviceGetCurrentClocksThrottleReasons
        mask = int(get_reasons(handle))
        return {
            "index": index,
            "sm_mhz": nv.nvmlDeviceGetClockInfo(handle, nv.NVML_CLOCK_SM),
            "sm_max_mhz": nv.nvmlDeviceGetMaxClockInfo(handle, nv.NVML_CLOCK_SM),
            "mem_mhz": nv.nvmlDeviceGetClockInfo(handle, nv.NVML_CLOCK_MEM),
            "temperature_c": nv.nvmlDeviceGetTemperature(handle, nv.NVML_TEMPERATURE_GPU),
            "throttle_mask": mask,
            "throttle_reasons": [name for name, bit in _reason_bits(nv).items() if mask & bit],
        }
    except Exception as exc:  # a driver error must not cost the measurement
        return {"index": index, "error": str(exc) if isinstance(exc, RuntimeError) else
                f"NVML query failed: {type(exc).__name__}: {exc}"}


def uses_nvidia_gpu(device: Device) -> bool:
    providers = " ".join(map(str, device.options.get("providers", [])))
    return device.kind == "gpu" or device.backend == "tensorrt" or "CUDA" in providers or "Tensorrt" in providers


def snapshot(device: Device, root: Path = Path("/")) -> dict[str, Any]:
    """Everything about clocks and heat that this host says about ``device`` now."""
    out: dict[str, Any] = {"cpu": cpu_clocks(root), "thermal_c": thermal_zones(root)}
    if device.kind == "jetson":
        from ..backends.jetson import state

        out["jetson"] = state()
    elif uses_nvidia_gpu(device):
        out["gpu"] = gpu_clocks(int(device.options.get("gpu_index", device.options.get("device_id", 0))))
    return out


def throttling(device: Device, before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Why the measurement between two snapshots ran on a throttled device; empty when it did not."""
    found = []
    cpu = after.get("cpu", {})
    cur, top = cpu.get("cur_khz"), cpu.get("max_khz")
    if device.kind == "cpu" and isinstance(cur, int) and isinstance(top, int) and top > 0 \
            and cur < CPU_MIN_CLOCK_RATIO * top:
        found.append(f"cpu0 ran at {cur / 1000:.0f} MHz at the end of the measurement, {cur / top:.0%} of its "
                     f"maximum {top / 1000:.0f} MHz (governor {cpu.get('governor', '?')}): thermal or power "
                     f"throttling, or a power-saving governor")
    reasons = {r for snap in (before, after) for r in snap.get("gpu", {}).get("throttle_reasons", [])}
    bad = sorted(reasons - set(NVML_BENIGN))
    if bad:
        found.append(f"GPU clocks were held down by {', '.join(bad)} (NVML throttle reasons)")
    return found
