"""The per-record canary in a comparison: a pair is corrected by its own records' canary readings where
both have them, by the runs' canaries otherwise, and says which (results.compare.drift_factor)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pytest_edgeai.results import synthetic
from pytest_edgeai.results.compare import (
    CANARY_SUITE,
    DRIFT,
    REGRESSED,
    canaries,
    compare_runs,
    record_canary,
)
from pytest_edgeai.results.history import build_history
from pytest_edgeai.results.store import load_run


def run_of(root: Path, slowdown: float, seed: int, **kw):
    return load_run(synthetic.write_run(root, slowdown, seed=seed, batches=(1,), models=("mobilenet_v2",),
                                        count=150, **kw))


def delta(c, metric: str):
    (d,) = [d for d in c.deltas if d.metric == metric and d.key.scenario == "single_stream"]
    return d


def test_a_slowdown_its_own_records_canaries_explain_is_machine_drift(tmp_path):
    """The run-start canary saw nothing (the load came later), each record's own reading saw +35%."""
    base = run_of(tmp_path, 1.0, seed=1, started=1.0, own_canary=1.0)
    new = run_of(tmp_path, 1.0, seed=2, started=2.0, drift=1.35, own_canary=1.35)
    c = compare_runs(base, new)
    d = delta(c, "throughput_ips")
    assert d.verdict == DRIFT and "the records' own canary readings" in d.test
    assert abs(d.drift - 1.35) < 1e-9 and not c.regressions
    # the same runs with a canary per run that missed the load: the slowdown is not explained away
    base = run_of(tmp_path / "r", 1.0, seed=1, started=1.0, canary=True, canary_drift=1.0)
    new = run_of(tmp_path / "r", 1.0, seed=2, started=2.0, drift=1.35, canary=True, canary_drift=1.0)
    assert delta(compare_runs(base, new), "throughput_ips").verdict != DRIFT


def test_records_without_their_own_canary_fall_back_to_the_runs_canary(tmp_path):
    base = run_of(tmp_path, 1.0, seed=1, started=1.0, canary=True)
    new = run_of(tmp_path, 1.0, seed=2, started=2.0, canary=True, drift=1.35)
    d = delta(compare_runs(base, new), "latency_p50_ms")
    assert d.verdict == DRIFT and "the runs' canaries: neither record has a canary reading of its own" in d.test


def test_a_baseline_from_before_per_record_canaries_compares_and_says_why(tmp_path):
    """Old baseline: a run-start canary record, no reading beside its records. The new run's canary
    is the median of its records' own readings."""
    base = run_of(tmp_path, 1.0, seed=1, started=1.0, canary=True)
    for r in base.records:
        assert record_canary(r) is None
    new = run_of(tmp_path, 1.0, seed=2, started=2.0, drift=1.35, own_canary=1.35)
    assert not [r for r in new.records if r.suite == CANARY_SUITE]
    assert set(canaries(new).values()) == {synthetic.CANARY_MS * 1.35}
    c = compare_runs(base, new)
    d = delta(c, "throughput_ips")
    assert d.verdict == DRIFT and "the runs' canaries: the baseline record has no canary reading of its own" in d.test
    # no canary anywhere: judged raw, and the timing's verdict says it was not corrected and why
    bare = run_of(tmp_path / "bare", 1.0, seed=3, started=3.0)
    d = delta(compare_runs(bare, new), "throughput_ips")
    assert d.drift is None and d.verdict != DRIFT
    assert d.verdict == "between-run noise unknown"  # no history either: nothing to judge the noise on


def test_the_history_is_corrected_by_each_records_own_canary(tmp_path):
    """Runs whose machine wanders by ~30% between them, tracked by each record's own reading but not by
    the run-start canary: the corrected history is quiet, so an unchanged build does not fail and a 30%
    slower one does."""
    rng = np.random.default_rng(7)
    history = []
    for i in range(8):
        m = float(rng.lognormal(0.0, 0.3))
        history.append(run_of(tmp_path, 1.0, seed=10 + i, started=float(i), drift=m, own_canary=m,
                              canary=True, canary_drift=1.0))
    same = run_of(tmp_path, 1.0, seed=50, started=100.0, drift=1.4, own_canary=1.4, canary=True, canary_drift=1.0)
    c = compare_runs(history[-1], same, history=history)
    assert not c.regressions
    d = delta(c, "throughput_ips")
    assert "corrected by the canary" in d.test and "the records' own canary readings" in d.test
    assert "between-run noise" in d.test and ", corrected by the canary" in d.test  # the corrected history's
    slower = run_of(tmp_path, 1.3, seed=51, started=101.0, drift=0.8, own_canary=0.8, canary=True, canary_drift=1.0)
    c = compare_runs(history[-1], slower, history=history)
    assert delta(c, "throughput_ips").verdict == REGRESSED


def test_the_trend_reads_a_step_its_records_canaries_share_as_drift(tmp_path):
    runs = [run_of(tmp_path, 1.0, seed=i, started=float(i), drift=1.0 if i < 6 else 1.5,
                   own_canary=1.0 if i < 6 else 1.5) for i in range(12)]
    steps = [s for s in build_history(runs).steps if s.series.metric == "latency_p50_ms"
             and s.series.key.scenario == "single_stream"]
    assert steps and {s.verdict for s in steps} == {DRIFT}


def test_a_canary_that_does_not_track_a_figure_does_not_explain_its_change(tmp_path):
    """The records' canaries wander by ~20% between runs while the figures stay put: the history shows the
    canary does not track them. A release 30% slower whose run happens to read its canary 30% slower too is
    a regression, not machine drift (a canary change explains a figure's change only where it tracks it)."""
    rng = np.random.default_rng(11)
    history = [run_of(tmp_path, 1.0, seed=20 + i, started=float(i), own_canary=float(rng.lognormal(0.0, 0.2)))
               for i in range(10)]
    slower = run_of(tmp_path, 1.3, seed=60, started=100.0, own_canary=1.3 * history[-1].records[0].extra["canary"]
                    ["value"] / synthetic.CANARY_MS)
    c = compare_runs(history[-1], slower, history=history)
    d = delta(c, "latency_p50_ms")
    assert d.verdict == REGRESSED and d.drift is None
    assert "drift factor" not in d.test and "the canary on this device changed" not in d.test
    # where the canary does track the figures (both wander together), the same +30% canary explains it
    tracked = []
    for i in range(10):
        m = float(rng.lognormal(0.0, 0.2))
        tracked.append(run_of(tmp_path / "t", 1.0, seed=80 + i, started=float(i), drift=m, own_canary=m))
    same = run_of(tmp_path / "t", 1.0, seed=99, started=100.0, drift=1.3, own_canary=1.3)
    assert delta(compare_runs(tracked[-1], same, history=tracked), "latency_p50_ms").verdict == DRIFT
