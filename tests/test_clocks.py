"""Clocks and heat around a measurement, with a fake sysfs tree, a fake pynvml module and fake Jetson
commands on PATH (the vendor boundaries), plus one real measurement carrying its snapshots."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import build_tiny_model
from vendor_fakes import fake_cuda_runtime_bus_ids, fake_pynvml, install_cuda_runtime

from pytest_edgeai.backends import jetson
from pytest_edgeai.devices import Device, builtin_cpu
from pytest_edgeai.energy.meters import nvml as nvml_meter
from pytest_edgeai.lab import clocks
from pytest_edgeai.lab.work import MeasureRequest, ModelCache, execute
from pytest_edgeai.measure.profiles import Profile
from pytest_edgeai.models.model import model_from_file
from pytest_edgeai.results import environment

GPU = Device(name="rtx", kind="gpu", backend="onnxruntime", options={"providers": ["CUDAExecutionProvider"]})
EDGETPU = Device(name="coral", kind="edgetpu", backend="litert")
JETSON = Device(name="nano", kind="jetson", backend="tensorrt")


def fake_sysfs(root: Path, cur_khz: int, max_khz: int = 3_000_000, governor: str = "performance",
               base_khz: int | None = None, throttle_events: int | None = None) -> Path:
    """Linux cpufreq sysfs (Documentation/admin-guide/pm/cpufreq.rst, intel_pstate.rst: base_frequency)
    and the x86 thermal_throttle counters (Documentation/ABI/testing/sysfs-devices-system-cpu)."""
    freq = root / "sys/devices/system/cpu/cpu0/cpufreq"
    freq.mkdir(parents=True)
    (freq / "scaling_governor").write_text(f"{governor}\n")
    (freq / "scaling_cur_freq").write_text(f"{cur_khz}\n")
    (freq / "cpuinfo_max_freq").write_text(f"{max_khz}\n")
    (freq / "scaling_max_freq").write_text(f"{max_khz}\n")
    if base_khz is not None:
        (freq / "base_frequency").write_text(f"{base_khz}\n")
    if throttle_events is not None:
        for cpu in ("cpu0", "cpu1"):
            t = root / f"sys/devices/system/cpu/{cpu}/thermal_throttle"
            t.mkdir(parents=True)
            (t / "core_throttle_count").write_text(f"{throttle_events}\n")
            (t / "package_throttle_count").write_text("0\n")
    for i, (kind, milli) in enumerate((("x86_pkg_temp", 71500), ("acpitz", 40000))):
        zone = root / f"sys/class/thermal/thermal_zone{i}"
        zone.mkdir(parents=True)
        (zone / "type").write_text(kind + "\n")
        (zone / "temp").write_text(f"{milli}\n")
    return root


def test_cpu_clocks_and_heat_from_sysfs(tmp_path):
    snap = clocks.snapshot(builtin_cpu(), fake_sysfs(tmp_path, 2_900_000))
    assert snap["cpu"] == {"governor": "performance", "cur_khz": 2_900_000, "max_khz": 3_000_000,
                           "reference_khz": 3_000_000, "reference": "the policy's maximum (scaling_max_freq; "
                                                                     "no base frequency exposed)"}
    assert snap["thermal_c"] == {"x86_pkg_temp": 71.5, "acpitz": 40.0}
    assert "gpu" not in snap and "jetson" not in snap


def test_a_cpu_that_ended_below_its_clock_is_flagged(tmp_path):
    cool = clocks.snapshot(builtin_cpu(), fake_sysfs(tmp_path / "a", 2_900_000))
    hot = clocks.snapshot(builtin_cpu(), fake_sysfs(tmp_path / "b", 1_200_000))
    assert clocks.throttling(builtin_cpu(), cool, cool) == []
    [why] = clocks.throttling(builtin_cpu(), cool, hot)
    assert "1200 MHz" in why and "40%" in why and "3000 MHz" in why
    assert clocks.throttling(EDGETPU, cool, hot) == []  # the host CPU's clock is not the EdgeTPU's


def test_an_all_core_turbo_cpu_is_not_flagged_against_its_single_core_peak(tmp_path):
    # 4.7 GHz single-core turbo, 3.0 GHz base, 3.5 GHz all-core turbo under load: not throttled
    turbo = clocks.snapshot(builtin_cpu(), fake_sysfs(tmp_path / "a", 3_500_000, max_khz=4_700_000,
                                                      base_khz=3_000_000))
    assert turbo["cpu"]["reference"] == "base frequency (intel_pstate base_frequency)"
    assert clocks.throttling(builtin_cpu(), turbo, turbo) == []
    slow = clocks.snapshot(builtin_cpu(), fake_sysfs(tmp_path / "b", 2_000_000, max_khz=4_700_000,
                                                     base_khz=3_000_000))
    [why] = clocks.throttling(builtin_cpu(), turbo, slow)
    assert "67% of its base frequency (intel_pstate base_frequency) 3000 MHz" in why


def test_thermal_throttle_events_during_the_window_are_flagged(tmp_path):
    before = clocks.snapshot(builtin_cpu(), fake_sysfs(tmp_path / "a", 3_000_000, throttle_events=5))
    after = clocks.snapshot(builtin_cpu(), fake_sysfs(tmp_path / "b", 3_000_000, throttle_events=7))
    assert before["cpu"]["throttle_events"] == 10
    assert clocks.throttling(builtin_cpu(), before, before) == []
    [why] = clocks.throttling(builtin_cpu(), before, after)
    assert why.startswith("the kernel counted 4 CPU thermal throttle event(s)")


GPUS = [{"bus": "00000000:3B:00.0", "name": "Slow T4", "violation_ns": {0: 0, 1: 0, 11: 0}},
        {"bus": "00000000:86:00.0", "name": "Fast H100", "violation_ns": {0: 0, 1: 0, 11: 0}}]


@pytest.fixture
def nvml(monkeypatch):
    def install(module, cuda_order=("0000:86:00.0", "0000:3b:00.0")):
        monkeypatch.setitem(sys.modules, "pynvml", module)
        monkeypatch.setattr(clocks, "_nvml_state", {})
        nvml_meter.cuda_pci_bus_id.cache_clear()
        install_cuda_runtime(monkeypatch, fake_cuda_runtime_bus_ids(list(cuda_order)))
        return module
    yield install
    nvml_meter.cuda_pci_bus_id.cache_clear()


def test_the_gpu_is_found_by_pci_bus_id_not_by_cuda_index(nvml, tmp_path):
    nv = nvml(fake_pynvml([dict(g) for g in GPUS]))
    snap = clocks.snapshot(GPU, tmp_path)["gpu"]  # CUDA device 0 is the H100 at 86:00.0, NVML index 1
    assert snap["gpu"] == "CUDA device 0 = PCI bus id 0000:86:00.0 (cudaDeviceGetPCIBusId)"
    assert nv.gpus[0]["name"] == "Slow T4"  # what nvmlDeviceGetHandleByIndex(0) would have read
    pinned = Device(name="g", kind="gpu", backend="tensorrt", options={"device_id": 1})
    assert "PCI bus id 0000:3b:00.0" in clocks.snapshot(pinned, tmp_path)["gpu"]["gpu"]


def test_gpu_throttling_is_read_from_violation_counters_over_the_window(nvml, tmp_path):
    nv = nvml(fake_pynvml([dict(g, violation_ns=dict(g["violation_ns"])) for g in GPUS], reasons=0x1))
    before = clocks.snapshot(GPU, tmp_path)
    assert before["gpu"]["throttle_reasons"] == ["GpuIdle"] and before["gpu"]["violation_ns"] == \
        {"power": 0, "thermal": 0, "below_base_clocks": 0}
    after = clocks.snapshot(GPU, tmp_path)
    assert clocks.throttling(GPU, before, after) == []  # idle at both edges, no violation in between
    h100 = nv.gpus[1]
    h100["violation_ns"][0] = 400_000_000  # power capped 0.4 s during the window; idle again at its end
    after = clocks.snapshot(GPU, tmp_path)
    after["gpu"]["t_ns"] = before["gpu"]["t_ns"] + 2_000_000_000
    [why] = clocks.throttling(GPU, before, after)
    assert why.startswith("GPU clocks were held down during the measurement by power 400 ms (20%) of the 2.0 s")
    nv.gpus[0]["violation_ns"][1] = 10**9  # the other GPU's heat is not this measurement's
    h100["violation_ns"][0] = 0
    assert clocks.throttling(GPU, before, clocks.snapshot(GPU, tmp_path)) == []


def test_without_violation_counters_the_edge_reasons_are_used_and_say_so(nvml, tmp_path):
    nvml(fake_pynvml([{"bus": "0000:01:00.0", "name": "Old GPU", "reasons": 0x40 | 0x4}]),
         cuda_order=("0000:01:00.0",))
    hot = clocks.snapshot(GPU, tmp_path)
    assert hot["gpu"]["throttle_reasons"] == ["SwPowerCap", "HwThermalSlowdown"]
    [why] = clocks.throttling(GPU, hot, hot)
    assert why.startswith("GPU clocks were held down by HwThermalSlowdown, SwPowerCap (NVML clock-event reasons")


def test_without_nvml_the_snapshot_says_why(nvml, tmp_path):
    nvml(None)  # import pynvml raises ImportError
    gpu = clocks.snapshot(GPU, tmp_path)["gpu"]
    assert gpu["error"] == "NVML unavailable: nvidia-ml-py is not installed (pip install nvidia-ml-py)"

    broken = fake_pynvml(GPUS)
    broken.nvmlInit = lambda: (_ for _ in ()).throw(OSError("NVML Shared Library Not Found"))
    nvml(broken)
    assert clocks.snapshot(GPU, tmp_path)["gpu"]["error"] == "NVML unavailable: OSError: NVML Shared Library Not Found"


def fake_command(bin_dir: Path, name: str, body: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / name
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)


def test_jetson_power_mode_and_clocks_from_its_commands(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    fake_command(bin_dir, "nvpmodel", 'printf "NV Fan Mode:quiet\\nNV Power Mode: MAXN\\n0\\n"')
    fake_command(bin_dir, "jetson_clocks", 'printf "cpu0: Online=1 Governor=schedutil MinFreq=1479000 '
                 'MaxFreq=1479000 CurrentFreq=1479000\\nGPU MinFreq=921600000 MaxFreq=921600000\\n"')
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    assert clocks.snapshot(JETSON, tmp_path)["jetson"] == {"nvpmodel_mode": "MAXN", "nvpmodel_id": 0,
                                                          "jetson_clocks": True}
    fake_command(bin_dir, "jetson_clocks", "sleep 5")
    monkeypatch.setattr(jetson, "TIMEOUT_S", 0.3)
    assert clocks.snapshot(JETSON, tmp_path)["jetson"]["jetson_clocks_error"] == \
        "jetson_clocks --show timed out after 0.3 s"
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert clocks.snapshot(JETSON, tmp_path)["jetson"]["nvpmodel_error"] == "nvpmodel not on PATH"


REFERENCE = clocks.cpu_reference
TINY_PROFILE = Profile("tiny", warmup_count=1, warmup_s=0.0, min_duration_s=0.05, min_count=5, timeout_s=30)


def test_a_measurement_records_clocks_before_and_after_and_flags_throttling(tmp_path, monkeypatch):
    model = model_from_file(build_tiny_model(tmp_path / "tiny.onnx"))
    request = MeasureRequest(builtin_cpu(), model, "offline", 1, TINY_PROFILE, lock_dir=str(tmp_path / "locks"))
    cache = ModelCache()
    result = execute(request, cache)
    assert set(result.extra["clocks"]) == {"before", "after"}
    assert set(result.extra["clocks"]["after"]) >= {"cpu", "thermal_c"}
    assert "throttled" not in result.extra or result.warnings  # flagged only with the reason said

    hot = fake_sysfs(tmp_path / "hot", 900_000, governor="powersave")
    monkeypatch.setattr(clocks, "cpu_clocks", lambda root: environment.cpu_clocks(hot))
    monkeypatch.setattr(clocks, "cpu_reference", lambda root: REFERENCE(hot))
    result = execute(request, cache)
    cache.close()
    assert result.extra["throttled"] is True and result.extra["model_load_s"] is None  # kept loaded
    assert any(w.startswith("throttled: cpu0 ran at 900 MHz") and "powersave" in w for w in result.warnings)


@pytest.mark.hardware("ort_cuda")
def test_a_real_nvidia_gpu_reports_its_clocks_and_throttle_reasons(hardware_device):
    gpu = clocks.snapshot(hardware_device)["gpu"]
    assert "error" not in gpu, gpu.get("error")
    assert gpu["sm_max_mhz"] >= gpu["sm_mhz"] > 0 and isinstance(gpu["throttle_reasons"], list)
