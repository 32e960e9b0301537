"""The meters against real sensors, where the machine has them (skipped with the reason elsewhere)."""

from __future__ import annotations

import time

import pytest

from pytest_edgeai.devices import Device
from pytest_edgeai.energy import MeterUnavailable, make_meter


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
