"""The meters against real sensors, where the machine has them (skipped with the reason elsewhere)."""

from __future__ import annotations

import time

import pytest

from pytest_edgeai.devices import Device
from pytest_edgeai.energy import make_meter
from pytest_edgeai.errors import MeterUnavailable


def real_meter(**meter):
    try:
        return make_meter(Device(name="host", kind="gpu", backend="onnxruntime", tdp_w=100.0, meter=meter))
    except MeterUnavailable as exc:
        pytest.skip(f"no such sensor here: {exc}")


@pytest.mark.parametrize("meter", [{"source": "nvml"}, {"source": "nvml", "mode": "power"},
                                   {"source": "rapl"}, {"source": "jetson"}],
                         ids=["nvml-energy", "nvml-power", "rapl", "jetson"])
def test_real_sensor_reads_plausible_power(meter):
    m = real_meter(**meter)
    try:
        m.start()
        time.sleep(1.5)
        r = m.stop()
    finally:
        m.close()
    assert r.duration_s >= 1.5
    assert 0.0 < r.mean_w < 5000.0, r  # any device draws something, no single board draws 5 kW
    assert r.joules == pytest.approx(r.mean_w * r.duration_s)
    assert r.covers and not r.estimated


def test_nvml_sees_a_gpu_workload_above_idle():
    """Matrix products on the GPU draw more than the idle baseline the same meter took just before."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch sees no CUDA device")
    from pytest_edgeai.energy import MeterWindow, measure_idle

    m = real_meter(source="nvml")
    a = torch.randn(8192, 8192, device="cuda")

    def work():
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            a @ a
            torch.cuda.synchronize()

    window = MeterWindow(m)
    try:
        baseline = measure_idle(m, 2.0)
        window("start")
        work()
        window("stop")
    finally:
        window.close()
    r = window.reading
    assert r is not None, window.reason
    assert r.idle_w == pytest.approx(baseline.idle_w)
    assert r.mean_w > baseline.idle_w and r.above_idle_joules > 0, r.to_dict()
