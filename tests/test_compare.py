"""Comparison of runs: identity, the nature of each metric, between-run noise, the canary, verdicts,
bad input, baselines."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from pytest_edgeai.cli import main
from pytest_edgeai.concurrency.tenants import Step, TenantOutcome, step_metrics
from pytest_edgeai.errors import EdgeAIError
from pytest_edgeai.measure.profiles import get_profile
from pytest_edgeai.measure.scenarios import measure_windows, summarise_measurement
from pytest_edgeai.measure.stats import min_samples, quantile_fields
from pytest_edgeai.results import store as store_module
from pytest_edgeai.results import synthetic
from pytest_edgeai.results.compare import (
    CHANGED,
    DIAGNOSTIC_REGRESSED,
    DRIFT,
    EXACT,
    HIGHER,
    IMPROVED,
    LOWER,
    MEASURED,
    MIN_RUNS,
    NOISE_UNKNOWN,
    NOISY,
    NOT_COMPARED,
    REGRESSED,
    TOO_FEW,
    UNCHANGED,
    UNKNOWN,
    Z_FLOOR,
    Comparison,
    Evidence,
    Key,
    MetricDelta,
    RecordChange,
    against_baseline,
    block_bootstrap,
    compare_runs,
    direction,
    find_run,
    headline,
    judge,
    label,
    nature,
    parse_fraction,
    record_key,
    run_gate,
    run_release,
    samples_evidence,
    summary_lines,
    tolerance_for,
)
from pytest_edgeai.results.record import Record, metric
from pytest_edgeai.results.store import Run, RunStore, load_run

ONE = ("mobilenet_v2",)


def run_of(root: Path, slowdown: float, seed: int, **kw) -> Path:
    kw.setdefault("count", 150)
    return synthetic.write_run(root, slowdown, seed=seed, batches=(1,), models=ONE, **kw)


def history_of(root: Path, runs: int, drift_sigma: float = 0.0, canary: bool = False, seed: int = 100):
    """``runs`` earlier runs of one build, the machine drifting by a lognormal factor between them."""
    rng = np.random.default_rng(seed)
    return [load_run(run_of(root, 1.0, seed=seed + i, started=float(i), canary=canary,
                            drift=float(rng.lognormal(0.0, drift_sigma))))
            for i in range(runs)]


def verdicts(comparison, metric_name: str) -> set[str]:
    return {d.verdict for d in comparison.deltas if d.metric == metric_name}


def delta(comparison, metric_name: str):
    return next(d for d in comparison.deltas if d.metric == metric_name)


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
    (0.80, LOWER, None, NOISE_UNKNOWN), (1.5, UNKNOWN, True, CHANGED)])
def test_verdicts_are_direction_aware_and_need_significance(ratio, sense, significant, expected):
    assert judge(ratio, sense, 0.05, significant) == expected


@pytest.mark.parametrize("name, unit, expected", [
    ("input_compressed_bytes", "bytes", EXACT), ("size_reduction", "x", EXACT),
    ("agreement_with_large", "fraction", EXACT), ("accuracy_cascade", "fraction", EXACT),
    ("single_tensor_cuts", "cuts", EXACT), ("best_cut_saving", "x", EXACT),
    ("throughput_ips", "inferences/s", MEASURED), ("latency_p99_ms", "ms", MEASURED),
    ("joules_per_inference", "J", MEASURED), ("batching_speedup", "x", MEASURED), ("mean_w", "W", MEASURED),
    ("something_new", "widgets", MEASURED)])
def test_a_metric_knows_how_it_may_be_compared(name, unit, expected):
    assert nature(name, {"unit": unit}) == expected
    other = MEASURED if expected == EXACT else EXACT
    assert nature(name, metric(1.0, unit, "t", comparison=other)) == other  # what the metric says wins
    with pytest.raises(ValueError):
        metric(1.0, unit, "t", comparison="roughly")


def test_without_history_a_slower_run_says_how_many_runs_are_needed_not_regressed(tmp_path):
    c = compare_runs(load_run(run_of(tmp_path, 1.0, seed=1)), load_run(run_of(tmp_path, 1.3, seed=2)))
    d = delta(c, "throughput_ips")
    assert d.verdict == NOISE_UNKNOWN and not c.regressions
    assert f"between-run noise unknown: {MIN_RUNS - 1} more runs needed" in d.test
    assert any("between-run noise unknown" in line for line in summary_lines(c))


def test_with_a_quiet_history_a_slower_run_regresses_and_an_equal_one_does_not(tmp_path):
    history = history_of(tmp_path, 6)
    base = history[-1]
    slow = load_run(run_of(tmp_path, 1.3, seed=50, started=100.0))
    c = compare_runs(base, slow, history=history)
    assert verdicts(c, "throughput_ips") == {REGRESSED} and verdicts(c, "latency_mean_ms") == {REGRESSED}
    d = delta(c, "throughput_ips")
    assert d.significant and "earlier runs" in d.test and d.ratio_ci[1] < 1.0
    back = compare_runs(slow, base, history=history)  # dropped: only runs started before the new one count
    assert not back.regressions
    same = compare_runs(base, load_run(run_of(tmp_path, 1.0, seed=51, started=101.0)), history=history)
    assert not same.regressions and not same.by_verdict(IMPROVED)


def test_a_a_with_drifting_windows_does_not_regress(tmp_path):
    """Runs of one build whose machine speed drifts by ~25% between runs: within-run samples would call
    every one of them significant; between-run noise calls none a regression."""
    history = history_of(tmp_path, 8, drift_sigma=0.25)
    new = load_run(run_of(tmp_path, 1.0, seed=77, started=100.0, drift=0.7))  # the machine 30% faster...
    newer = load_run(run_of(tmp_path, 1.0, seed=78, started=101.0, drift=1.4))  # ...then 40% slower
    for base in history[-3:]:
        for current in (new, newer):
            c = compare_runs(base, current, history=history)
            assert not c.regressions, [d.describe() for d in c.regressions]
    assert verdicts(compare_runs(history[-1], newer, history=history), "throughput_ips") <= {NOISY, UNCHANGED}


def test_everything_slower_with_the_canary_is_machine_drift(tmp_path):
    base = load_run(run_of(tmp_path, 1.0, seed=1, started=1.0, canary=True))
    new = load_run(run_of(tmp_path, 1.0, seed=2, started=2.0, canary=True, drift=1.35))
    c = compare_runs(base, new)
    assert verdicts(c, "throughput_ips") == {DRIFT} and verdicts(c, "latency_p50_ms") == {DRIFT}
    assert not c.regressions and "the machine, not the release" in delta(c, "throughput_ips").test
    assert any(n.startswith("canary on cpu: +3") for n in c.notes)
    # the release itself slower, the canary not: not drift (and with a history, a regression)
    history = history_of(tmp_path / "h", 6, drift_sigma=0.2, canary=True)
    slow = load_run(run_of(tmp_path, 1.3, seed=3, started=100.0, canary=True, drift=0.9))
    c = compare_runs(history[-1], slow, history=history)
    d = delta(c, "throughput_ips")
    assert d.verdict == REGRESSED and "corrected by the canary" in d.test


def test_a_canary_that_does_not_track_the_workload_corrects_nothing(tmp_path):
    """On a loaded host the canary, measured first, may drift apart from what runs later: where the
    history shows the correction adds noise, the raw figure and its own noise are judged."""
    rng = np.random.default_rng(5)
    history = [load_run(run_of(tmp_path, 1.0, seed=200 + i, started=float(i), canary=True,
                               drift=float(rng.lognormal(0, 0.02)), canary_drift=float(rng.lognormal(0, 0.4))))
               for i in range(7)]
    new = load_run(run_of(tmp_path, 1.0, seed=300, started=100.0, canary=True, canary_drift=0.4))
    c = compare_runs(history[-1], new, history=history)
    d = delta(c, "throughput_ips")
    assert d.drift is None and "corrected by the canary" not in d.test and d.verdict in (UNCHANGED, NOISY)
    assert not c.regressions


def _stages_record(values: dict[str, float], windows: dict[str, list[float]] | None = None) -> Record:
    r = Record(suite="latency", test_id="t", device=synthetic.device(), backend={"name": "onnxruntime"},
               model={"name": "m"}, scenario={"name": "stages", "batch": 1})
    r.metrics = {name: metric(float(v), "ms", "timer", windows=(windows or {}).get(name))
                 for name, v in values.items()}
    return r


def test_a_a_with_many_noisy_metrics_does_not_fail_the_run_and_a_real_slowdown_does(tmp_path):
    """One build, 50 timings and 4 diagnostic figures a record. In the last run the diagnostic figures
    (spread, worst case, first inference: what a neighbour's burst moves) jump 3x: reported as
    'regressed (diagnostic)', the run passes. The same history with one timing 20% slower fails."""
    rng = np.random.default_rng(1)
    names = [f"stage{i}_latency_ms" for i in range(50)]
    diagnostic = {"latency_stddev_ms": 0.5, "latency_max_ms": 14.0, "first_inference_ms": 40.0, "latency_cv": 0.05}

    def values(burst: float, slow: float = 1.0) -> dict[str, float]:
        out = dict(zip(names, 10 * np.exp(0.02 * rng.standard_normal(len(names)))))
        out["stage0_latency_ms"] *= slow
        return {**out, **{k: v * burst * float(np.exp(0.01 * rng.standard_normal())) for k, v in diagnostic.items()}}

    history = [_run_with(tmp_path, _stages_record(values(1.0)), started=float(i)) for i in range(7)]
    new = _run_with(tmp_path, _stages_record(values(3.0)), started=10.0)
    c = compare_runs(history[-1], new, history=history)
    assert not c.regressions, [d.describe() for d in c.regressions]
    for name in diagnostic:
        assert verdicts(c, name) == {DIAGNOSTIC_REGRESSED}, delta(c, name).describe()
    assert any("(diagnostic)" in line for line in summary_lines(c, show=(REGRESSED, DIAGNOSTIC_REGRESSED)))
    slow = _run_with(tmp_path, _stages_record(values(3.0, slow=1.2)), started=11.0)
    c = compare_runs(history[-1], slow, history=history)
    assert [d.metric for d in c.regressions] == ["stage0_latency_ms"]


def test_a_real_20_percent_slowdown_of_the_headline_figures_still_fails_the_run(tmp_path):
    history = history_of(tmp_path, 6)
    slow = load_run(run_of(tmp_path, 1.2, seed=60, started=100.0))
    c = compare_runs(history[-1], slow, history=history)
    assert verdicts(c, "throughput_ips") == {REGRESSED} and verdicts(c, "latency_mean_ms") == {REGRESSED}
    assert headline("latency_min_ms") and not headline("latency_stddev_ms")  # the steadiest speed figure gates


def _energy_record(joules: float, windows: list[float] | None = None, extra_metrics: dict | None = None) -> Record:
    r = Record(suite="energy", test_id="t", device=synthetic.device(), backend={"name": "onnxruntime"},
               model={"name": "m"}, scenario={"name": "offline", "batch": 1})
    r.metrics = {"joules_per_inference": metric(joules, "J", "meter", windows=windows), **(extra_metrics or {})}
    return r


def _run_with(root: Path, *records: Record, started: float | None = None) -> Run:
    store = RunStore.create(root, {"environment": {}, "options": {}})
    if started is not None:
        store.update_meta(started=started)
    for r in records:
        store.write(r)
    store.finish()
    return load_run(store.path)


def test_a_3x_rise_in_joules_per_inference_is_a_regression(tmp_path):
    rng = np.random.default_rng(3)
    history = [_run_with(tmp_path, _energy_record(0.01 * rng.lognormal(0, 0.05)), started=float(i)) for i in range(6)]
    new = _run_with(tmp_path, _energy_record(0.03), started=10.0)
    d = delta(compare_runs(history[-1], new, history=history), "joules_per_inference")
    assert d.verdict == REGRESSED and d.significant
    # per-window readings of two runs alone share each run's machine state: not between-run evidence
    windows = compare_runs(_run_with(tmp_path, _energy_record(0.01, [0.0101, 0.0098, 0.0102, 0.0099])),
                           _run_with(tmp_path, _energy_record(0.03, [0.031, 0.029, 0.030, 0.0305])))
    d = delta(windows, "joules_per_inference")
    assert d.verdict == NOISE_UNKNOWN and "do not stand in" in d.test and not windows.regressions
    # with a quiet history a 15% rise is significant, but the per-window readings are the floor: too noisy
    quiet = [_run_with(tmp_path / "q", _energy_record(0.01 * rng.lognormal(0, 0.01)), started=float(i))
             for i in range(12)]
    rise = _run_with(tmp_path / "q", _energy_record(0.0115), started=20.0)
    assert delta(compare_runs(quiet[-1], rise, history=quiet), "joules_per_inference").verdict == REGRESSED
    spread = _run_with(tmp_path / "q", _energy_record(0.0115, [0.009, 0.014, 0.0115]), started=21.0)
    base = _run_with(tmp_path / "q", _energy_record(0.010, [0.008, 0.012, 0.010]), started=11.5)
    d = delta(compare_runs(base, spread, history=quiet), "joules_per_inference")
    assert d.verdict == NOISY and "separate windows (Welch, within the runs)" in d.test


def _split_record(compressed: int, saving: float) -> Record:
    return Record(suite="split", test_id="t", device=synthetic.device(), backend={"name": "onnxruntime"},
                  model={"name": "m"}, scenario={"name": "split_bytes_per_cut", "inputs": 5},
                  metrics={"input_compressed_bytes": metric(compressed, "bytes", "png"),
                           "best_cut_saving": metric(saving, "x", "bytes ratio"),
                           "saving_depth_layers": metric(0, "layers", "none saves")})


def test_a_change_in_bytes_per_cut_is_judged_exactly(tmp_path):
    base = _run_with(tmp_path, _split_record(82_000, 7.5))
    same = compare_runs(base, _run_with(tmp_path, _split_record(82_000, 7.5)))
    assert {d.verdict for d in same.deltas} == {UNCHANGED}
    c = compare_runs(base, _run_with(tmp_path, _split_record(83_640, 7.0)))  # +2% bytes, no history at all
    assert delta(c, "input_compressed_bytes").verdict == REGRESSED
    assert delta(c, "best_cut_saving").verdict == REGRESSED
    assert "compared exactly" in delta(c, "input_compressed_bytes").test
    assert delta(compare_runs(base, _run_with(tmp_path, _split_record(82_000, 7.5)), fail_on=0.05),
                 "best_cut_saving").verdict == UNCHANGED


def _tenant_record(tenants: int, mode: str, window_s: float, ips: float) -> Record:
    return Record(suite="concurrency", test_id="t", device=synthetic.device(), backend={"name": "onnxruntime"},
                  model={"name": "mobilenet_v2", "format": "onnx", "params": {}},
                  scenario={"name": "tenants", "tenants": tenants, "mode": mode, "window_s": window_s},
                  metrics={"throughput_ips": metric(ips, "inferences/s", "aggregate")})


def test_tenant_sweep_records_with_different_tenant_counts_do_not_collide(tmp_path):
    steps = [_tenant_record(t, mode, 2.0, 100.0 * t) for mode in ("threads", "processes") for t in (1, 2, 4)]
    keys = {record_key(r) for r in steps}
    assert len(keys) == 6
    assert "tenants mode=threads tenants=4" in label(record_key(steps[2]))
    # the same steps measured for longer in another run still pair, each with its own counterpart
    again = [_tenant_record(t, mode, 5.0, 100.0 * t) for mode in ("threads", "processes") for t in (1, 2, 4)]
    c = compare_runs(_run_with(tmp_path, *steps), _run_with(tmp_path, *again))
    assert len(c.deltas) == 6 and not c.only_base and not c.only_new
    assert all(d.ratio == pytest.approx(1.0) for d in c.deltas)


def test_an_old_schema_1_record_pairs_with_a_new_one(tmp_path):
    old = {"schema": "pytest-edgeai/result", "schema_version": 1, "suite": "throughput", "test_id": "t",
           "device": {"name": "cpu", "kind": "cpu", "backend": "onnxruntime", "hardware_id": ""},
           "backend": {"name": "onnxruntime"}, "model": {"name": "m", "format": "onnx", "params": {}},
           "scenario": {"name": "offline", "batch": 4, "profile": {"name": "quick"}},
           "metrics": {"throughput_ips": {"value": 100.0, "unit": "inferences/s", "method": "measured", "source": "s"}}}
    new = Record.from_dict({**old, "scenario": {"name": "offline", "batch": 4, "profile": {"name": "standard"}}})
    assert record_key(Record.from_dict(old)) == record_key(new)
    assert record_key(new) != record_key(Record.from_dict({**old, "scenario": {"name": "offline", "batch": 8}}))


def test_too_few_samples_for_p99_says_so(tmp_path):
    rng = np.random.default_rng(0)
    base = _run_with(tmp_path, synthetic.latency_record("m", "single_stream", 1, 5.0, rng, 40))
    new = _run_with(tmp_path, synthetic.latency_record("m", "single_stream", 1, 9.0, rng, 40))
    d = delta(compare_runs(base, new), "latency_p99_ms")
    assert d.verdict == TOO_FEW and f"too few samples for p99 (need {min_samples(0.99)}, have 40 and 40)" in d.test
    assert min_samples(0.99) == 1000 and min_samples(0.5) == 20
    assert delta(compare_runs(base, new), "latency_p50_ms").verdict != TOO_FEW


def test_a_quantile_of_too_few_queries_says_so_in_the_record_and_without_samples_in_the_comparison(tmp_path):
    profile = get_profile("standard")
    m = summarise_measurement("single_stream", 1, profile, [1_000_000 + i for i in range(150)], 200_000_000,
                              1_000_000, 5, 0.0).metrics()
    assert m["latency_p99_ms"]["samples"] == 150 and m["latency_p99_ms"]["tail_samples"] == 1
    assert m["latency_p99_ms"]["caveat"] == "too few samples for p99 (need 1000, have 150)"
    assert m["latency_p90_ms"]["tail_samples"] == 15 and "caveat" not in m["latency_p90_ms"]
    assert "caveat" not in m["latency_p50_ms"]
    rng = np.random.default_rng(0)
    records = []
    for median in (5.0, 9.0):
        r = synthetic.latency_record("m", "single_stream", 1, median, rng, 150)
        r.samples.clear()  # a record that kept no samples: the metric's own caveat still counts
        r.metrics["latency_p99_ms"].update(quantile_fields(0.99, 150))
        records.append(_run_with(tmp_path, r))
    d = delta(compare_runs(*records), "latency_p99_ms")
    assert d.verdict == TOO_FEW and "baseline: too few samples for p99 (need 1000, have 150)" in d.test


def test_bad_input_gets_a_verdict_saying_why(tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", 2)  # this pytest-edgeai reads a schema after 1
    rng = np.random.default_rng(0)
    with_samples = synthetic.latency_record("m", "single_stream", 1, 5.0, rng, 50)
    with_samples.schema_version = 2
    bare = synthetic.latency_record("m", "single_stream", 1, 6.0, rng, 50)
    bare.samples = {}  # a baseline from the older schema 1, without samples
    del bare.metrics["latency_cv"]
    bare.metrics["latency_p90_ms"]["value"] = None
    with_samples.metrics["first_inference_ms"] = metric(3.0, "ms", "t")
    c = compare_runs(_run_with(tmp_path, bare), _run_with(tmp_path, with_samples))
    cv, p90, first = delta(c, "latency_cv"), delta(c, "latency_p90_ms"), delta(c, "first_inference_ms")
    assert cv.verdict == NOT_COMPARED and "not recorded in the baseline" in cv.test and "schema 1" in cv.test
    assert p90.verdict == NOT_COMPARED and "no numeric value in the baseline" in p90.test
    assert first.verdict == NOT_COMPARED
    mean = delta(c, "latency_mean_ms")
    assert mean.verdict == NOISE_UNKNOWN and "no per-query samples" in mean.test
    assert UNCHANGED not in {d.verdict for d in c.deltas if d.metric in ("latency_cv", "latency_p90_ms")}
    hostile = synthetic.latency_record("m", "single_stream", 1, 5.0, rng, 50)
    hostile.samples["latency_ns"] = ["fast", None]  # a broken record the store did not stop: no traceback
    hostile.scenario["batch"] = "many"
    other = synthetic.latency_record("m", "single_stream", 1, 9.0, rng, 50)
    other.scenario = dict(hostile.scenario)
    c = compare_runs(Run(tmp_path / "a", {}, [hostile]), Run(tmp_path / "b", {}, [other]))
    assert delta(c, "latency_mean_ms").verdict == NOISE_UNKNOWN


def test_samples_that_do_not_reproduce_the_figure_are_not_its_evidence(tmp_path):
    """An asynchronous figure (4 requests in flight) is not batch / mean latency of its samples."""
    rng = np.random.default_rng(0)
    records = [synthetic.latency_record("m", "offline", 1, 5.0, rng, 400) for _ in range(2)]
    names = ["throughput_ips", "latency_mean_ms"]
    assert set(samples_evidence(records[0], records[1], names)[0]) == set(names)  # synchronous: both stand
    for r in records:
        r.metrics["throughput_ips"]["value"] *= 4
    within, _ = samples_evidence(records[0], records[1], names)
    assert set(within) == {"latency_mean_ms"}
    assert "block bootstrap" in within["latency_mean_ms"].source


def test_the_block_bootstrap_sees_autocorrelation_that_iid_resampling_hides():
    rng = np.random.default_rng(0)
    n = 2000
    slow_wander = np.repeat(rng.normal(0, 1.0, n // 100), 100)  # the machine's speed drifting in the window
    x = 10.0 + slow_wander + rng.normal(0, 0.3, n)
    block = block_bootstrap(x, {"mean": None})["mean"].std()
    iid = np.random.default_rng(1).choice(x, size=(499, n)).mean(axis=1).std()
    assert block > 2 * iid
    white = 10.0 + rng.normal(0, 1.0, n)
    assert block_bootstrap(white, {"mean": None})["mean"].std() == pytest.approx(1.0 / np.sqrt(n), rel=0.3)


def test_tolerances_come_from_config_then_defaults_and_fail_on_overrides():
    tol = {"throughput": {"throughput_ips": 0.2}}
    assert tolerance_for("throughput", "throughput_ips", tol) == 0.2
    assert tolerance_for("energy", "throughput_ips", tol) == 0.05
    assert tolerance_for("throughput", "latency_p99_ms", None) == 0.10
    assert tolerance_for("split", "input_compressed_bytes", None, exact=True) == 0.0
    assert tolerance_for("throughput", "throughput_ips", tol, fail_on=0.01) == 0.01
    assert parse_fraction("5%") == pytest.approx(0.05) and parse_fraction("0.05") == pytest.approx(0.05)
    with pytest.raises(ValueError):
        parse_fraction("five")
    with pytest.raises(ValueError, match=r"a bare 5 would be a tolerance of 500%: write 5% \(or 0.05\)"):
        parse_fraction("5")  # a forgotten % sign, not 500%
    assert parse_fraction("0.5") == pytest.approx(0.5) and parse_fraction("150%") == pytest.approx(1.5)


def test_a_wide_tolerance_turns_the_regression_into_unchanged(tmp_path):
    history = history_of(tmp_path, 6)
    new = load_run(run_of(tmp_path, 1.3, seed=2, started=100.0))
    assert compare_runs(history[-1], new, history=history).regressions
    assert not compare_runs(history[-1], new, fail_on=0.5, history=history).regressions


def test_runs_that_share_no_device_say_so(tmp_path):
    base = _run_with(tmp_path, Record(suite="energy", test_id="t", device=synthetic.device("edgetpu0"),
                                      backend={}, model={"name": "m"}, scenario={"name": "e"},
                                      metrics={"joules_per_inference": metric(1.0, "J", "t")}))
    new = _run_with(tmp_path, _energy_record(1.0))
    c = compare_runs(base, new)
    assert not c.deltas and c.only_base and c.only_new
    assert "share no measurement" in c.notes[0] and "edgetpu0" in c.notes[0]
    lines = summary_lines(c)
    assert any("only in the baseline, not measured in this run" in line for line in lines)


def test_a_runtime_upgrade_is_matched_and_noted(tmp_path):
    rng = np.random.default_rng(0)
    base = _run_with(tmp_path, synthetic.latency_record("m", "single_stream", 1, 5.0, rng, 50))
    new = _run_with(tmp_path, synthetic.latency_record("m", "single_stream", 1, 5.0, rng, 50,
                                                       runtime_version="1.18.0"))
    c = compare_runs(base, new)
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


def _delta(model: str, metric_name: str, ratio: float, se: float, verdict: str, df: float = 20.0) -> MetricDelta:
    key = Key("throughput", ("cpu", "cpu", "onnxruntime", ""), model, "single_stream", (("batch", "1"),))
    return MetricDelta(key, metric_name, "ms", 1.0, ratio, ratio, None, None, verdict == REGRESSED, 0.10, LOWER,
                       verdict, "test", MEASURED, None, Evidence("history", se, df, between_runs=True, floor=Z_FLOOR))


def test_a_figure_significant_alone_among_many_does_not_fail_the_run_unless_far_out_and_a_slower_record_does():
    """80 figures in 40 records: one 30% slower at 5.6 se on 8 df (beyond ALPHA alone) is too noisy for the run;
    at 10 se it is far out and fails it. A record whose composite is slower names its figures."""
    lone = [_delta(f"m{i}", name, 1.0, 0.05, UNCHANGED)
            for i in range(40) for name in ("latency_mean_ms", "latency_p50_ms")]
    lone[0] = _delta("m0", "latency_mean_ms", 1.3, 0.047, REGRESSED, df=8.0)
    c = Comparison(base=None, new=None, deltas=lone)  # type: ignore[arg-type]
    run_gate(c, {})
    assert not c.regressions and lone[0].verdict == NOISY and "not found slower" in lone[0].test
    lone[0] = _delta("m0", "latency_mean_ms", 1.3, 0.026, REGRESSED, df=8.0)
    c = Comparison(base=None, new=None, deltas=lone)  # type: ignore[arg-type]
    run_gate(c, {})
    assert [d.metric for d in c.regressions] == ["latency_mean_ms"] and "slower alone" in c.regressions[0].test
    slowed = [_delta("m0", name, 1.2, 0.08, NOISY) for name in ("latency_mean_ms", "latency_p50_ms", "latency_min_ms")]
    slowed.append(_delta("m0", "latency_p90_ms", 1.05, 0.08, UNCHANGED))  # within its tolerance: not named
    composite = RecordChange(("latency_mean_ms", "latency_p50_ms", "latency_min_ms", "latency_p90_ms"), 0.15,
                             Evidence("history of the composite", 0.02, 20.0, between_runs=True, floor=Z_FLOOR))
    c = Comparison(base=None, new=None, deltas=slowed)  # type: ignore[arg-type]
    run_gate(c, {slowed[0].key: composite})
    assert sorted(d.metric for d in c.regressions) == ["latency_mean_ms", "latency_min_ms", "latency_p50_ms"]
    assert "its record found slower" in c.regressions[0].test and any("run-level test" in n for n in c.notes)
    c = Comparison(base=None, new=None, deltas=slowed)  # type: ignore[arg-type]
    run_gate(c, {slowed[0].key: replace(composite, change=0.05)})  # the composite within its noise
    assert not c.regressions


def test_a_record_whose_figures_are_each_too_noisy_alone_is_found_slower_together_and_an_a_a_run_is_not(tmp_path):
    """16 timings of one record, each with 6% independent noise between runs: a 20% slowdown of all of
    them is within each one's between-run noise, not within their composite's (about 1.5%)."""
    rng = np.random.default_rng(3)
    names = [f"stage{i}_latency_ms" for i in range(16)]

    def values(slow: float = 1.0) -> dict[str, float]:
        return dict(zip(names, slow * 10 * np.exp(0.06 * rng.standard_normal(len(names)))))

    history = [_run_with(tmp_path, _stages_record(values()), started=float(i)) for i in range(12)]
    same = compare_runs(history[-1], _run_with(tmp_path, _stages_record(values()), started=20.0), history=history)
    assert not same.regressions, [d.describe() for d in same.regressions]
    slow = compare_runs(history[-1], _run_with(tmp_path, _stages_record(values(1.2)), started=21.0), history=history)
    assert not [d for d in slow.deltas if d.verdict == REGRESSED and "found slower" not in d.test]
    assert len(slow.regressions) >= 5, [d.describe() for d in slow.deltas]  # those beyond tolerance, named at 5%
    assert all("its record found slower (composite of 16 figures" in d.test for d in slow.regressions)


def test_the_composite_weights_each_figure_by_its_own_noise(tmp_path):
    """Six timings wandering 5% between runs and two wandering 40%: an equal-weight mean would carry the
    noisy pair's noise (about 7%) and hide a 20% slowdown, which no figure shows alone either (each one's
    bar is above 35%). Weighted by inverse variance, the composite's noise is about 2%: the slowdown is
    found, an unchanged build is not."""
    rng = np.random.default_rng(11)
    sigmas = [0.05] * 6 + [0.40] * 2
    names = [f"stage{i}_latency_ms" for i in range(len(sigmas))]

    def values(slow: float = 1.0) -> dict[str, float]:
        return {n: slow * 10 * float(np.exp(s * rng.standard_normal())) for n, s in zip(names, sigmas)}

    history = [_run_with(tmp_path, _stages_record(values()), started=float(i)) for i in range(16)]
    same = compare_runs(history[-1], _run_with(tmp_path, _stages_record(values()), started=20.0), history=history)
    assert not same.regressions, [d.describe() for d in same.regressions]
    slow = compare_runs(history[-1], _run_with(tmp_path, _stages_record(values(1.2)), started=21.0), history=history)
    assert slow.regressions and all("its record found slower (composite of 8 figures" in d.test
                                    for d in slow.regressions), [d.describe() for d in slow.deltas]
    assert "inverse-variance weighted" in slow.regressions[0].test


class _Steps:
    """A session whose query takes a known, fixed number of sleeps' worth of time."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def run(self, feeds):
        time.sleep(self.seconds)
        return {}


def test_separate_windows_are_written_per_figure_and_do_not_stand_in_for_a_history(tmp_path):
    profile = replace(get_profile("quick"), warmup_count=1, warmup_s=0.0, min_duration_s=0.01, min_count=3)
    records = []
    for _ in range(2):
        m = measure_windows(_Steps(0.001), {}, "single_stream", 1, profile, 3)
        assert len(m.windows) == 3 and m.summary.count == sum(len(w.samples_ns) for w in m.windows)
        metrics = m.metrics()
        assert len(metrics["throughput_ips"]["windows"]) == 3 and len(metrics["latency_min_ms"]["windows"]) == 3
        assert "windows" not in metrics["first_inference_ms"]  # timed once
        r = Record(suite="throughput", test_id="t", device=synthetic.device(), backend={"name": "onnxruntime"},
                   model={"name": "m"}, scenario={"name": "single_stream", "batch": 1}, metrics=metrics)
        records.append(_run_with(tmp_path, r))
    d = delta(compare_runs(*records), "throughput_ips")  # no history: the windows do not stand in for one
    assert d.verdict in (NOISE_UNKNOWN, UNCHANGED) and not d.significant


def _fidelity_record(prob_change: float, accuracy_loss: float) -> Record:
    return Record(suite="compression", test_id="t", device=synthetic.device(), backend={"name": "onnxruntime"},
                  model={"name": "m"}, scenario={"name": "int8_static", "batch": 1},
                  metrics={"top1_prob_change": metric(prob_change, "probability", "mean |p_variant - p_fp32|"),
                           "accuracy_loss": metric(accuracy_loss, "fraction", "large-only - cascade's")})


def test_a_smaller_loss_or_probability_change_is_an_improvement_and_a_larger_one_a_regression(tmp_path):
    """Their claims are max_top1_prob_change and max_cascade_accuracy_loss: lower is better, though the
    names hold 'top1' and 'accuracy' (once read as higher-is-better: 0.010 -> 0.005 failed compare)."""
    base = _run_with(tmp_path, _fidelity_record(0.010, 0.01))
    better = compare_runs(base, _run_with(tmp_path, _fidelity_record(0.005, 0.005)))
    assert verdicts(better, "top1_prob_change") == {IMPROVED} and verdicts(better, "accuracy_loss") == {IMPROVED}
    assert not better.regressions
    worse = compare_runs(base, _run_with(tmp_path, _fidelity_record(0.05, 0.03)))
    assert verdicts(worse, "top1_prob_change") == {REGRESSED} and verdicts(worse, "accuracy_loss") == {REGRESSED}
    from_zero = compare_runs(_run_with(tmp_path, _fidelity_record(0.010, 0.0)),
                             _run_with(tmp_path, _fidelity_record(0.010, 0.03)))
    assert verdicts(from_zero, "accuracy_loss") == {REGRESSED}


def _tenant_step_record(rng: np.random.Generator, queries: int, tail: float = 1.0) -> Record:
    """A 4-tenant step record as the concurrency suite writes it: the worst tenant's quantiles
    (step_metrics) and each tenant's samples apart (latency_ns.<tenant>, no pooled latency_ns)."""
    outcomes = []
    for i in range(4):
        ns = 5e6 * rng.lognormal(0.0, 0.05, queries)
        ns[-2:] *= tail  # the slowest queries of each tenant: its p99 of ~150 queries is one or two of them
        outcomes.append(TenantOutcome(f"tenant{i}", "m", [int(v) for v in ns]))
    step = Step(4, outcomes, 1.0)
    r = _tenant_record(4, "threads", 1.0, 0.0)
    r.metrics = step_metrics(step)
    r.samples = {f"latency_ns.{o.name}": list(o.latencies_ns) for o in outcomes}
    return r


def test_a_tenant_steps_p99_from_too_few_queries_a_tenant_is_too_few_samples_not_judged(tmp_path):
    rng = np.random.default_rng(5)
    history = [_run_with(tmp_path, _tenant_step_record(rng, 150), started=float(i)) for i in range(7)]
    new = _run_with(tmp_path, _tenant_step_record(rng, 150, tail=3.0), started=10.0)
    c = compare_runs(history[-1], new, history=history)
    p99 = delta(c, "latency_p99_ms")
    assert p99.verdict == TOO_FEW and "too few samples for p99 (need 1000" in p99.test, p99.describe()
    assert delta(c, "latency_p90_ms").verdict != TOO_FEW  # 150 queries a tenant hold a p90 (need 100)
    assert not c.regressions


def test_a_measurement_ok_in_the_baseline_that_failed_in_this_run_fails_the_comparison(tmp_path, capsys):
    """Once it was only 'only in the baseline, not measured in this run' and compare exited 0."""
    def energy(model: str, joules: float) -> Record:
        r = _energy_record(joules)
        r.model = {"name": model}
        return r

    base = _run_with(tmp_path, energy("a", 0.01), energy("b", 0.02), started=1.0)
    crashed = energy("b", 0.02)
    crashed.status, crashed.error, crashed.metrics = "error", "the runtime crashed: SIGSEGV", {}
    new = _run_with(tmp_path, energy("a", 0.01), crashed, started=2.0)
    c = compare_runs(base, new)
    assert not c.regressions and not c.only_base and c.fails
    assert [label(k) for k in c.failed] == ["energy cpu b offline b1"]
    assert main(["compare", str(base.path), str(new.path), "--edgeai-report-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "failed in this run (measured in the baseline): energy cpu b offline b1: the runtime crashed" in out
    outcome = against_baseline(new.path, str(base.path), tmp_path, None, fail=True)  # --edgeai-fail-on-regression
    assert outcome.regressed and "1 measurement(s) failed in this run" in outcome.lines[-1]
    # a record that failed in both runs, or only in this one, is a note, not a failure of the comparison
    again = _run_with(tmp_path, energy("a", 0.01), crashed, started=3.0)
    assert not compare_runs(new, again).fails
    assert main(["compare", str(new.path), str(again.path), "--edgeai-report-dir", str(tmp_path)]) == 0


def _sweep_record(tenants_run: int, above_idle_w: float = 0.5) -> Record:
    return Record(suite="concurrency", test_id="t", device=synthetic.device(), backend={"name": "onnxruntime"},
                  model={"name": "m"}, scenario={"name": "tenant_sweep", "mode": "threads"},
                  metrics={"max_tenants_run": metric(tenants_run, "tenants", "steps that ran"),
                           "mean_w_above_idle": metric(above_idle_w, "W", "meter")})


def test_a_count_going_to_or_from_0_is_judged_by_its_direction_and_ordinary_count_noise_is_not(tmp_path):
    """4 -> 0 tenants run was 'not compared: no ratio to judge' and compare exited 0."""
    four, none = _run_with(tmp_path, _sweep_record(4)), _run_with(tmp_path, _sweep_record(0))
    lost = compare_runs(four, none)
    d = delta(lost, "max_tenants_run")
    assert d.verdict == REGRESSED and "nothing ran (or fitted) in this run" in d.test and lost.fails
    assert delta(compare_runs(none, four), "max_tenants_run").verdict == IMPROVED
    assert delta(compare_runs(none, none), "max_tenants_run").verdict == UNCHANGED
    # 18 -> 17 or 14 tenants, no history: judged on tolerance and between-run noise like any figure
    def verdict(base: int, new: int) -> str:
        return delta(compare_runs(_run_with(tmp_path, _sweep_record(base)), _run_with(tmp_path, _sweep_record(new))),
                     "max_tenants_run").verdict

    assert verdict(18, 17) == UNCHANGED and verdict(18, 14) == NOISE_UNKNOWN
    # a figure above idle that noise put at 0 is no count: still not compared
    d = delta(compare_runs(_run_with(tmp_path, _sweep_record(4, 0.0)), _run_with(tmp_path, _sweep_record(4, 0.4))),
              "mean_w_above_idle")
    assert d.verdict == NOT_COMPARED and "no ratio to judge" in d.test
