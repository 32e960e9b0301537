"""Comparison of runs: matching, significance, direction-aware verdicts, tolerances, baselines."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pytest_edgeai.errors import EdgeAIError
from pytest_edgeai.results import synthetic
from pytest_edgeai.results.compare import (CHANGED, IMPROVED, NOISY, REGRESSED, UNCHANGED, compare_runs, judge,
                                           parse_fraction, tolerance_for)
from pytest_edgeai.results.direction import HIGHER, LOWER, UNKNOWN, direction
from pytest_edgeai.results.record import Record
from pytest_edgeai.results.release import find_run, run_release
from pytest_edgeai.results.store import RunStore, load_run

ONE = ("mobilenet_v2",)


def run_of(root: Path, slowdown: float, seed: int, **kw) -> Path:
    return synthetic.write_run(root, slowdown, seed=seed, batches=(1,), count=150, models=ONE, **kw)


def verdicts(comparison, metric: str) -> set[str]:
    return {d.verdict for d in comparison.deltas if d.metric == metric}


def test_direction_is_decided_from_name_and_unit():
    assert direction("throughput_ips", "inferences/s") == HIGHER
    assert direction("latency_p99_ms", "ms") == LOWER
    assert direction("joules_per_inference", "J") == LOWER
    assert direction("inferences_per_s_per_w", "inferences/s/W") == HIGHER
    assert direction("batching_speedup", "x") == HIGHER
    assert direction("best_batch", "batch") == UNKNOWN


@pytest.mark.parametrize("ratio, sense, significant, expected", [
    (1.02, HIGHER, True, UNCHANGED), (0.80, HIGHER, True, REGRESSED), (1.20, HIGHER, True, IMPROVED),
    (1.20, LOWER, True, REGRESSED), (0.80, LOWER, True, IMPROVED), (0.80, LOWER, False, NOISY),
    (0.80, LOWER, None, NOISY), (1.5, UNKNOWN, True, CHANGED)])
def test_verdicts_are_direction_aware_and_need_significance(ratio, sense, significant, expected):
    assert judge(ratio, sense, 0.05, significant) == expected


def test_a_slower_run_regresses_throughput_and_latency_significantly(tmp_path):
    base = load_run(run_of(tmp_path, 1.0, seed=1))
    new = load_run(run_of(tmp_path, 1.3, seed=2))
    c = compare_runs(base, new)
    assert verdicts(c, "throughput_ips") == {REGRESSED}
    assert verdicts(c, "latency_p99_ms") == {REGRESSED}
    d = next(d for d in c.deltas if d.metric == "throughput_ips")
    assert d.significant and d.p_value < 0.002 and d.ratio_ci[1] < 1.0 and "Mann-Whitney" in d.test
    # and the other way round it is an improvement
    back = compare_runs(new, base)
    assert verdicts(back, "throughput_ips") == {IMPROVED} and not back.regressions


def test_the_same_distribution_is_not_a_regression(tmp_path):
    c = compare_runs(load_run(run_of(tmp_path, 1.0, seed=1)), load_run(run_of(tmp_path, 1.0, seed=2)))
    assert c.deltas and not c.regressions and not c.by_verdict(IMPROVED)


def test_tolerances_come_from_config_then_defaults_and_fail_on_overrides():
    tol = {"throughput": {"throughput_ips": 0.2}}
    assert tolerance_for("throughput", "throughput_ips", tol) == 0.2
    assert tolerance_for("energy", "throughput_ips", tol) == 0.05
    assert tolerance_for("throughput", "latency_p99_ms", None) == 0.10
    assert tolerance_for("throughput", "throughput_ips", tol, fail_on=0.01) == 0.01
    assert parse_fraction("5%") == pytest.approx(0.05) and parse_fraction("0.05") == pytest.approx(0.05)
    with pytest.raises(ValueError):
        parse_fraction("five")


def test_a_wide_tolerance_turns_the_regression_into_unchanged(tmp_path):
    base, new = load_run(run_of(tmp_path, 1.0, seed=1)), load_run(run_of(tmp_path, 1.3, seed=2))
    assert not compare_runs(base, new, fail_on=0.5).regressions


def _summary_record(value: float, ci: list[float] | None, device: str = "cpu") -> Record:
    return Record(suite="energy", test_id="t", device=synthetic.device(device), backend={"name": "onnxruntime"},
                  model={"name": "m"}, scenario={"name": "energy"},
                  metrics={"joules_per_inference": {"value": value, "unit": "J", "method": "measured",
                                                    "source": "test", **({"ci95": ci} if ci else {})},
                           "best_batch": {"value": value * 10, "unit": "batch", "method": "measured", "source": "t"}})


def _run_with(root: Path, *records: Record) -> Path:
    store = RunStore.create(root, {"environment": {}, "options": {}})
    for r in records:
        store.write(r)
    store.finish()
    return store.path


def test_without_samples_the_recorded_intervals_decide(tmp_path):
    base = load_run(_run_with(tmp_path, _summary_record(1.0, [0.95, 1.05])))
    apart = load_run(_run_with(tmp_path, _summary_record(1.5, [1.45, 1.55])))
    overlap = load_run(_run_with(tmp_path, _summary_record(1.5, [0.9, 2.1])))
    bare = load_run(_run_with(tmp_path, _summary_record(1.5, None)))
    assert verdicts(compare_runs(base, apart), "joules_per_inference") == {REGRESSED}
    assert verdicts(compare_runs(base, overlap), "joules_per_inference") == {NOISY}
    d = next(d for d in compare_runs(base, bare).deltas if d.metric == "joules_per_inference")
    assert d.verdict == NOISY and d.significant is None and "nothing to test" in d.test
    # a metric with no better direction and no interval: beyond tolerance, nothing to test it with
    assert verdicts(compare_runs(base, apart), "best_batch") == {NOISY}


def test_runs_that_share_no_device_say_so(tmp_path):
    base = load_run(_run_with(tmp_path, _summary_record(1.0, None, device="edgetpu0")))
    new = load_run(_run_with(tmp_path, _summary_record(1.0, None, device="cpu")))
    c = compare_runs(base, new)
    assert not c.deltas and c.only_base and c.only_new
    assert "share no measurement" in c.notes[0] and "edgetpu0" in c.notes[0]


def test_a_runtime_upgrade_is_matched_and_noted(tmp_path):
    rng = np.random.default_rng(0)
    base = _run_with(tmp_path, synthetic.latency_record("m", "single_stream", 1, 5.0, rng, 50))
    new = _run_with(tmp_path, synthetic.latency_record("m", "single_stream", 1, 5.0, rng, 50,
                                                       runtime_version="1.18.0"))
    c = compare_runs(load_run(base), load_run(new))
    assert c.deltas and any("runtime_version 1.17.0 -> 1.18.0" in n for n in c.notes)


def test_corrupt_and_newer_records_are_reported_and_the_rest_compared(tmp_path):
    base = run_of(tmp_path, 1.0, seed=1)
    new = run_of(tmp_path, 1.0, seed=2)
    files = sorted((new / "records").glob("*.json"))
    files[0].write_text(files[0].read_text()[:40])  # truncated
    data = json.loads(files[1].read_text())
    data["schema_version"] = 99
    files[1].write_text(json.dumps(data))
    c = compare_runs(load_run(base), load_run(new))
    assert any("truncated" in n for n in c.notes) and any("newer" in n for n in c.notes)
    assert len(c.only_base) == 2  # the two unreadable records; every readable one is compared
    assert len({d.key for d in c.deltas}) == len(list((base / "records").glob("*.json"))) - 2


def test_a_baseline_is_found_by_path_latest_or_release(tmp_path):
    v1 = run_of(tmp_path, 1.0, seed=1, release="v1.0", started=100.0)
    v1b = run_of(tmp_path, 1.0, seed=2, release="v1.0", started=200.0)
    current = run_of(tmp_path, 1.0, seed=3, release="v1.1", started=300.0)
    assert find_run("release:v1.0", tmp_path) == v1b.resolve()
    assert find_run("latest", tmp_path, exclude=current) == v1b.resolve()
    assert find_run(str(v1), tmp_path) == v1.resolve()
    with pytest.raises(EdgeAIError, match="no run of release 'v9'"):
        find_run("release:v9", tmp_path)
    assert run_release({"options": {"edgeai_release": None}, "environment": {"git": {"tag": "v2"}}}) == "v2"
    assert run_release({"options": {"edgeai_release": "rc1"}, "environment": {"git": {"tag": "v2"}}}) == "rc1"
