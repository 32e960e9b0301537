"""A build measured more than once: each side judged as the median of its runs (results.compare.median_run),
on the noise of such a median from the history itself (median_variance), and found by build (same_build)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pytest_edgeai.cli import main
from pytest_edgeai.results import synthetic
from pytest_edgeai.results.compare import (
    REGRESSED,
    REPEATS,
    build_of,
    compare_runs,
    judge_builds,
    median_run,
    median_variance,
    same_build,
)
from pytest_edgeai.results.store import load_run

ONE = dict(batches=(1,), count=150, models=("mobilenet_v2",))


def single(run):
    (r,) = [r for r in run.records if r.scenario.get("name") == "single_stream"]
    return r


def test_the_median_run_holds_each_figures_median_and_says_so(tmp_path):
    runs = [load_run(synthetic.write_run(tmp_path, 1.0, seed=i, started=float(i), drift=d, own_canary=c, **ONE))
            for i, (d, c) in enumerate([(1.0, 1.0), (1.4, 1.1), (1.02, 1.0)])]
    m = median_run(runs)
    r = single(m)
    values = sorted(single(x).metrics["latency_p50_ms"]["value"] for x in runs)
    assert r.metrics["latency_p50_ms"]["value"] == values[1]
    assert r.extra[REPEATS] == 3 and m.meta[REPEATS] == 3 and m.meta["started"] == 0.0
    assert r.extra["canary"]["value"] == synthetic.CANARY_MS * 1.0
    assert not r.samples and "ci95" not in r.metrics["latency_p50_ms"]
    assert "the median of 3 runs" in r.metrics["latency_p50_ms"]["source"]
    assert median_run(runs[:1]) is runs[0]


def test_the_noise_of_a_median_comes_from_the_historys_own_shape():
    rng = np.random.default_rng(5)
    normal = list(np.exp(rng.normal(0.0, 0.05, 40)))
    two_state = list(np.where(rng.random(40) < 0.5, 1.0, 1.5) * np.exp(rng.normal(0.0, 0.005, 40)))
    episodes = list(np.where(np.isin(np.arange(40), (7, 29)), 1.4, 1.0) * np.exp(rng.normal(0.0, 0.01, 40)))
    assert 0.3 < median_variance(normal, 3) < 0.65  # a normal median of 3: 0.45
    assert median_variance(two_state, 3) > 0.8  # a median of a two-state figure is as two-state
    assert median_variance(episodes, 3) < 0.25  # an episode in one run in twenty seldom moves a median of 3
    assert median_variance(normal, 1) == 1.0 and median_variance(normal[:3], 3) == 1.0  # too little to say


def test_a_median_of_three_sees_a_slowdown_that_episodes_hide_from_one_run(tmp_path):
    """A quiet bench whose machine, now and then, runs a whole run 40% slow (1 of 18 runs): one run against
    one cannot tell a 50% slower build from such an episode (the history's noise holds the episode); the
    median of three runs of each build can: an episode in one of them is not a regression, a build 50%
    slower in all three is."""
    root = tmp_path / "reports"
    history = [load_run(synthetic.write_run(root, 1.0, seed=10 + i, started=float(i),
                                            drift=1.4 if i == 9 else 1.0, **ONE)) for i in range(18)]
    base = median_run(history[-3:])
    episode = [load_run(synthetic.write_run(root, 1.0, seed=40 + i, started=100.0 + i, drift=d, **ONE))
               for i, d in enumerate([1.0, 1.4, 1.0])]
    slower = [load_run(synthetic.write_run(root, 1.5, seed=60 + i, started=200.0 + i, **ONE)) for i in range(3)]
    assert not compare_runs(history[-1], slower[0], history=history).regressions  # one run: too noisy to say
    assert not compare_runs(base, median_run(episode), history=history).regressions
    c = compare_runs(base, median_run(slower), history=history)
    (d,) = [d for d in c.regressions if d.metric == "latency_p50_ms" and d.key.scenario == "single_stream"]
    assert d.verdict == REGRESSED and "the median of 3 run(s) against the median of 3" in d.test
    assert any("this run: the median of 3 runs" in note for note in c.notes)


def _release(root: Path, release: str | None, started: float, slowdown: float = 1.0, commit: str | None = None):
    path = synthetic.write_run(root, slowdown, release=release, seed=int(started), started=started, **ONE)
    if commit:  # as the plugin records a clean checkout's commit
        import json

        meta = json.loads((path / "run.json").read_text())
        meta["environment"]["git"] = {"commit": commit, "dirty": False}
        (path / "run.json").write_text(json.dumps(meta))
    return path


def test_the_runs_of_a_build_are_found_by_release_or_clean_commit(tmp_path):
    root = tmp_path / "reports"
    v1 = [_release(root, "v1", float(i)) for i in range(3)]
    v2 = [_release(root, "v2", 10.0 + i) for i in range(2)]
    loose = _release(root, None, 20.0)
    commit = [_release(root, None, 30.0 + i, commit="abc123") for i in range(2)]
    assert [r.path for r in same_build(load_run(v1[-1]), root, 3)] == v1
    assert [r.path for r in same_build(load_run(v2[-1]), root, 3)] == v2  # only two: what there is
    assert [r.path for r in same_build(load_run(v1[1]), root, 3)] == v1[:2]  # none started after it
    assert [r.path for r in same_build(load_run(loose), root, 3)] == [loose]  # nothing says its build
    assert [r.path for r in same_build(load_run(commit[-1]), root, 5)] == commit
    assert build_of(load_run(commit[0]).meta) == "commit abc123" and build_of(load_run(v1[0]).meta) == "release v1"


def test_compare_runs_k_judges_each_builds_median(tmp_path, capsys):
    """The CLI: one run of a build 50% slower is too noisy to call on a bench with episodes; --runs 3 judges
    the median of the three runs of each release and finds it, and says which runs it took."""
    root = tmp_path / "reports"
    for i in range(12):
        _release(root, "v1", float(i), slowdown=1.4 if i == 7 else 1.0)
    slow = [_release(root, "v2", 100.0 + i, slowdown=1.5) for i in range(3)]
    assert main(["compare", "release:v1", str(slow[-1]), "--edgeai-report-dir", str(root)]) == 0
    capsys.readouterr()
    assert main(["compare", "release:v1", str(slow[-1]), "--runs", "3", "--edgeai-report-dir", str(root)]) == 1
    out = capsys.readouterr().out
    assert "the baseline: the median of 3 runs of release v1" in out
    assert f"this run: the median of 3 runs of release v2 ({', '.join(p.name for p in slow)})" in out
    assert main(["compare", "release:v1", str(slow[-1]), "--runs", "0", "--edgeai-report-dir", str(root)]) == 2
    assert "--runs 0" in capsys.readouterr().err


def test_medians_that_share_runs_say_so(tmp_path):
    """'latest' as the baseline of a build's third run is that build's second run: both medians then hold the
    same runs, and the comparison says so rather than judging a build against itself unremarked."""
    root = tmp_path / "reports"
    runs = [_release(root, "v2", float(i)) for i in range(4)]
    c = judge_builds(load_run(runs[-2]), load_run(runs[-1]), runs=3)
    assert any("share 2 run(s) of release v2" in note for note in c.notes), c.notes
    v1 = _release(root, "v1", 0.5)
    apart = judge_builds(load_run(v1), load_run(runs[-1]), runs=3)
    assert not any("share" in note for note in apart.notes)
