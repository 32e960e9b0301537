"""Every figure the suites write says truthfully how it was obtained.

Every suite runs once, at the quick profile, in one pytest session: throughput, energy, split (the
planned split executed too) and compression over a tiny model on onnxruntime, and the concurrency
suite (tenant sweep, memory capacity, placement, LoadGen's per-query scenarios) over a fake backend
that answers at once; then every metric of every record they wrote is held to the rules below: a
figure from a link model or a memory model is "predicted", one computed offline from other figures
(a ratio, a fraction of a fixed set, a mean of rounds, the end of a search) is "derived", a reading
from an estimating meter is "estimated", and nothing that was computed is labelled "measured".
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ECHO_SESSION, backends_conftest, build_tiny_model, copy_suite

from pytest_edgeai.results.record import METHODS

QUICK = ("--edgeai-profile", "quick", "-p", "no:cacheprovider", "-p", "no:randomly")
DEVICES = """
[devices.cpu]
kind = "cpu"
backend = "onnxruntime"
price_usd = 100
meter = { source = "command", command = "echo 5", rate_hz = 4, covers = "test stand-in" }
[devices.cpu.options]
intra_op_num_threads = 1

[devices.fake]
kind = "cpu"
backend = "ballast"
[devices.fake.claims.concurrency]
min_aggregate_speedup = { cnn_trad_fpool3 = { threshold = 0.01, at_tenants = 2 } }
"""
# the tiny model's suites on the real runtime, the concurrency suite on the fake one (its zoo models would take
# minutes to time for real), each test once; LoadGen's Server search and Offline run against a session that
# answers at once would issue millions of queries, so only its per-query scenarios run here
SELECTED = ("(tiny and not fake) or (cascade and uniform and not fake) or "
            "(fake and (memory_capacity or (tenant_sweep and cnn_trad and thread) or placement or concurrent_models or "
            "(loadgen and (SingleStream or MultiStream))))")
# what a figure is, by the name it is recorded under; a name matching none is a direct reading of the run
PREDICTED = ("predicted_", "cascade_latency_ms", "baseline_latency_ms")
DERIVED = ("speedup", "gain", "saving", "reduction", "fraction_offloaded", "accuracy_cascade", "accuracy_loss",
           "agreement_with_large", "prediction_error", "throughput_error", "inferences_per_s_per_usd", "best_batch",
           "bytes_per_input", "max_qps", "layer_boundaries")


def expected_method(record: dict, name: str, entry: dict) -> set[str]:
    """The methods a metric may truthfully carry."""
    cascade = record["scenario"].get("name") == "cascade"
    if name.startswith(PREDICTED) or (cascade and name == "latency_reduction"):
        return {"predicted"}
    source = entry.get("source", "")
    if "link model" in source:
        return {"predicted"}
    if "computed offline" in source:  # whatever its name: worked out from other figures, not read from the run
        return {"derived", "predicted"}
    if any(word in name for word in DERIVED):
        return {"derived"}
    energy = record["extra"].get("energy") or {}
    if energy.get("estimated") and name in ("joules_per_inference", "mean_w", "inferences_per_s_per_w"):
        return {"estimated"}
    if entry.get("rounds", 1) > 1 and "ci95_basis" in entry:  # a mean over rounds: computed from their records
        return {"derived", "measured", "estimated"} if name in ("joules_per_inference", "inferences_per_s_per_w",
                                                               "mean_w") else {"derived"}
    return set(METHODS)


def problems(records: list[dict]) -> list[str]:
    out = []
    for r in records:
        for name, entry in r["metrics"].items():
            where = f"{r['suite']}/{r['scenario'].get('name')}/{name}"
            method = entry.get("method")
            if method not in METHODS:
                out.append(f"{where}: method {method!r} is not one of {METHODS}")
            elif method not in expected_method(r, name, entry):
                out.append(f"{where}: labelled {method!r}, but it is {sorted(expected_method(r, name, entry))}")
            if not entry.get("source"):
                out.append(f"{where}: says nothing of where it comes from")
    return out


def read_records(path: Path) -> list[dict]:
    run = (path / "reports" / "latest").resolve()
    return [json.loads(p.read_text()) for p in (run / "records").glob("*.json")]


def test_the_rules_catch_a_mislabelled_figure():
    cascade = {"suite": "compression", "scenario": {"name": "cascade"}, "extra": {}, "metrics": {
        "latency_reduction": {"value": 3.0, "method": "derived", "source": "x"},
        "fraction_offloaded": {"value": 0.3, "method": "measured", "source": "x"}}}
    capacity = {"suite": "concurrency", "scenario": {"name": "memory_capacity"}, "extra": {}, "metrics": {
        "predicted_max_tenants": {"value": 7, "method": "derived", "source": "x"}}}
    server = {"suite": "concurrency", "scenario": {"name": "loadgen_Server"}, "extra": {}, "metrics": {
        "server_max_qps": {"value": 70, "method": "measured", "source": "x"}}}
    assert len(problems([cascade, capacity, server])) == 4
    # a figure of a name the rules do not know is still held to what its source says of it
    offline = {"suite": "x", "scenario": {"name": "y"}, "extra": {}, "metrics": {
        "new_share": {"value": 0.5, "method": "measured", "source": "share of a fixed set, computed offline"}}}
    assert problems([offline]) == ["x/y/new_share: labelled 'measured', but it is ['derived', 'predicted']"]


BALLAST = '''
import numpy as np
from pytest_edgeai.backends.base import Availability, TensorSpec

''' + ECHO_SESSION + '''


class Backend:
    name = "ballast"

    def probe(self, device):
        return Availability(True, runtime="ballast", runtime_version="0")

    def load(self, model, device):
        return Session()
'''


def test_every_figure_every_suite_writes_is_labelled_truthfully(pytester: pytest.Pytester, shared_cache: Path):
    build_tiny_model(pytester.path / "tiny.onnx")
    pytester.makefile(".toml", devices=DEVICES)
    pytester.makepyfile(ballast=BALLAST, conftest=backends_conftest(ballast="ballast:Backend"))
    for suite in ("throughput", "energy", "split", "compression", "concurrency"):
        copy_suite(suite, pytester.path)
    result = pytester.runpytest_subprocess(
        "--device", "cpu,fake", f"--edgeai-model={pytester.path / 'tiny.onnx'}", "--edgeai-batches", "1,2",
        f"--edgeai-cache-dir={shared_cache}", *QUICK, "-k", SELECTED)
    outcomes = result.parseoutcomes()
    assert outcomes.get("error", 0) == 0 and outcomes.get("failed", 0) == 0, result.stdout.str()[-3000:]
    records = read_records(pytester.path)
    scenarios = {r["scenario"].get("name") for r in records}
    assert {"offline_rounds", "batching_speedup", "single_stream", "energy_rounds", "cascade", "split_bytes_per_cut",
            "split_plan", "compression", "tenants", "tenant_sweep", "memory_capacity", "dynamic_placement",
            "concurrent_models",
            "loadgen_SingleStream", "loadgen_MultiStream"} <= scenarios
    names = {n for r in records for n in r["metrics"]}
    assert {"predicted_max_tenants", "aggregate_speedup_interleaved_at_2", "predicted_latency_ms",
            "measured_latency_ms", "prediction_error", "placement_speedup", "latency_reduction"} <= names
    assert problems(records) == []
    # a step's percentiles are the worst tenant's and its throughput the sum: its samples stay per tenant
    steps = [r for r in records if r["scenario"].get("name") == "tenants" and r["status"] == "ok"]
    assert steps and all("latency_ns" not in r["samples"] for r in steps)
    assert {len(r["samples"]) for r in steps} == {r["scenario"]["tenants"] for r in steps}
    # the sweep ran 1 tenant then 2 back to back: those steps are the ratio's round 0, not measured again
    sweep = next(r for r in records if r["scenario"].get("name") == "tenant_sweep")
    assert sweep["extra"]["speedup_round0"] == "the sweep's own steps"
    assert [arm[0] for arm in sweep["extra"]["speedup_rounds"]] == sweep["extra"]["sweep"][:2]
