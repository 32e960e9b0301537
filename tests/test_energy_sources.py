"""Every meter source against a fake at its boundary: sysfs/procfs trees, pynvml, pyserial, commands."""

from __future__ import annotations

import os
import stat
import sys
import time
import types
from pathlib import Path

import pytest
from conftest import wait_for

from pytest_edgeai.devices import Device
from pytest_edgeai.energy import MeterWindow, make_meter
from pytest_edgeai.energy.meters import rapl
from pytest_edgeai.energy.meters.jetson_power import tegrastats_power
from pytest_edgeai.errors import ConfigError, MeterError, MeterUnavailable

SLOW = 0.2  # Hz: the sampling thread stays asleep, so only the start and stop reads happen


def device(tdp_w: float | None = None, **meter) -> Device:
    return Device(name="dut", kind="cpu", backend="onnxruntime", tdp_w=tdp_w, meter=meter)


def put(path: Path, text: object) -> None:
    """Write a file atomically, as sysfs never shows a half-written value."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"{text}\n")
    os.replace(tmp, path)


def window(meter, during=None):
    meter.start()
    try:
        if during:
            during()
    finally:
        reading = meter.stop()
        meter.close()
    return reading


# ---------------------------------------------------------------- RAPL

def rapl_zone(root: Path, zone: str, name: str, energy_uj: int, max_uj: int = 262143328850) -> Path:
    d = root / "sys/class/powercap" / zone
    put(d / "name", name)
    put(d / "energy_uj", energy_uj)
    put(d / "max_energy_range_uj", max_uj)
    return d


def test_rapl_sums_package_zones_only(tmp_path):
    p0 = rapl_zone(tmp_path, "intel-rapl:0", "package-0", 1_000_000)
    core = rapl_zone(tmp_path, "intel-rapl:0:0", "core", 5_000_000)
    p1 = rapl_zone(tmp_path, "intel-rapl:1", "package-1", 2_000_000)
    mmio = rapl_zone(tmp_path, "intel-rapl-mmio:0", "package-0", 0)
    meter = make_meter(device(source="rapl", root=str(tmp_path), rate_hz=SLOW))

    def work():
        put(p0 / "energy_uj", 3_000_000)
        put(p1 / "energy_uj", 2_500_000)
        put(core / "energy_uj", 9_000_000)
        put(mmio / "energy_uj", 7_000_000)

    r = window(meter, work)
    assert r.joules == pytest.approx(2.5)
    assert r.sample_kind == "joules" and not r.estimated
    assert "package-0 (intel-rapl:0)" in r.covers and "package-1 (intel-rapl:1)" in r.covers
    assert "core" not in r.covers and "mmio" not in r.covers


def test_rapl_wraps_mid_window(tmp_path):
    z = rapl_zone(tmp_path, "intel-rapl:0", "package-0", 900_000_000, max_uj=1_000_000_000)
    meter = make_meter(device(source="rapl", root=str(tmp_path), rate_hz=SLOW))
    r = window(meter, lambda: put(z / "energy_uj", 100_000_000))
    assert r.joules == pytest.approx(200.0)
    assert any("wrapped 1 time" in w for w in r.warnings)


def test_rapl_zone_counts_every_wrap_it_samples(tmp_path):
    zone = rapl.Zone(tmp_path, "package-0", max_range_uj=1000.0)
    for raw in (900, 100, 950, 50):
        zone.advance(raw)
    assert zone.total_uj == pytest.approx(200 + 850 + 100)
    assert zone.wraps == 2


def test_rapl_counter_that_does_not_move_is_flagged(tmp_path):
    rapl_zone(tmp_path, "amd-rapl:0", "package-0", 42)
    r = window(make_meter(device(source="rapl", root=str(tmp_path), rate_hz=SLOW)), lambda: time.sleep(0.01))
    assert r.joules == 0.0
    assert any(w.startswith("counter did not move") for w in r.warnings)


def test_rapl_zones_by_name_and_unknown_zone(tmp_path):
    rapl_zone(tmp_path, "intel-rapl:0", "package-0", 0)
    rapl_zone(tmp_path, "intel-rapl:0:2", "dram", 0)
    meter = make_meter(device(source="rapl", root=str(tmp_path), zones=["dram"], rate_hz=SLOW))
    assert [z.id for z in meter.zones] == ["intel-rapl:0:2"]
    with pytest.raises(ConfigError) as err:
        make_meter(device(source="rapl", root=str(tmp_path), zones="dran"))
    assert "devices.dut.meter.zones: no RAPL zone 'dran'" in str(err.value)
    assert "did you mean 'dram'" in str(err.value)


def test_rapl_permission_denied_explains_the_cve(tmp_path, monkeypatch):
    rapl_zone(tmp_path, "intel-rapl:0", "package-0", 0)
    real = rapl.read_number

    def guarded(path):
        if path.name == "energy_uj":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(rapl, "read_number", guarded)
    with pytest.raises(MeterUnavailable) as err:
        make_meter(device(source="rapl", root=str(tmp_path)))
    assert "CVE-2020-8694" in str(err.value) and "chmod o+r" in str(err.value)


def test_rapl_missing_interface_is_unavailable(tmp_path):
    with pytest.raises(MeterUnavailable, match="no RAPL zones"):
        make_meter(device(source="rapl", root=str(tmp_path)))


# ---------------------------------------------------------------- Jetson

def hwmon(root: Path, channels: dict[int, tuple[str, int, int]], power: dict[int, int] | None = None) -> Path:
    d = root / "sys/class/hwmon/hwmon3"
    put(d / "name", "ina3221")
    for n, (label, mv, ma) in channels.items():
        put(d / f"in{n}_label", label)
        put(d / f"in{n}_input", mv)
        put(d / f"curr{n}_input", ma)
    for n, uw in (power or {}).items():
        put(d / f"power{n}_input", uw)
    return d


def test_jetson_hwmon_reads_vdd_in_from_volts_and_amps(tmp_path):
    hwmon(tmp_path, {1: ("VDD_GPU_SOC", 5000, 100), 2: ("VDD_IN", 5000, 1000)})
    r = window(make_meter(device(source="jetson", root=str(tmp_path), rate_hz=SLOW)))
    assert r.mean_w == pytest.approx(5.0)
    assert r.sample_kind == "watts"
    assert r.covers.startswith("Jetson VDD_IN") and "excludes the carrier board" in r.covers


def test_jetson_hwmon_prefers_power_input_in_microwatts(tmp_path):
    hwmon(tmp_path, {1: ("VDD_IN", 5000, 1000)}, power={1: 7_250_000})
    r = window(make_meter(device(source="jetson", root=str(tmp_path), rate_hz=SLOW)))
    assert r.mean_w == pytest.approx(7.25)


def test_jetson_iio_layout_falls_back_to_pom_5v_in(tmp_path):
    d = tmp_path / "sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0"
    put(d / "rail_name_0", "POM_5V_IN")
    put(d / "in_power0_input", 3164)
    put(d / "rail_name_1", "POM_5V_GPU")
    put(d / "in_power1_input", 10)
    meter = make_meter(device(source="jetson", root=str(tmp_path), rate_hz=SLOW))
    r = window(meter, lambda: put(d / "in_power0_input", 3164))
    assert r.mean_w == pytest.approx(3.164)
    assert "POM_5V_IN" in r.covers


def test_jetson_power_change_is_integrated(tmp_path):
    d = hwmon(tmp_path, {1: ("VDD_IN", 5000, 1000)}, power={1: 2_000_000})
    r = window(make_meter(device(source="jetson", root=str(tmp_path), rate_hz=SLOW)),
               lambda: put(d / "power1_input", 6_000_000))
    # two samples, 2 W at start and 6 W at stop: the trapezoid gives their mean
    assert r.mean_w == pytest.approx(4.0)
    assert r.peak_w == pytest.approx(6.0)


def test_jetson_unknown_rail_is_a_config_error(tmp_path):
    hwmon(tmp_path, {1: ("VDD_IN", 5000, 1000)})
    with pytest.raises(ConfigError, match=r"devices\.dut\.meter\.rail: no rail 'VDD_INN'.*did you mean 'VDD_IN'"):
        make_meter(device(source="jetson", root=str(tmp_path), rail="VDD_INN"))


def test_jetson_nothing_found_is_unavailable(tmp_path):
    with pytest.raises(MeterUnavailable, match="no Jetson INA3221"):
        make_meter(device(source="jetson", root=str(tmp_path), tegrastats=str(tmp_path / "nope")))


@pytest.mark.parametrize("line, rail, watts", [
    ("RAM 2448/3956MB (lfb 1x4MB) SWAP 0/1978MB CPU [2%@102] EMC_FREQ 0% GR3D_FREQ 0% "
     "POM_5V_IN 3164/3164 POM_5V_GPU 0/0 POM_5V_CPU 565/565", "auto", 3.164),
    ("RAM 2448/7620MB CPU [1%@729] VDD_GPU_SOC 1595mW/1595mW VDD_CPU_CV 398mW/398mW "
     "VIN_SYS_5V0 2822mW/2822mW VDD_IN 5021mW/4999mW", "auto", 5.021),
    ("VDD_IN 5021mW/5021mW VDD_CPU_GPU_CV 848mW/848mW", "VDD_CPU_GPU_CV", 0.848),
    ("RAM 2448/3956MB SWAP 0/1978MB", "auto", None),
])
def test_tegrastats_lines(line, rail, watts):
    got = tegrastats_power(line, rail)
    assert got == (pytest.approx(watts) if watts is not None else None)


def script(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_tegrastats_fallback_reads_lines_and_stops_the_process(tmp_path):
    prog = script(tmp_path, "tegrastats", 'while true; do echo "RAM 1/2MB VDD_IN 4000mW/4000mW"; sleep 0.02; done')
    meter = make_meter(device(source="jetson", root=str(tmp_path), layout="tegrastats", tegrastats=prog))
    meter.start()
    wait_for(lambda: len(meter._sampler.samples) >= 2)
    proc = meter._lines._proc
    r = meter.stop()
    assert r.mean_w == pytest.approx(4.0)
    assert proc.poll() is not None  # the child was ended with the window
    assert r.source.startswith("tegrastats --interval 100")


# ---------------------------------------------------------------- NVML

class FakeNVMLError(Exception):
    pass


class FakeNotSupported(FakeNVMLError):
    pass


def fake_pynvml(energy_supported: bool = True, init_fails: bool = False) -> types.SimpleNamespace:
    state = types.SimpleNamespace(energy_mj=1_000_000, power_mw=150_000, shutdowns=0)

    def init():
        if init_fails:
            raise FakeNVMLError("Driver Not Loaded")

    def energy(handle):
        if not energy_supported:
            raise FakeNotSupported("Not Supported")
        return state.energy_mj

    def shutdown():
        state.shutdowns += 1

    return types.SimpleNamespace(
        NVMLError=FakeNVMLError, NVMLError_NotSupported=FakeNotSupported, state=state,
        nvmlInit=init, nvmlShutdown=shutdown, nvmlDeviceGetHandleByIndex=lambda i: ("gpu", i),
        nvmlDeviceGetCount=lambda: 1,
        nvmlDeviceGetName=lambda h: b"Fake A100", nvmlDeviceGetTotalEnergyConsumption=energy,
        nvmlDeviceGetPowerUsage=lambda h: state.power_mw)


def test_nvml_energy_counter(monkeypatch):
    nv = fake_pynvml()
    monkeypatch.setitem(sys.modules, "pynvml", nv)
    meter = make_meter(device(source="nvml", rate_hz=SLOW))
    r = window(meter, lambda: setattr(nv.state, "energy_mj", 1_012_500))
    assert r.joules == pytest.approx(12.5)
    assert r.source == "nvml energy counter" and r.covers.startswith("GPU board (Fake A100), NVML index 0")
    assert r.update_period_s == pytest.approx(0.1)
    assert nv.state.shutdowns == 1


def test_nvml_falls_back_to_sampled_power_and_says_it_is_averaged(monkeypatch):
    nv = fake_pynvml(energy_supported=False)
    monkeypatch.setitem(sys.modules, "pynvml", nv)
    r = window(make_meter(device(source="nvml", rate_hz=SLOW)))
    assert r.mean_w == pytest.approx(150.0)
    assert r.sample_kind == "watts"
    assert any("about 1 s" in w for w in r.warnings)
    assert any(w.startswith("window") and "update period 1 s" in w for w in r.warnings)


def test_nvml_gpu_lost_while_opening_the_meter_costs_only_the_energy(monkeypatch):
    nv = fake_pynvml()

    def lost(bus_id):
        # NVML API reference, nvmlDeviceGetHandleByPciBusId_v2: NVML_ERROR_GPU_IS_LOST when the target GPU has
        # fallen off the bus (pynvml raises it as an NVMLError subclass)
        raise FakeNVMLError("GPU is lost")

    nv.nvmlDeviceGetHandleByPciBusId = lost
    monkeypatch.setitem(sys.modules, "pynvml", nv)
    window = MeterWindow.for_device(device(source="nvml", pci_bus_id="00000000:65:00.0"))
    assert window.meter is None and nv.state.shutdowns == 1
    assert window.reason == ("energy not measured on dut: the meter could not be opened: FakeNVMLError: GPU is lost")
    window("start")
    window("stop")
    assert window.reading is None


def test_nvml_energy_mode_without_counter_is_unavailable(monkeypatch):
    nv = fake_pynvml(energy_supported=False)
    monkeypatch.setitem(sys.modules, "pynvml", nv)
    with pytest.raises(MeterUnavailable, match="no NVML energy counter"):
        make_meter(device(source="nvml", mode="energy"))
    assert nv.state.shutdowns == 1  # NVML is shut down even when the meter cannot be used


def test_nvml_without_driver_or_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(init_fails=True))
    with pytest.raises(MeterUnavailable, match="Driver Not Loaded"):
        make_meter(device(source="nvml"))
    monkeypatch.setitem(sys.modules, "pynvml", None)
    with pytest.raises(MeterUnavailable, match="nvidia-ml-py"):
        make_meter(device(source="nvml"))


# ---------------------------------------------------------------- estimate

def proc_stat(root: Path, busy: int, idle: int) -> None:
    put(root / "proc/stat", f"cpu  {busy} 0 0 {idle} 0 0 0 0 0 0\ncpu0 0 0 0 0 0 0 0 0 0 0\n"
                            f"cpu1 0 0 0 0 0 0 0 0 0 0\nintr 1 2 3")


def test_estimate_is_tdp_times_busy_cpu_share_and_says_so(tmp_path):
    proc_stat(tmp_path, busy=1000, idle=5000)
    meter = make_meter(device(tdp_w=10.0, source="estimate", root=str(tmp_path), rate_hz=SLOW))
    hz = os.sysconf("SC_CLK_TCK")
    r = window(meter, lambda: proc_stat(tmp_path, busy=1000 + hz, idle=5000 + hz))
    assert r.joules == pytest.approx(10.0 * 1.0 / 2)  # one busy CPU-second out of two CPUs
    assert r.estimated is True
    assert any("-60% to +190%" in w for w in r.warnings)


def test_estimate_needs_tdp(tmp_path):
    proc_stat(tmp_path, 0, 0)
    with pytest.raises(ConfigError, match=r"devices\.dut\.tdp_w: required by meter source 'estimate'"):
        make_meter(device(source="estimate", root=str(tmp_path)))


# ---------------------------------------------------------------- command and serial

def test_command_poll_reports_watts(tmp_path):
    r = window(make_meter(device(source="command", command="echo 12.5", rate_hz=SLOW, covers="wall socket")))
    assert r.mean_w == pytest.approx(12.5)
    assert r.covers == "wall socket"


def test_command_poll_reports_cumulative_joules(tmp_path):
    counter = tmp_path / "joules"
    put(counter, "100.0")
    meter = make_meter(device(source="command", command=["cat", str(counter)], reports="joules", rate_hz=SLOW))
    r = window(meter, lambda: put(counter, "142.5"))
    assert r.joules == pytest.approx(42.5)


def test_command_printing_garbage_is_a_meter_error():
    meter = make_meter(device(source="command", command="echo hello", rate_hz=SLOW))
    with pytest.raises(MeterError, match="printed 'hello', not a number of watts"):
        meter.start()
    assert meter._sampler is None


def test_command_that_dies_is_a_meter_error():
    meter = make_meter(device(source="command", command=["sh", "-c", "echo oops >&2; exit 3"], rate_hz=SLOW))
    with pytest.raises(MeterError, match="exited with status 3: oops"):
        meter.start()


def test_command_that_hangs_times_out():
    meter = make_meter(device(source="command", command="sleep 30", timeout_s=0.2, rate_hz=SLOW))
    with pytest.raises(MeterError, match="did not finish within 0.2 s"):
        meter.start()


def test_command_dying_mid_window_fails_stop_and_the_thread_ends(tmp_path):
    flag = tmp_path / "n"
    prog = script(tmp_path, "meter", f'if [ -e {flag} ]; then exit 4; fi; echo 2.0')
    meter = make_meter(device(source="command", command=prog, rate_hz=100))
    meter.start()
    sampler = meter._sampler
    flag.touch()
    wait_for(lambda: not sampler.alive)
    with pytest.raises(MeterError, match="failed during the window.*exited with status 4"):
        meter.stop()
    assert not sampler.alive


def test_command_stream_mode_skips_other_lines_and_ends_the_process(tmp_path):
    prog = script(tmp_path, "logger", 'echo header; while true; do echo "P=3.5W"; sleep 0.02; done')
    meter = make_meter(device(source="command", command=prog, mode="stream", pattern=r"P=([0-9.]+)W"))
    meter.start()
    wait_for(lambda: len(meter._sampler.samples) >= 2)
    proc = meter._lines._proc
    r = meter.stop()
    assert r.mean_w == pytest.approx(3.5)
    assert proc.poll() is not None


def test_command_stream_that_exits_without_a_value(tmp_path):
    meter = make_meter(device(source="command", command=["sh", "-c", "echo junk; exit 2"], mode="stream"))
    meter.start()
    wait_for(lambda: not meter._sampler.alive)
    with pytest.raises(MeterError, match="exited with status 2"):
        meter.stop()


def test_command_not_found_is_unavailable():
    with pytest.raises(MeterUnavailable, match="not an executable found on PATH"):
        make_meter(device(source="command", command="no-such-meter-xyz --watts"))


def test_serial_meter_parses_lines_with_pattern(tmp_path, monkeypatch):
    lines = [b"boot banner\r\n", b"V=5.01 A=0.40 W=2.004\r\n", b"V=5.01 A=0.40 W=2.004\r\n"]
    opened = {}

    class FakeSerial:
        def __init__(self, port, baudrate, timeout):
            opened.update(port=port, baudrate=baudrate, closed=False)

        def readline(self):
            time.sleep(0.005)
            return lines.pop(0) if lines else b""

        def close(self):
            opened["closed"] = True

    monkeypatch.setitem(sys.modules, "serial", types.SimpleNamespace(Serial=FakeSerial, SerialException=OSError))
    port = tmp_path / "ttyUSB0"
    port.touch()
    meter = make_meter(device(source="serial", port=str(port), baudrate=115200, pattern=r"W=([0-9.]+)"))
    meter.start()
    wait_for(lambda: len(meter._sampler.samples) >= 2)
    r = meter.stop()
    assert r.mean_w == pytest.approx(2.004)
    assert opened == {"port": str(port), "baudrate": 115200, "closed": True}


def test_serial_port_missing_is_unavailable(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "serial", types.SimpleNamespace(Serial=None, SerialException=OSError))
    with pytest.raises(MeterUnavailable, match="does not exist"):
        make_meter(device(source="serial", port=str(tmp_path / "ttyUSB9")))
    monkeypatch.setitem(sys.modules, "serial", None)
    with pytest.raises(MeterUnavailable, match="pip install pyserial"):
        make_meter(device(source="serial", port=str(tmp_path / "ttyUSB9")))


def test_nvml_reads_the_costly_counter_only_at_the_edges_unless_told(monkeypatch):
    nv = fake_pynvml()
    monkeypatch.setitem(sys.modules, "pynvml", nv)
    meter = make_meter(device(source="nvml"))
    assert meter.rate_hz == 0.0
    r = window(meter, lambda: setattr(nv.state, "energy_mj", 1_002_000))
    assert len(r.samples) == 2 and r.joules == pytest.approx(2.0)
    assert r.peak_w is None  # two counter reads give the mean, not a peak
    assert make_meter(device(source="nvml", rate_hz=5)).rate_hz == 5.0
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(energy_supported=False))
    assert make_meter(device(source="nvml")).rate_hz == 10.0
