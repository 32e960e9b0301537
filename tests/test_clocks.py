"""Clocks and heat around a measurement, with a fake sysfs tree, a fake pynvml module and fake Jetson
commands on PATH (the vendor boundaries), plus one real measurement carrying its snapshots."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from conftest import build_tiny_model
from pytest_edgeai.backends import jetson
from pytest_edgeai.devices import Device, builtin_cpu
from pytest_edgeai.lab import clocks
from pytest_edgeai.lab.work import MeasureRequest, ModelCache, execute
from pytest_edgeai.measure.profiles import Profile
from pytest_edgeai.models.model import model_from_file
from pytest_edgeai.results import environment

GPU = Device(name="rtx", kind="gpu", backend="onnxruntime", options={"providers": ["CUDAExecutionProvider"]})
EDGETPU = Device(name="coral", kind="edgetpu", backend="litert")
JETSON = Device(name="nano", kind="jetson", backend="tensorrt")


def fake_sysfs(root: Path, cur_khz: int, max_khz: int = 3_000_000, governor: str = "performance") -> Path:
    freq = root / "sys/devices/system/cpu/cpu0/cpufreq"
    freq.mkdir(parents=True)
    (freq / "scaling_governor").write_text(f"{governor}\n")
    (freq / "scaling_cur_freq").write_text(f"{cur_khz}\n")
    (freq / "cpuinfo_max_freq").write_text(f"{max_khz}\n")
    for i, (kind, milli) in enumerate((("x86_pkg_temp", 71500), ("acpitz", 40000))):
        zone = root / f"sys/class/thermal/thermal_zone{i}"
        zone.mkdir(parents=True)
        (zone / "type").write_text(kind + "\n")
        (zone / "temp").write_text(f"{milli}\n")
    return root


def test_cpu_clocks_and_heat_from_sysfs(tmp_path):
    snap = clocks.snapshot(builtin_cpu(), fake_sysfs(tmp_path, 2_900_000))
    assert snap["cpu"] == {"governor": "performance", "cur_khz": 2_900_000, "max_khz": 3_000_000}
    assert snap["thermal_c"] == {"x86_pkg_temp": 71.5, "acpitz": 40.0}
    assert "gpu" not in snap and "jetson" not in snap


def test_a_cpu_that_ended_below_its_clock_is_flagged(tmp_path):
    cool = clocks.snapshot(builtin_cpu(), fake_sysfs(tmp_path / "a", 2_900_000))
    hot = clocks.snapshot(builtin_cpu(), fake_sysfs(tmp_path / "b", 1_200_000))
    assert clocks.throttling(builtin_cpu(), cool, cool) == []
    [why] = clocks.throttling(builtin_cpu(), cool, hot)
    assert "1200 MHz" in why and "40%" in why and "3000 MHz" in why
    assert clocks.throttling(EDGETPU, cool, hot) == []  # the host CPU's clock is not the EdgeTPU's


def fake_pynvml(reasons: int, event_api: bool = True) -> types.ModuleType:
    nv = types.ModuleType("pynvml")
    nv.NVML_CLOCK_SM, nv.NVML_CLOCK_MEM, nv.NVML_TEMPERATURE_GPU = 1, 2, 0
    bits = {"GpuIdle": 0x1, "ApplicationsClocksSetting": 0x2, "SwPowerCap": 0x4, "HwSlowdown": 0x8,
            "SwThermalSlowdown": 0x20, "HwThermalSlowdown": 0x40}
    prefix = "nvmlClocksEventReason" if event_api else "nvmlClocksThrottleReason"
    for name, bit in bits.items():
        setattr(nv, prefix + name, bit)
    nv.nvmlInit = lambda: None
    nv.nvmlDeviceGetHandleByIndex = lambda i: ("handle", i)
    nv.nvmlDeviceGetClockInfo = lambda h, kind: {1: 1410, 2: 1215}[kind]
    nv.nvmlDeviceGetMaxClockInfo = lambda h, kind: {1: 1980, 2: 1215}[kind]
    nv.nvmlDeviceGetTemperature = lambda h, kind: 83
    setattr(nv, "nvmlDeviceGetCurrentClocksEventReasons" if event_api else
            "nvmlDeviceGetCurrentClocksThrottleReasons", lambda h: reasons)
    return nv


@pytest.fixture
def nvml(monkeypatch):
    def install(module):
        monkeypatch.setitem(sys.modules, "pynvml", module)
        monkeypatch.setattr(clocks, "_nvml_state", {})
    return install


def test_gpu_clocks_and_throttle_reasons_from_nvml(nvml, tmp_path):
    nvml(fake_pynvml(0x1))
    idle = clocks.snapshot(GPU, tmp_path)["gpu"]
    assert idle == {"index": 0, "sm_mhz": 1410, "sm_max_mhz": 1980, "mem_mhz": 1215, "temperature_c": 83,
                    "throttle_mask": 1, "throttle_reasons": ["GpuIdle"]}
    nvml(fake_pynvml(0x40 | 0x4, event_api=False))  # older drivers: the ...ThrottleReasons names
    hot = clocks.snapshot(GPU, tmp_path)
    assert hot["gpu"]["throttle_reasons"] == ["SwPowerCap", "HwThermalSlowdown"]
    assert clocks.throttling(GPU, {"gpu": idle}, {"gpu": idle}) == []
    [why] = clocks.throttling(GPU, {"gpu": idle}, hot)
    assert why.startswith("GPU clocks were held down by HwThermalSlowdown, SwPowerCap")


def test_without_nvml_the_snapshot_says_why(nvml, tmp_path):
    nvml(None)  # import pynvml raises ImportError
    gpu = clocks.snapshot(GPU, tmp_path)["gpu"]
    assert gpu["error"] == "NVML unavailable: nvidia-ml-py is not installed (pip install nvidia-ml-py)"

    broken = fake_pynvml(0)
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
    result = execute(request, cache)
    cache.close()
    assert result.extra["throttled"] is True and result.extra["model_load_s"] is None  # kept loaded
    assert any(w.startswith("throttled: cpu0 ran at 900 MHz") and "powersave" in w for w in result.warnings)


@pytest.mark.hardware("ort_cuda")
def test_a_real_nvidia_gpu_reports_its_clocks_and_throttle_reasons(hardware_device):
    gpu = clocks.snapshot(hardware_device)["gpu"]
    assert "error" not in gpu, gpu.get("error")
    assert gpu["sm_max_mhz"] >= gpu["sm_mhz"] > 0 and isinstance(gpu["throttle_reasons"], list)
