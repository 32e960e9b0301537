"""History across runs: ordering, releases, step changes and where a regression entered."""

from __future__ import annotations

import numpy as np

from pytest_edgeai.report.html import render
from pytest_edgeai.results import synthetic
from pytest_edgeai.results.compare import DRIFT, IMPROVED, REGRESSED, history_noise
from pytest_edgeai.results.history import build_history, find_steps
from pytest_edgeai.results.store import load_run


def test_find_steps_locates_one_and_two_steps_and_ignores_noise():
    rng = np.random.default_rng(0)
    flat = 10 + rng.normal(0, 0.1, 40)
    assert find_steps(flat) == []
    one = np.concatenate([10 + rng.normal(0, 0.1, 20), 12 + rng.normal(0, 0.1, 15)])
    steps = find_steps(one)
    assert [s.index for s in steps] == [20] and steps[0].after > steps[0].before
    two = np.concatenate([10 + rng.normal(0, 0.1, 15), 12 + rng.normal(0, 0.1, 15), 9 + rng.normal(0, 0.1, 15)])
    assert [s.index for s in find_steps(two, min_shift=0.05)] == [15, 30]
    assert find_steps(one, min_shift=0.5) == []  # significant, but smaller than the tolerance
    assert find_steps([1.0, 2.0, 3.0]) == []  # too short to say
    late = np.concatenate([10 + rng.normal(0, 0.1, 150), 12 + rng.normal(0, 0.1, 50)])
    assert [s.index for s in find_steps(late, min_shift=0.05)] == [150]  # placed where it is, not mid-series


def test_a_regression_is_named_with_the_release_it_entered(tmp_path):
    runs = []
    for i in range(12):
        slow = 1.25 if i >= 8 else 1.0
        release = {0: "v1.0", 4: "v1.1", 8: "v1.2"}.get(i)
        runs.append(load_run(synthetic.write_run(tmp_path, slow, release=release, started=1000.0 + i, seed=i,
                                                 batches=(1,), count=40, models=("mobilenet_v2",))))
    h = build_history(list(reversed(runs)))  # any order in, ordered by start
    assert [r.started for r in h.runs] == sorted(r.started for r in h.runs)
    assert h.releases() == [(0, "v1.0"), (4, "v1.1"), (8, "v1.2")]
    throughput = [s for s in h.regressions if s.series.metric == "throughput_ips"]
    assert (throughput and {s.position for s in throughput} == {8}
            and {s.entered for s in throughput} == {"at release v1.2"})
    assert all(s.change < -0.1 for s in throughput)
    assert not [s for s in h.steps if s.verdict == IMPROVED]
    assert all(s.verdict == REGRESSED for s in h.steps if s.series.metric.startswith("latency_p"))


def test_a_step_between_releases_names_both_sides(tmp_path):
    runs = [load_run(synthetic.write_run(tmp_path, 0.8 if i >= 5 else 1.0, release="v1" if i == 0 else
                                         ("v2" if i == 9 else None), started=float(i), seed=i, batches=(1,),
                                         count=40, models=("cnn_trad_fpool3",))) for i in range(10)]
    h = build_history(runs)
    steps = [s for s in h.steps if s.series.metric == "throughput_ips"]
    assert steps and steps[0].verdict == IMPROVED and steps[0].entered == "between v1 and v2"


def test_a_step_of_everything_with_the_canary_is_machine_drift_not_a_regression(tmp_path):
    runs = [load_run(synthetic.write_run(tmp_path, 1.0, started=float(i), seed=i, batches=(1,), count=40,
                                         models=("mobilenet_v2",), canary=True, drift=1.3 if i >= 6 else 1.0))
            for i in range(12)]
    h = build_history(runs)
    throughput = [s for s in h.steps if s.series.metric == "throughput_ips"]
    assert throughput and {s.verdict for s in throughput} == {DRIFT} and not h.regressions
    # the release slower and the canary not: a regression, as without a canary
    runs = [load_run(synthetic.write_run(tmp_path / "r", 1.3 if i >= 6 else 1.0, started=float(i), seed=i,
                                         batches=(1,), count=40, models=("mobilenet_v2",), canary=True))
            for i in range(12)]
    assert {s.verdict for s in build_history(runs).steps if s.series.metric == "throughput_ips"} == {REGRESSED}


def test_a_spike_in_the_history_is_noise_and_a_level_that_stays_is_a_step():
    """One run far out and back (a machine episode) is between-run noise; a jump whose level stays (an
    earlier release that changed the figure) is set aside as a step."""
    rng = np.random.default_rng(3)
    quiet = list(np.exp(rng.normal(0.0, 0.01, 20)))
    spike = quiet[:10] + [quiet[10] * 1.5] + quiet[11:]
    step = quiet[:10] + [v * 1.5 for v in quiet[10:]]
    e_spike, e_step, e_quiet = (history_noise(s, "") for s in (spike, step, quiet))
    assert e_spike is not None and e_step is not None and e_quiet is not None
    assert "set aside" not in e_spike.source and e_spike.se > 3 * e_quiet.se
    assert "1 step(s) set aside" in e_step.source and e_step.se < 2 * e_quiet.se


def test_the_trend_says_how_its_steps_are_found(tmp_path):
    """It named Pettitt's test, which find_steps does not use (least squares places a split, Mann-Whitney
    U with Bonferroni over the splits scanned keeps it)."""
    runs = [load_run(synthetic.write_run(tmp_path, 1.0, seed=i, started=float(i), batches=(1,),
                                         models=("mobilenet_v2",), count=40)) for i in range(3)]
    html = render(runs[-1], None, build_history(runs))
    assert "Trend across runs" in html and "Pettitt" not in html
    assert "each split placed by least squares and kept when Mann-Whitney U" in html and "p &lt; 0.05" in html
