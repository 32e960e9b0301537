"""The concurrency suite's memory-capacity test, driven through pytester on fake backends whose
tenants take a set amount of real memory: nothing fits in the budget -> skipped with the reason,
nothing loads -> failed, never passed with an observed maximum of 0. The backend is registered from a
conftest, so the probe's spawned child must learn of it from the parent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import backends_conftest, copy_suite, devices_toml

QUICK = ("--edgeai-profile", "quick", "-p", "no:cacheprovider", "-p", "no:randomly", "-rs")

BACKEND = '''
import numpy as np
from pytest_edgeai.backends.base import Availability, TensorSpec


class Session:
    inputs = [TensorSpec("x", ("N", 4), "float32")]
    outputs = [TensorSpec("y", ("N", 4), "float32")]

    def __init__(self, mib):
        self.ballast = np.ones(mib << 18, np.float32)  # mib MiB, written: resident, not just mapped

    def run(self, feeds):
        return [feeds["x"]]

    def settings(self):
        return {}

    def close(self):
        self.ballast = None


class Backend:
    name = "ballast"

    def probe(self, device):
        return Availability(True, runtime="ballast", runtime_version="0")

    def load(self, model, device):
        return Session(int(device.options["mib"]))
'''

DEVICES = devices_toml({"light": {"options": {"mib": 1}}, "heavy": {"options": {"mib": 300}}},
                       kind="cpu", backend="ballast")


@pytest.fixture
def lab(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.Pytester:
    monkeypatch.setenv("EDGEAI_LOCK_DIR", str(tmp_path / "locks"))
    pytester.makepyfile(ballast=BACKEND, conftest=backends_conftest(ballast="ballast:Backend"))
    pytester.makefile(".toml", devices=DEVICES)
    copy_suite("concurrency", pytester.path)
    return pytester


def test_a_tenant_larger_than_the_budget_skips_the_capacity_test_and_keeps_the_record(lab):
    result = lab.runpytest("--device", "heavy,light", "-k", "memory_capacity", *QUICK)
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*SKIPPED*mobilenet_v2 on heavy: no tenant fitted in the profile's memory budget "
                                 "of 256 MiB (one tenant with its runtime took 3* MiB)*"])
    run = (lab.path / "reports" / "latest").resolve()
    by_device = {r["device"]["name"]: r for r in (json.loads(p.read_text()) for p in (run / "records").glob("*.json"))}
    assert by_device["heavy"]["metrics"]["observed_max_tenants"]["value"] == 0
    assert by_device["light"]["metrics"]["observed_max_tenants"]["value"] > 0


def test_a_tenant_that_cannot_load_fails_the_capacity_test(lab):
    (lab.path / "devices.toml").write_text(DEVICES.replace("mib = 1", 'mib = "one"'))
    result = lab.runpytest("--device", "light", "-k", "memory_capacity", *QUICK)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*mobilenet_v2 on light: not even one tenant loaded: tenant 1 failed: ValueError*"])


def test_a_min_tenants_claim_probes_at_its_own_budget_capped_by_what_the_device_has(lab):
    """A tenant count means something only with its budget: the claim's budget_mb is probed (not the quick
    profile's 256 MiB, where 32 one-MiB tenants would fit), the scenario names the budget configured so records
    pair across hosts, and a device with less memory probes what it has and says so."""
    claims = ("[devices.{0}.claims.concurrency]\n"
              "min_tenants = {{ mobilenet_v2 = {{ threshold = 1, budget_mb = {1} }} }}\n")
    devices = devices_toml({"light": {"options": {"mib": 1}}, "small": {"memory_mb": 16, "options": {"mib": 1}}},
                           kind="cpu", backend="ballast")
    (lab.path / "devices.toml").write_text(devices + claims.format("light", 12) + claims.format("small", 64))
    result = lab.runpytest("--device", "light,small", "-k", "memory_capacity", *QUICK)
    result.assert_outcomes(passed=2)
    run = (lab.path / "reports" / "latest").resolve()
    by_device = {r["device"]["name"]: r for r in (json.loads(p.read_text()) for p in (run / "records").glob("*.json"))}
    light, small = by_device["light"], by_device["small"]
    assert light["scenario"]["budget_mb"] == 12 and small["scenario"]["budget_mb"] == 64
    assert 1 <= light["metrics"]["observed_max_tenants"]["value"] <= 12  # each tenant holds >= 1 MiB
    assert light["extra"]["budget"] == {"configured_mb": 12, "from": "the min_tenants claim's budget_mb",
                                        "probed_mb": 12, "capped_by": None}
    assert small["extra"]["budget"]["probed_mb"] == 16 and small["extra"]["budget"]["capped_by"] == \
        "devices.small.memory_mb"
    assert 1 <= small["metrics"]["observed_max_tenants"]["value"] <= 16
    assert any("budget_mb of 64 MiB is more than small has: probed 16 MiB" in w for w in small["warnings"])
    assert [c["verdict"] for c in light["claims"] + small["claims"]] == ["met", "met"]
