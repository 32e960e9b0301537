"""The meter machinery: integration, the sampling thread, options, registry, idle baseline,
metrics, metered runs and cross-device claims."""

from __future__ import annotations

import threading
import time
import types

import pytest
from conftest import wait_for

from pytest_edgeai import config as config_mod
from pytest_edgeai import energy
from pytest_edgeai.claims import CLAIMS
from pytest_edgeai.devices import Device
from pytest_edgeai.energy import (
    EnergyReading,
    IdleBaseline,
    MeterError,
    MeterUnavailable,
    MeterWindow,
    energy_metrics,
    make_meter,
    measure_idle,
    record_energy,
)
from pytest_edgeai.energy.reading import SensorInfo, build_reading, energy_between
from pytest_edgeai.energy.sampling import SampledMeter
from pytest_edgeai.errors import ConfigError
from pytest_edgeai.results.record import Record

INFO = SensorInfo("fake", "a fake rail", update_period_s=0.01)


def device(name: str = "dut", price_usd: float | None = None, **meter) -> Device:
    return Device(name=name, kind="cpu", backend="onnxruntime", price_usd=price_usd, meter=meter)


class FakeMeter(SampledMeter):
    """A polled meter whose value and failures the test controls."""

    def __init__(self, watts: float = 2.0, rate_hz: float = 0.2, fail_on_call: int | None = None):
        super().__init__(rate_hz)
        self.info = INFO
        self.watts = watts
        self.calls = 0
        self.fail_on_call = fail_on_call

    def _read(self) -> float:
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise OSError("sensor vanished")
        return self.watts


def reading(joules: float = 10.0, duration: float = 2.0, estimated: bool = False) -> EnergyReading:
    info = SensorInfo("fake", "a fake rail", 0.01, estimated)
    return build_reading([(0.0, 0.0), (duration, joules)], "joules", duration, info)


# ---------------------------------------------------------------- integration

def test_power_trapezoid_holds_the_edges():
    samples = [(0.5, 2.0), (1.5, 4.0)]
    # 0..0.5 held at 2 W, 0.5..1.5 ramps 2->4 W, 1.5..2.0 held at 4 W
    assert energy_between(samples, "watts", 0.0, 2.0) == pytest.approx(1.0 + 3.0 + 2.0)


def test_counter_interpolates_at_the_edges():
    samples = [(0.0, 100.0), (1.0, 102.0), (2.0, 110.0)]
    assert energy_between(samples, "joules", 0.5, 1.5) == pytest.approx(1.0 + 4.0)


def test_a_stream_counter_is_extended_to_the_window_edges_at_its_mean_power():
    # a serial meter printing accumulated joules once a second, read 0.6 s into a 5 s window and last at
    # 4.6 s: 4 J over those 4 s is 1 W, so 5 J over the window, not the 4 J between the reads alone
    samples = [(0.6, 10.0), (1.6, 11.0), (2.6, 12.0), (3.6, 13.0), (4.6, 14.0)]
    r = build_reading(samples, "joules", 5.0, SensorInfo("serial", "usb", None))
    assert r.joules == pytest.approx(5.0) and r.mean_w == pytest.approx(1.0)
    assert any("read first at 0.6 s and last at 4.6 s of the 5 s window" in w for w in r.warnings)
    polled = build_reading([(0.0, 10.0), (5.0, 15.0)], "joules", 5.0, INFO)  # reads at both edges: as it was
    assert polled.joules == pytest.approx(5.0) and not any("extrapolated" in w for w in polled.warnings)


def test_reading_flags_a_window_shorter_than_the_update_period():
    info = SensorInfo("nvml", "GPU 0 board", update_period_s=0.1)
    r = build_reading([(0.0, 1.0), (0.025, 1.2), (0.05, 1.5)], "joules", 0.05, info)
    assert any(w.startswith("window 0.05 s shorter than the sensor's update period 0.1 s") for w in r.warnings)
    assert r.mean_w == pytest.approx(10.0)
    assert r.peak_w == pytest.approx(12.0)


def test_reading_flags_a_single_power_sample():
    r = build_reading([(0.2, 3.0)], "watts", 1.0, INFO)
    assert r.joules == pytest.approx(3.0)
    assert any(w.startswith("only 1 power sample") for w in r.warnings)


def test_unknown_update_period_comes_from_sample_spacing():
    r = build_reading([(0.0, 1.0), (0.25, 1.0), (0.5, 1.0), (0.75, 1.0)], "watts", 0.75,
                      SensorInfo("serial", "usb", None))
    assert r.update_period_s == pytest.approx(0.25)


def test_reading_to_dict_is_json_ready():
    import json

    data = reading().to_dict()
    assert json.loads(json.dumps(data))["samples"] == [[0.0, 0.0], [2.0, 10.0]]
    assert data["covers"] == "a fake rail" and data["idle_w"] is None


# ---------------------------------------------------------------- sampling thread

def test_sampling_thread_collects_and_stops():
    meter = FakeMeter(watts=3.0, rate_hz=200)
    meter.start()
    sampler = meter._sampler
    wait_for(lambda: len(sampler.samples) >= 3)
    r = meter.stop()
    assert not sampler.alive
    assert r.mean_w == pytest.approx(3.0)
    assert len(r.samples) >= 5  # start and stop reads plus the thread's


def test_sampling_thread_stops_when_the_read_raises():
    before = threading.active_count()
    meter = FakeMeter(rate_hz=200, fail_on_call=3)
    meter.start()
    sampler = meter._sampler
    wait_for(lambda: not sampler.alive)
    with pytest.raises(MeterError, match="failed during the window: OSError: sensor vanished"):
        meter.stop()
    assert not sampler.alive
    assert threading.active_count() == before
    meter.start()  # the meter is usable again after a failed window
    assert meter.stop().mean_w == pytest.approx(2.0)


def test_a_failing_first_read_leaves_no_thread():
    before = threading.active_count()
    meter = FakeMeter(fail_on_call=1)
    with pytest.raises(MeterError, match="sensor vanished"):
        meter.start()
    assert meter._sampler is None and threading.active_count() == before


def test_rate_zero_reads_only_the_edges_and_says_so_for_power():
    meter = FakeMeter(watts=3.0, rate_hz=0.0)
    meter.start()
    assert not meter._sampler.alive
    r = meter.stop()
    assert [v for _, v in r.samples] == [3.0, 3.0]
    assert any(w.startswith("rate_hz = 0") for w in r.warnings)


def test_close_stops_a_running_window_and_misuse_is_reported():
    meter = FakeMeter(rate_hz=200)
    with pytest.raises(MeterError, match="without start"):
        meter.stop()
    meter.start()
    with pytest.raises(MeterError, match="called twice"):
        meter.start()
    sampler = meter._sampler
    meter.close()
    assert not sampler.alive and meter._sampler is None


def test_idle_baseline_is_subtracted_from_later_readings():
    meter = FakeMeter(watts=2.0)
    baseline = measure_idle(meter, 0.01)
    assert baseline.idle_w == pytest.approx(2.0)
    meter.watts = 5.0
    meter.start()
    r = meter.stop()
    assert r.idle_w == pytest.approx(2.0)
    assert r.mean_w == pytest.approx(5.0)
    assert r.above_idle_mean_w == pytest.approx(3.0)
    assert r.above_idle_joules == pytest.approx(3.0 * r.duration_s)


def test_below_idle_is_flagged():
    meter = FakeMeter(watts=4.0)
    measure_idle(meter, 0.01)
    meter.watts = 1.0
    meter.start()
    assert any("above idle is negative" in w for w in meter.stop().warnings)


# ---------------------------------------------------------------- options and registry

def test_none_meter_is_unavailable_with_the_reason():
    with pytest.raises(MeterUnavailable, match=r"devices\.dut\.meter\.source is 'none'"):
        make_meter(device(source="none"))
    with pytest.raises(MeterUnavailable):
        make_meter(Device(name="dut", kind="cpu", backend="onnxruntime"))


def test_unknown_source_suggests_the_close_one():
    with pytest.raises(ConfigError,
                       match=r"devices\.dut\.meter\.source: unknown meter 'rapll' \(did you mean 'rapl'\?\)"):
        make_meter(device(source="rapll"))


def test_every_option_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as err:
        make_meter(device(source="command", rate=5, reports="volts", timeout_s=0, scale=True))
    problems = err.value.problems
    assert "devices.dut.meter.rate: unknown option (did you mean 'rate_hz'?)" in problems[0]
    joined = "\n".join(problems)
    assert "devices.dut.meter.command: is required" in joined
    assert "devices.dut.meter.reports: 'volts' is not allowed" in joined
    assert "devices.dut.meter.timeout_s: 0 must be > 0" in joined
    assert "devices.dut.meter.scale: True is not a finite number" in joined
    assert len(problems) == 5


def test_check_meter_for_config_validation():
    assert energy.check_meter(device(source="rapl", zones=[1])) == [
        "devices.dut.meter.zones: [1] is not a string or a non-empty array of strings"]
    assert energy.check_meter(device(source="rapl", idle_s=2)) == []
    assert energy.idle_seconds(device(source="rapl", idle_s=2)) == 2.0


def test_a_meter_missing_a_device_key_it_needs_is_a_devices_toml_problem():
    # the estimate is TDP x CPU utilisation: without tdp_w the file validated, then every metered
    # measurement on the device failed with the ConfigError, its throughput included
    assert energy.check_meter(device(source="estimate")) == [
        "devices.dut.tdp_w: required by meter source 'estimate'"]
    with pytest.raises(ConfigError, match=r"devices\.dut\.tdp_w: required by meter source 'estimate'"):
        config_mod.parse({"devices": {"dut": {"kind": "cpu", "backend": "onnxruntime",
                                              "meter": {"source": "estimate"}}}})
    assert energy.check_meter(Device(name="dut", kind="cpu", backend="onnxruntime", tdp_w=15.0,
                                     meter={"source": "estimate"})) == []


def test_bad_pattern_is_a_config_error():
    with pytest.raises(ConfigError, match=r"devices\.dut\.meter\.pattern: .* needs a group"):
        make_meter(device(source="command", command="echo 1", pattern=r"\d+"))


def test_a_lab_meter_from_an_entry_point(monkeypatch):
    from pytest_edgeai.keys import Key

    class LabMeter(FakeMeter):
        OPTIONS = (Key("channel", "integer", 0),)

        def __init__(self, dev, rate_hz, channel):
            super().__init__(watts=float(channel), rate_hz=rate_hz)

    ep = types.SimpleNamespace(name="labmeter", load=lambda: LabMeter)
    monkeypatch.setattr("pytest_edgeai.registry.entry_points",
                        lambda group: {"labmeter": ep} if group == energy.ENTRY_POINT_GROUP else {})
    meter = make_meter(device(source="labmeter", channel=7))
    meter.start()
    assert meter.stop().mean_w == pytest.approx(7.0)
    assert "labmeter" in energy.known_sources()
    with pytest.raises(ConfigError, match="channel"):
        make_meter(device(source="labmeter", channel="x"))


# ---------------------------------------------------------------- metrics

def test_energy_metrics_values_units_and_method():
    m = energy_metrics(reading(joules=10.0, duration=2.0), inferences=100, throughput_ips=50.0, price_usd=100.0)
    assert m["joules_per_inference"] == {"value": pytest.approx(0.1), "unit": "J", "method": "measured",
                                         "source": m["joules_per_inference"]["source"]}
    assert m["mj_per_query"]["value"] == pytest.approx(100.0)
    assert m["mean_w"]["value"] == pytest.approx(5.0)
    assert m["inferences_per_s_per_w"]["value"] == pytest.approx(10.0)
    assert m["inferences_per_s_per_usd"]["value"] == pytest.approx(0.5)
    assert "a fake rail" in m["mean_w"]["source"]
    assert "idle_w" not in m


def test_energy_metrics_estimated_and_without_meter_or_price():
    est = energy_metrics(reading(estimated=True), 10, 5.0, None)
    assert {v["method"] for v in est.values()} == {"estimated"}
    assert "inferences_per_s_per_usd" not in est
    assert set(energy_metrics(None, 10, 5.0, 99.0)) == {"inferences_per_s_per_usd"}


def test_energy_metrics_above_idle_and_batched_queries():
    r = reading(joules=10.0, duration=2.0).with_baseline(IdleBaseline(1.0, 1.0, False))
    m = energy_metrics(r, inferences=80, throughput_ips=40.0, price_usd=None, queries=10)
    assert m["joules_per_inference_above_idle"]["value"] == pytest.approx(8.0 / 80)
    assert m["mean_w_above_idle"]["value"] == pytest.approx(4.0)
    assert m["mj_per_query"]["value"] == pytest.approx(1000.0)


def test_a_counter_that_did_not_move_or_went_backwards_gives_no_energy_figure():
    # 0 J over a window (a stale counter) would be 0 J per inference: a max_joules_per_inference claim met
    # by a meter that measured nothing; a counter reset mid-window gives less than nothing
    for joules in (0.0, -3.0):
        record = Record("energy", "t", {}, {}, {}, {})
        record_energy(record, reading(joules=joules), None, inferences=100, throughput_ips=50.0, price_usd=100.0)
        assert set(record.metrics) == {"inferences_per_s_per_usd"}  # the price figure needs no meter
        assert record.extra["energy"]["measured"] is False
        assert "no energy figure rests on it" in record.extra["energy"]["reason"]
        assert record.extra["energy"]["reading"]["joules"] == joules  # what the meter said is kept
    record = Record("energy", "t", {}, {}, {}, {})
    record_energy(record, reading(joules=10.0), None, inferences=100, throughput_ips=50.0, price_usd=None)
    assert record.extra["energy"]["measured"] is True
    assert record.metrics["joules_per_inference"]["value"] == pytest.approx(0.1)


# ---------------------------------------------------------------- metered runs

def test_a_failing_meter_leaves_no_reading_and_says_why():
    meter = FakeMeter(rate_hz=200, fail_on_call=2)
    window = MeterWindow(meter)
    window("start")
    wait_for(lambda: meter._sampler is not None and not meter._sampler.alive)
    window("stop")
    window.close()
    assert window.reading is None
    assert "sensor vanished" in window.reason


def test_a_meter_raising_its_vendor_s_own_exception_costs_only_the_energy():
    class Unplugged(FakeMeter):
        def _begin(self) -> None:  # e.g. pyserial's ValueError for a port setting the device no longer takes
            raise ValueError("port gone")

    window = MeterWindow(Unplugged(), idle_s=0.0)
    window("start")  # raised out of the window before: the measurement around it failed with it
    window("stop")
    window.close()
    assert window.reading is None and window.meter is None
    assert window.reason == "energy not measured: the meter failed to start: ValueError: port gone"


def test_without_a_meter_the_window_does_nothing_and_keeps_the_reason():
    window = MeterWindow(None, "no meter here")
    window("start")
    window("stop")
    window.close()
    assert (window.reading, window.reason) == (None, "no meter here")


def test_a_window_left_open_by_a_failing_workload_is_stopped_on_close():
    meter = FakeMeter()
    window = MeterWindow(meter)
    window("start")
    window.close()  # the loop raised before window("stop")
    assert meter._sampler is None and window.reading is None


def test_the_window_covers_only_what_lies_between_its_edges():
    window = MeterWindow(FakeMeter(watts=2.0), idle_s=0.01)
    window.idle()
    time.sleep(0.05)  # e.g. the model load and warm-up: not in the window
    window("start")
    time.sleep(0.02)
    window("stop")
    window.close()
    r = window.reading
    assert r is not None and r.duration_s < 0.045
    assert r.mean_w == pytest.approx(2.0) and r.idle_w == pytest.approx(2.0)


# ---------------------------------------------------------------- claims

def test_energy_claims_are_defined_and_parse_from_devices_toml():
    assert set(CLAIMS["energy"]) >= {"max_joules_per_inference", "min_inferences_per_s_per_w",
                                     "min_inferences_per_s_per_usd", "min_ips_per_usd_ratio"}
    cfg = config_mod.parse({"devices": {"tpu": {"kind": "edgetpu", "backend": "onnxruntime", "claims": {"energy": {
        "min_ips_per_usd_ratio": {"threshold": 10, "against": "cloud"},
        "max_joules_per_inference": {"mobilenet_v2": {"threshold": 0.01, "allow_estimate": True}}}}}}})
    spec = cfg.devices["tpu"].claim("energy", "min_ips_per_usd_ratio", "mobilenet_v2")
    assert spec.extras == {"against": "cloud"}
    with pytest.raises(ConfigError, match="unknown key"):
        config_mod.parse({"devices": {"tpu": {"kind": "edgetpu", "backend": "onnxruntime", "claims": {
            "energy": {"min_ips_per_usd_ratio": {"threshold": 10, "againts": "cloud"}}}}}})
