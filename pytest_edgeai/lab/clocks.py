"""Clocks and heat around a measurement: CPU governor and frequency, thermal zones, NVIDIA GPU clocks
and throttle counters (NVML), Jetson power mode (nvpmodel) and pinned clocks (jetson_clocks).

A snapshot is taken before and after each measurement, next to the timed loop, and stored in
``record.extra["clocks"]``; a measurement during which the device was throttled is flagged, because its
figures describe a hot or power-capped device, not the device. The Jetson power state comes from
the Jetson backend's reading of ``nvpmodel -q`` and ``jetson_clocks --show``.

What counts as throttled is read from counters that cover the whole window, not from states at its
edges (where the device is idle): the kernel's thermal_throttle event counts for the CPU, NVML's
violation counters (nvmlDeviceGetViolationStatus: nanoseconds the GPU was held below its application
or base clocks by power, thermal, board or reliability limits) for the GPU. The CPU's clock at the end
is compared with its base (non-turbo) frequency, not with ``cpuinfo_max_freq``, which is the
single-core turbo peak that an all-core load never reaches.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..energy.meters.nvml import nvml_handle
from ..results.environment import cpu_clocks

if TYPE_CHECKING:
    from ..devices import Device

MAX_THERMAL_ZONES = 16
# A CPU measurement that ends with cpu0 below this fraction of its base clock ran throttled
# (thermal or power capping) or under a power-saving governor: either way the figure is low.
CPU_MIN_CLOCK_RATIO = 0.8
CPUFREQ = "sys/devices/system/cpu/cpu0/cpufreq"
# The base (guaranteed, non-turbo) frequency, best first: intel_pstate's base_frequency, amd-pstate's
# nominal frequency (Linux cpufreq docs: intel_pstate, amd-pstate); else the policy's ceiling.
CPU_REFERENCES = (("base_frequency", "base frequency (intel_pstate base_frequency)"),
                  ("amd_pstate_nominal_freq", "nominal frequency (amd-pstate)"),
                  ("scaling_max_freq", "the policy's maximum (scaling_max_freq; no base frequency exposed)"))
# NVML reasons that do not slow a busy GPU: idle, and clocks the administrator set on purpose.
NVML_BENIGN = ("GpuIdle", "ApplicationsClocksSetting")
NVML_REASONS = ("GpuIdle", "ApplicationsClocksSetting", "SwPowerCap", "HwSlowdown", "SyncBoost",
                "SwThermalSlowdown", "HwThermalSlowdown", "HwPowerBrakeSlowdown", "DisplayClockSetting")
# nvmlPerfPolicyType_t (NVML API reference): the limits that slow a busy GPU. Low utilisation and sync
# boost are left out: an idle gap between queries or a multi-GPU sync group is not heat or power.
NVML_VIOLATIONS = {"power": 0, "thermal": 1, "board_limit": 3, "reliability": 5, "below_base_clocks": 11}
# A limiter active for more than this fraction of the window marks the measurement throttled.
GPU_VIOLATION_FRACTION = 0.01


def cpu_reference(root: Path = Path("/")) -> dict[str, Any]:
    """cpu0's base frequency (kHz) and which file gave it; empty when the kernel exposes none."""
    for name, what in CPU_REFERENCES:
        try:
            text = (root / CPUFREQ / name).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) > 0:
            return {"reference_khz": int(text), "reference": what}
    return {}


def cpu_throttle_events(root: Path = Path("/")) -> int | None:
    """Thermal throttle events the kernel counted over every CPU (core + package); None when not exposed."""
    counts = []
    for f in sorted((root / "sys/devices/system/cpu").glob("cpu[0-9]*/thermal_throttle/*_throttle_count")):
        try:
            counts.append(int(f.read_text().strip()))
        except (OSError, ValueError):
            continue
    return sum(counts) if counts else None


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


def _violations(nv: Any, handle: Any) -> dict[str, int]:
    """Cumulative nanoseconds each limiter held the clocks down (the policies this GPU supports)."""
    out = {}
    for name, policy in NVML_VIOLATIONS.items():
        try:
            out[name] = int(nv.nvmlDeviceGetViolationStatus(handle, policy).violationTime)
        except Exception:  # NVMLError_NotSupported on boards without that counter
            continue
    return out


def gpu_clocks(device: Device) -> dict[str, Any]:
    """SM and memory clocks (current and max, MHz), temperature, the active clock-event reasons and the
    violation counters of the GPU ``device`` runs on (matched by PCI bus id)."""
    try:
        nv = _nvml()
        handle, matched = nvml_handle(nv, device)
        get_reasons = getattr(nv, "nvmlDeviceGetCurrentClocksEventReasons", None) or \
            nv.nvmlDeviceGetCurrentClocksThrottleReasons
        mask = int(get_reasons(handle))
        return {
            "gpu": matched,
            "t_ns": time.monotonic_ns(),
            "sm_mhz": nv.nvmlDeviceGetClockInfo(handle, nv.NVML_CLOCK_SM),
            "sm_max_mhz": nv.nvmlDeviceGetMaxClockInfo(handle, nv.NVML_CLOCK_SM),
            "mem_mhz": nv.nvmlDeviceGetClockInfo(handle, nv.NVML_CLOCK_MEM),
            "temperature_c": nv.nvmlDeviceGetTemperature(handle, nv.NVML_TEMPERATURE_GPU),
            "throttle_mask": mask,
            "throttle_reasons": [name for name, bit in _reason_bits(nv).items() if mask & bit],
            "violation_ns": _violations(nv, handle),
        }
    except Exception as exc:  # a driver error must not cost the measurement
        return {"error": str(exc) if isinstance(exc, RuntimeError) else
                f"NVML query failed: {type(exc).__name__}: {exc}"}


def uses_nvidia_gpu(device: Device) -> bool:
    providers = " ".join(map(str, device.options.get("providers", [])))
    return device.kind == "gpu" or device.backend == "tensorrt" or "CUDA" in providers or "Tensorrt" in providers


def snapshot(device: Device, root: Path = Path("/")) -> dict[str, Any]:
    """Everything about clocks and heat that this host says about ``device`` now."""
    out: dict[str, Any] = {"cpu": {**cpu_clocks(root), **cpu_reference(root)}, "thermal_c": thermal_zones(root)}
    events = cpu_throttle_events(root)
    if events is not None:
        out["cpu"]["throttle_events"] = events
    if device.kind == "jetson":
        from ..backends.jetson import state

        out["jetson"] = state()
    elif uses_nvidia_gpu(device):
        out["gpu"] = gpu_clocks(device)
    return out


def throttling(device: Device, before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Why the measurement between two snapshots ran on a throttled device; empty when it did not."""
    found = []
    if device.kind == "cpu":
        found += _cpu_throttling(before.get("cpu", {}), after.get("cpu", {}))
    found += _gpu_throttling(before.get("gpu", {}), after.get("gpu", {}))
    return found


def _cpu_throttling(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    found = []
    cur, ref = after.get("cur_khz"), after.get("reference_khz")
    if isinstance(cur, int) and isinstance(ref, int) and ref > 0 and cur < CPU_MIN_CLOCK_RATIO * ref:
        found.append(f"cpu0 ran at {cur / 1000:.0f} MHz at the end of the measurement, {cur / ref:.0%} of its "
                     f"{after.get('reference')} {ref / 1000:.0f} MHz (governor {after.get('governor', '?')}): "
                     f"thermal or power throttling, or a power-saving governor")
    start, end = before.get("throttle_events"), after.get("throttle_events")
    if isinstance(start, int) and isinstance(end, int) and end > start:
        found.append(f"the kernel counted {end - start} CPU thermal throttle event(s) during the "
                     f"measurement (thermal_throttle/*_throttle_count)")
    return found


def _gpu_throttling(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    start, end = before.get("violation_ns"), after.get("violation_ns")
    if isinstance(start, dict) and isinstance(end, dict) and start and end:
        window_ns = max(after.get("t_ns", 0) - before.get("t_ns", 0), 1)
        held = {name: end[name] - start[name] for name in end if name in start and end[name] > start[name]}
        bad = {n: ns for n, ns in held.items() if ns > GPU_VIOLATION_FRACTION * window_ns}
        if bad:
            parts = ", ".join(f"{n} {ns / 1e6:.0f} ms ({ns / window_ns:.0%})" for n, ns in sorted(bad.items()))
            return [f"GPU clocks were held down during the measurement by {parts} of the "
                    f"{window_ns / 1e9:.1f} s window (NVML violation counters)"]
        return []
    # no violation counters on this board: the clock-event reasons at the window's edges are all there is
    reasons = {r for snap in (before, after) for r in snap.get("throttle_reasons", [])}
    bad_reasons = sorted(reasons - set(NVML_BENIGN))
    if bad_reasons:
        return [f"GPU clocks were held down by {', '.join(bad_reasons)} (NVML clock-event reasons before or "
                f"after the measurement; this GPU has no violation counters)"]
    return []
