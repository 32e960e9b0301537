"""Tenants, fairness, the sweep, placement, concurrent models and model switching, with fakes."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from pytest_edgeai.backends.base import TensorSpec
from pytest_edgeai.concurrency.placement import Dispatcher, Worker, compare_placement, placement_metrics
from pytest_edgeai.concurrency.studies import (
    measure_switching,
    models_metrics,
    run_concurrent_models,
    run_sweep,
    tenant_counts,
)
from pytest_edgeai.concurrency.tenants import (
    ThreadRunner,
    Window,
    fairness,
    jain_index,
    plan_threads,
    split_device,
    step_metrics,
)
from pytest_edgeai.devices import Device
from pytest_edgeai.errors import BackendError
from pytest_edgeai.models.model import Model

WINDOW = Window(warmup_s=0.01, duration_s=0.08, timeout_s=0.5)
CPU = Device(name="cpu", kind="cpu", backend="onnxruntime", options={"providers": ["CPUExecutionProvider"]})
MODEL = Model(name="fake", path=Path("fake.onnx"), format="onnx", source="file")


class FakeSession:
    """A session with a known speed; it can crash after some calls or block until released."""

    outputs: list[TensorSpec] = []

    def __init__(self, delay_s: float = 0.001, options: dict | None = None, crash_after: int | None = None,
                 block: threading.Event | None = None):
        self.inputs = [TensorSpec("x", (1, 4), "float32")]
        self.delay_s = delay_s
        self.options = dict(options or {})
        self.crash_after = crash_after
        self.block = block
        self.calls = 0
        self.closed = False

    def run(self, feeds):
        self.calls += 1
        if self.crash_after is not None and self.calls > self.crash_after:
            raise RuntimeError("tenant exploded")
        if self.block is not None and self.calls > 1:
            self.block.wait()
        time.sleep(self.delay_s)
        return []

    def settings(self):
        return {"options": self.options}

    def close(self):
        self.closed = True


class FakeLoader:
    """Loads FakeSessions; the ``refuse_on``-th load raises like a device refusing a session."""

    def __init__(self, refuse_on: int | None = None, **session_kwargs):
        self.refuse_on = refuse_on
        self.session_kwargs = session_kwargs
        self.loaded: list[FakeSession] = []

    def __call__(self, model, device):
        if self.refuse_on is not None and len(self.loaded) + 1 == self.refuse_on:
            raise BackendError(f"{device.name} refuses another session")
        session = FakeSession(options=device.options, **self.session_kwargs)
        self.loaded.append(session)
        return session


# fairness maths

def test_jain_index_is_one_for_equal_shares_and_one_over_n_for_a_monopoly():
    assert jain_index([5.0, 5.0, 5.0, 5.0]) == pytest.approx(1.0)
    assert jain_index([9.0, 0.0, 0.0]) == pytest.approx(1 / 3)
    assert jain_index([1.0, 2.0, 3.0]) == pytest.approx(36 / 42)  # (1+2+3)^2 / (3 * (1+4+9))


def test_jain_index_refuses_nonsense():
    with pytest.raises(ValueError):
        jain_index([])
    with pytest.raises(ValueError):
        jain_index([1.0, -1.0])
    assert jain_index([0.0, 0.0]) == 1.0


def test_fairness_shares_sum_to_one_with_min_and_max():
    f = fairness([30.0, 10.0])
    assert sum(f.shares) == pytest.approx(1.0)
    assert (f.min_share, f.max_share) == pytest.approx((0.25, 0.75))
    assert f.min_max_ratio == pytest.approx(1 / 3)
    assert f.jain == pytest.approx(1600 / (2 * 1000))


# thread plan

def test_each_tenant_gets_its_share_of_the_cores_unless_devices_toml_pins_it():
    device, plan = plan_threads(CPU, 4, cores=8)
    assert device.options["intra_op_num_threads"] == 2 and plan.threads_per_tenant == 2
    device, plan = plan_threads(CPU, 16, cores=8)
    assert device.options["intra_op_num_threads"] == 1
    pinned = Device(name="cpu", kind="cpu", backend="onnxruntime", options={"intra_op_num_threads": 3})
    device, plan = plan_threads(pinned, 4, cores=8)
    assert device.options["intra_op_num_threads"] == 3 and "devices.cpu.options" in plan.source
    zero = Device(name="cpu", kind="cpu", backend="onnxruntime", options={"intra_op_num_threads": 0})
    assert plan_threads(zero, 2, cores=8)[0].options["intra_op_num_threads"] == 4  # 0 = the runtime's default
    tflite = Device(name="tflite", kind="cpu", backend="litert")
    assert plan_threads(tflite, 4, cores=8)[0].options == {"num_threads": 2}
    other = Device(name="ov", kind="cpu", backend="openvino")
    device, plan = plan_threads(other, 4, cores=8)
    assert device is other and plan.threads_per_tenant is None


def test_split_device_names_each_part_and_shares_the_cores():
    parts = split_device(CPU, 2, cores=2)
    assert [d.name for d in parts] == ["cpu#0", "cpu#1"]
    assert all(d.options["intra_op_num_threads"] == 1 for d in parts)


# the sweep

def test_tenant_counts_double_up_to_the_limit():
    assert tenant_counts(1) == [1]
    assert tenant_counts(4) == [1, 2, 4]
    assert tenant_counts(6) == [1, 2, 4, 6]
    with pytest.raises(ValueError):
        tenant_counts(0)


def test_sweep_measures_each_step_with_per_tenant_threads():
    loader = FakeLoader()
    seen = []
    sweep = run_sweep(MODEL, CPU, ThreadRunner(loader), WINDOW, limit=2, on_step=seen.append)
    assert [s.tenants for s in sweep.steps] == [1, 2] and all(s.ok for s in sweep.steps)
    assert seen == sweep.steps
    assert "limit" in sweep.stopped
    step = sweep.step(2)
    assert len(step.outcomes) == 2 and all(o.latencies_ns for o in step.outcomes)
    threads = [o.settings["options"]["intra_op_num_threads"] for o in step.outcomes]
    assert threads == [step.threads.threads_per_tenant] * 2
    assert all(s.closed for s in loader.loaded)
    row = step.to_dict()
    assert row["aggregate_ips"] == pytest.approx(sum(r["throughput_ips"] for r in row["per_tenant"]))
    assert 0 < row["fairness"]["jain"] <= 1
    metrics = step_metrics(step)
    assert metrics["tenants"]["value"] == 2 and metrics["latency_p90_ms"]["value"] > 0


def test_sweep_stops_cleanly_when_the_third_load_is_refused():
    loader = FakeLoader(refuse_on=3)  # step 1 loads once, step 2 loads twice: the second of those fails
    sweep = run_sweep(MODEL, CPU, ThreadRunner(loader), WINDOW, limit=8)
    assert [s.tenants for s in sweep.steps] == [1, 2]
    assert sweep.steps[0].ok and sweep.steps[0].aggregate_ips > 0
    failed = sweep.steps[1]
    assert not failed.ok and "refuses another session" in failed.reason
    assert failed.to_dict()["error"] == failed.reason
    assert sweep.max_tenants_ok == 1 and "stopped at 2 tenants" in sweep.stopped
    assert all(s.closed for s in loader.loaded)
    with pytest.raises(ValueError, match="refuses another session"):  # a failed step has no figures to give
        step_metrics(failed)


def test_a_crashing_tenant_fails_its_step_with_the_reason():
    sweep = run_sweep(MODEL, CPU, ThreadRunner(FakeLoader(crash_after=3)), WINDOW, limit=2)
    assert len(sweep.steps) == 1 and not sweep.steps[0].ok
    assert "crashed: RuntimeError: tenant exploded" in sweep.steps[0].reason
    assert sweep.speedup(2) is None


def test_a_hanging_tenant_is_reported_hung_and_the_sweep_stops():
    release = threading.Event()
    try:
        window = Window(warmup_s=0.0, duration_s=0.05, timeout_s=0.2)
        sweep = run_sweep(MODEL, CPU, ThreadRunner(FakeLoader(block=release)), window, limit=4)
        assert len(sweep.steps) == 1
        assert "hung" in sweep.steps[0].reason and not sweep.steps[0].ok
    finally:
        release.set()


def test_a_runner_that_fails_itself_fails_the_step_not_the_caller():
    class Broken:
        mode = "thread"

        def run(self, tenants, window):
            raise OSError("cannot spawn")

    sweep = run_sweep(MODEL, CPU, Broken(), WINDOW, limit=2)
    assert len(sweep.steps) == 1 and "runner failed: OSError: cannot spawn" in sweep.steps[0].reason


# concurrent models

def test_concurrent_models_compare_together_with_alone():
    other = Model(name="other", path=Path("other.onnx"), format="onnx", source="file")
    result = run_concurrent_models([MODEL, other], CPU, ThreadRunner(FakeLoader()), WINDOW)
    assert result.ok and len(result.alone) == 2 and result.together.tenants == 2
    assert result.alone[0].threads.threads_per_tenant >= result.together.threads.threads_per_tenant
    assert result.gain == pytest.approx(sum(result.ratios()))
    metrics = models_metrics(result)
    assert {"fake_alone_ips", "other_together_ips", "concurrency_gain"} <= set(metrics)


# dynamic placement

def test_the_dispatcher_sends_more_requests_to_the_faster_device():
    fast, slow = FakeSession(delay_s=0.0005), FakeSession(delay_s=0.02)
    result = Dispatcher([Worker("slow", slow, {}), Worker("fast", fast, {})], in_flight=4).run(0.3)
    served = dict(zip(result.workers, result.served))
    assert served["fast"] > 3 * served["slow"] > 0
    assert result.completed == fast.calls + slow.calls and not result.errors


def test_a_failing_device_leaves_the_rotation_and_the_other_keeps_serving():
    broken, good = FakeSession(crash_after=0), FakeSession(delay_s=0.001)
    result = Dispatcher([Worker("broken", broken, {}), Worker("good", good, {})]).run(0.1)
    assert "tenant exploded" in result.errors["broken"]
    assert result.served[0] == 0 and result.served[1] > 0


def test_placement_compares_the_dispatcher_with_the_best_single_device():
    workers = [Worker("a", FakeSession(delay_s=0.002), {}), Worker("b", FakeSession(delay_s=0.004), {})]
    result = compare_placement(workers, 0.1)
    assert [r.workers for r in result.alone] == [["a"], ["b"]]
    assert result.together.workers == ["a", "b"]
    assert result.best_single.throughput_ips == max(r.throughput_ips for r in result.alone)
    assert result.speedup == pytest.approx(result.together.throughput_ips / result.best_single.throughput_ips)
    assert placement_metrics(result)["placement_speedup"]["value"] == result.speedup


def test_placement_rounds_alternate_their_order_so_a_drift_within_a_round_cancels(monkeypatch):
    order: list[list[str]] = []
    real_run = Dispatcher.run

    def run(self, duration_s):
        order.append([w.name for w in self.workers])
        return real_run(self, duration_s)

    monkeypatch.setattr(Dispatcher, "run", run)
    workers = [Worker("a", FakeSession(delay_s=0.001), {}), Worker("b", FakeSession(delay_s=0.001), {})]
    first = compare_placement(workers, 0.02)
    second = compare_placement(workers, 0.02, together_first=True)
    assert order == [["a"], ["b"], ["a", "b"], ["a", "b"], ["a"], ["b"]]
    assert first.to_dict()["order"] == "each alone, then together"
    assert second.to_dict()["order"] == "together, then each alone"
    assert [r.workers for r in second.alone] == [["a"], ["b"]] and second.together.workers == ["a", "b"]


# model switching (EdgeTPU-style parameter cache, on a fake clock: no timing involved)

class FakeTPU:
    """One parameter cache: running a model whose parameters are not resident costs a swap."""

    def __init__(self):
        self.now = 0
        self.resident: str | None = None

    def clock(self) -> int:
        return self.now


class FakeTPUSession(FakeSession):
    def __init__(self, tpu: FakeTPU, cache_token: str, run_ns: int, swap_ns: int):
        super().__init__()
        self.tpu, self.token, self.run_ns, self.swap_ns = tpu, cache_token, run_ns, swap_ns

    def run(self, feeds):
        if self.tpu.resident != self.token:
            self.tpu.now += self.swap_ns
            self.tpu.resident = self.token
        self.tpu.now += self.run_ns
        return []


def test_separately_compiled_models_pay_the_swap_and_co_compiled_ones_do_not():
    tpu = FakeTPU()
    separate = {"a": FakeTPUSession(tpu, "a", 1_000_000, 5_000_000),
                "b": FakeTPUSession(tpu, "b", 2_000_000, 5_000_000)}
    result = measure_switching(separate, {"a": {}, "b": {}}, rounds=10, label="separate", clock=tpu.clock)
    assert result.alone_ms == {"a": 1.0, "b": 2.0}
    assert result.overhead_ms == {"a": 5.0, "b": 5.0} and result.mean_overhead_ms == 5.0
    shared = {"a": FakeTPUSession(tpu, "ab", 1_000_000, 5_000_000),
              "b": FakeTPUSession(tpu, "ab", 2_000_000, 5_000_000)}
    result = measure_switching(shared, {"a": {}, "b": {}}, rounds=10, label="co-compiled", clock=tpu.clock)
    assert result.mean_overhead_ms == 0.0
    with pytest.raises(ValueError):
        measure_switching({"a": separate["a"]}, {"a": {}}, rounds=1)
