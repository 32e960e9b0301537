"""Tenants and the memory probe in spawned child processes: real allocation failures, deaths, hangs.

The loaders here are module-level classes so that a spawned child can unpickle them (it imports
this module by name from the same sys.path).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from pytest_edgeai.backends.base import TensorSpec
from pytest_edgeai.concurrency.capacity import (
    MIB,
    CapacityPlan,
    CapacityResult,
    CapacityStep,
    RssProbe,
    available_bytes,
    capacity_metrics,
    probe_capacity,
)
from pytest_edgeai.concurrency.tenants import ProcessRunner, TenantSpec, Window
from pytest_edgeai.devices import Device
from pytest_edgeai.models.model import Model

CPU = Device(name="cpu", kind="cpu", backend="onnxruntime", options={"providers": ["CPUExecutionProvider"]})
MODEL = Model(name="fake", path=Path("fake.onnx"), format="onnx", source="file")


class HeavySession:
    """Holds ``mib`` MiB of touched memory: each one loaded really occupies it."""

    outputs: list[TensorSpec] = []

    def __init__(self, mib: int, behaviour: str = ""):
        self.inputs = [TensorSpec("x", (1, 4), "float32")]
        self.block = bytearray(mib * MIB)
        self.block[::4096] = b"\x01" * len(self.block[::4096])  # touch every page
        self.behaviour = behaviour

    def run(self, feeds):
        if self.behaviour == "crash":
            raise RuntimeError("tenant exploded")
        if self.behaviour == "die":
            os._exit(3)
        if self.behaviour == "hang":
            time.sleep(3600)
        time.sleep(0.001)
        return []

    def settings(self):
        return {"mib": len(self.block) // MIB}

    def close(self):
        self.block = bytearray()


class HeavyLoader:
    """Each load takes ``mib`` MiB; ``behaviour`` applies from the ``from_load``-th load on."""

    def __init__(self, mib: int, behaviour: str = "", from_load: int = 1):
        self.mib, self.behaviour, self.from_load = mib, behaviour, from_load
        self.count = 0

    def __call__(self, model, device):
        self.count += 1
        return HeavySession(self.mib, self.behaviour if self.count >= self.from_load else "")


def _capacity(loader, max_tenants=8, budget_mb=10_000, address_space_mb=None, timeout=30.0):
    plan = CapacityPlan(max_tenants=max_tenants, budget_bytes=budget_mb * MIB, step_timeout_s=timeout,
                        address_space_mb=address_space_mb)
    return probe_capacity(MODEL, CPU, plan, (64 * 1024 * MIB, "test"), loader=loader)


def test_running_out_of_address_space_fails_one_step_and_keeps_the_earlier_ones():
    result = _capacity(HeavyLoader(64), max_tenants=8, address_space_mb=200)
    ok = [s for s in result.steps if s.ok]
    assert 1 <= len(ok) <= 3  # 64 MiB each under a 200 MiB cap: the third or fourth load cannot map
    failed = result.steps[-1]
    assert not failed.ok and failed.tenants == len(ok) + 1 and "MemoryError" in failed.error
    assert result.observed_max == len(ok)
    assert result.footprints()[-1] >= 60 * MIB
    assert f"tenant {failed.tenants} failed" in result.stopped


def test_the_budget_bounds_the_observed_maximum_and_the_prediction_matches_it():
    result = _capacity(HeavyLoader(24), max_tenants=20, budget_mb=110)
    assert result.steps[-1].ok and "past the budget" in result.stopped
    assert result.observed_max == 4  # 4 x 24 MiB = 96 fits in 110 MiB, a fifth does not
    assert result.footprint_bytes == pytest.approx(24 * MIB, rel=0.1)
    assert result.predicted_budget_max == 4 and result.prediction_error == 0.0
    assert result.predicted_device_max > 1000  # 64 GiB offered / 24 MiB
    metrics = capacity_metrics(result)
    assert metrics["observed_max_tenants"]["value"] == 4 and metrics["predicted_max_tenants"]["method"] == "predicted"


def test_a_child_that_dies_ends_the_probe_at_that_tenant():
    result = _capacity(HeavyLoader(1, behaviour="die", from_load=2), max_tenants=5)
    assert [s.ok for s in result.steps] == [True, False]
    assert "died while loading tenant 2" in result.steps[-1].error


def test_capacity_arithmetic_separates_the_runtime_overhead_from_the_footprint():
    plan = CapacityPlan(max_tenants=10, budget_bytes=100 * MIB)
    result = CapacityResult(plan, 1000 * MIB, "test", baseline_bytes=0,
                            steps=[CapacityStep(1, 40 * MIB), CapacityStep(2, 60 * MIB), CapacityStep(3, 80 * MIB),
                                   CapacityStep(4, 100 * MIB), CapacityStep(5, 120 * MIB)])
    assert result.footprints() == [40 * MIB, 20 * MIB, 20 * MIB, 20 * MIB, 20 * MIB]
    assert result.footprint_bytes == 20 * MIB and result.overhead_bytes == 20 * MIB
    assert result.predicted_device_max == 49 and result.predicted_budget_max == 4
    assert result.observed_max == 4 and result.prediction_error == 0.0
    unmeasurable = CapacityResult(plan, 1000 * MIB, "test", baseline_bytes=0,
                                  steps=[CapacityStep(1, 0), CapacityStep(2, 0)])
    assert unmeasurable.predicted_budget_max is None and unmeasurable.prediction_error is None


def test_memory_readings_come_from_the_host():
    assert RssProbe().used_bytes() > 0
    size, source = available_bytes(CPU)
    assert size > 0 and "MemAvailable" in source
    sized = Device(name="tpu", kind="edgetpu", backend="litert", memory_mb=8)
    assert available_bytes(sized) == (8 * MIB, "devices.tpu.memory_mb")


WINDOW = Window(warmup_s=0.0, duration_s=0.2, timeout_s=20.0)


def test_process_tenants_run_together_and_report_their_latencies():
    specs = [TenantSpec(f"t{i}", MODEL, CPU) for i in range(2)]
    outcomes = ProcessRunner(HeavyLoader(1)).run(specs, WINDOW)
    assert [o.ok for o in outcomes] == [True, True]
    assert all(o.latencies_ns and o.settings == {"mib": 1} for o in outcomes)


def test_a_crashing_process_tenant_reports_why():
    outcomes = ProcessRunner(HeavyLoader(1, behaviour="crash", from_load=1)).run([TenantSpec("t0", MODEL, CPU)], WINDOW)
    assert "RuntimeError: tenant exploded" in outcomes[0].error


def test_a_hanging_process_tenant_is_killed_and_reported():
    window = Window(warmup_s=0.0, duration_s=0.1, timeout_s=3.0)
    outcomes = ProcessRunner(HeavyLoader(1, behaviour="hang")).run([TenantSpec("t0", MODEL, CPU)], window)
    assert outcomes[0].error.startswith("load failed: hung")  # it hangs in its first (warm-up) run
