"""The plugin against a baseline: release recorded, regressions listed and failing the session,
metrics in JUnit XML properties."""

from __future__ import annotations

import json
import uuid
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from pytest_edgeai.cli import main
from pytest_edgeai.results.record import Record
from pytest_edgeai.results.store import RunStore, list_runs, load_run

SUITE = '''
import os

import numpy as np


def test_fixed(edgeai_device, edgeai_bench):
    """A record with known samples: the slowdown comes from the environment."""
    slow = float(os.environ["EDGEAI_TEST_SLOWDOWN"])
    rng = np.random.default_rng(int(os.environ["EDGEAI_TEST_SEED"]))
    r = edgeai_bench.new_record(None, {"name": "single_stream", "batch": 1})
    r.model = {"name": "fixed"}
    ns = (slow * 1e6 * rng.lognormal(0, 0.05, 300)).astype(int).tolist()
    r.samples["latency_ns"] = ns
    r.metrics["throughput_ips"] = {"value": 1e9 / float(np.mean(ns)), "unit": "inferences/s",
                                   "method": "measured", "source": "test"}
    edgeai_bench.save(r)
'''


@pytest.fixture
def lab(pytester, monkeypatch):
    pytester.makepyfile(test_fixed=SUITE)

    def run(slowdown: float, seed: int, *args: str):
        monkeypatch.setenv("EDGEAI_TEST_SLOWDOWN", str(slowdown))
        monkeypatch.setenv("EDGEAI_TEST_SEED", str(seed))
        return pytester.runpytest("-p", "no:cacheprovider", "--device", "cpu", "--edgeai-no-isolation", *args)

    return run


def _more_runs_like_the_latest(pytester, count: int) -> None:
    """Runs of the same bench, each figure off by ~1%: the history a comparison's between-run noise
    comes from (written directly: ten more pytest sessions would cost seconds each)."""
    first = load_run(pytester.path / "reports" / "latest")
    rng = np.random.default_rng(0)
    for _ in range(count):
        store = RunStore.create(pytester.path / "reports", {"environment": {}, "options": {}})
        for r in first.records:
            factor = float(rng.lognormal(0.0, 0.01))
            copy = Record.from_dict({**r.to_dict(), "id": uuid.uuid4().hex[:12]})
            copy.samples["latency_ns"] = [int(ns * factor) for ns in r.samples["latency_ns"]]
            copy.metrics["throughput_ips"]["value"] = r.metrics["throughput_ips"]["value"] / factor
            store.write(copy)
        store.finish()


def _meta(pytester) -> dict:
    return json.loads((pytester.path / "reports" / "latest" / "run.json").read_text())


def test_a_regression_against_the_release_baseline_fails_the_session(lab, pytester):
    first = lab(1.0, 1, "--edgeai-release", "v1.0")
    first.assert_outcomes(passed=1)
    assert _meta(pytester)["release"] == "v1.0"
    _more_runs_like_the_latest(pytester, 10)

    same = lab(1.0, 2, "--edgeai-baseline", "release:v1.0", "--edgeai-fail-on-regression")
    assert same.ret == 0
    same.stdout.fnmatch_lines(["*edgeai vs baseline*", "*vs baseline*reports*"])

    slow = lab(1.5, 3, "--edgeai-baseline", "release:v1.0", "--edgeai-fail-on-regression",
               "--junitxml", "junit.xml")
    assert slow.ret == 1
    slow.stdout.fnmatch_lines(["*fixed single_stream b1 throughput_ips*regressed*",
                               "*significant regression(s) beyond tolerance*"])
    meta = _meta(pytester)
    assert meta["baseline"] and meta["release"] is None
    html = (pytester.path / "reports" / "latest" / "report.html").read_text()
    assert "Comparison with the baseline" in html and 'class="regressed"' in html
    props = {p.get("name"): p.get("value") for p in ET.parse(pytester.path / "junit.xml").iter("property")}
    assert float(props["edgeai.fixed.single_stream.b1.throughput_ips"]) > 0

    reported = lab(1.5, 4, "--edgeai-baseline", "release:v1.0")  # without the flag: said, not failed
    assert reported.ret == 0
    reported.stdout.fnmatch_lines(["*throughput_ips*regressed*"])


def test_a_baseline_that_cannot_be_found_is_an_error_under_fail_on_regression(lab):
    result = lab(1.0, 1, "--edgeai-baseline", "release:nope", "--edgeai-fail-on-regression")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*no run of release 'nope'*"])


OUTCOMES = '''
import pytest


def test_measured(edgeai_device, edgeai_bench):
    r = edgeai_bench.new_record(None, {"name": "single_stream", "batch": 1})
    r.model = {"name": "fixed"}
    r.metrics["throughput_ips"] = {"value": 100.0, "unit": "inferences/s", "method": "measured", "source": "test"}
    edgeai_bench.save(r)


def test_no_meter(edgeai_device):
    pytest.skip("no RAPL: /sys/class/powercap is not readable here")


@pytest.fixture
def broken():
    raise RuntimeError("the fixture broke")


def test_errors(edgeai_device, broken):
    pass


def test_fails(edgeai_device):
    assert 1 == 2, "one is not two"


@pytest.mark.xfail(reason="known: the vendor's runtime rounds this")
def test_known(edgeai_device):
    assert False


def test_plain():
    """Does not use edgeai: not an outcome of the run."""
'''


def test_the_run_records_each_tests_outcome_and_the_report_shows_it(pytester):
    pytester.makepyfile(test_mine=OUTCOMES)
    result = pytester.runpytest("-p", "no:cacheprovider", "--device", "cpu", "--edgeai-no-isolation")
    result.assert_outcomes(passed=2, skipped=1, errors=1, failed=1, xfailed=1)
    run = load_run(pytester.path / "reports" / "latest")
    outcomes = {o.test_id.split("::")[-1].split("[")[0]: o for o in run.outcomes}
    assert {k: o.outcome for k, o in outcomes.items()} == {
        "test_measured": "passed", "test_no_meter": "skipped", "test_errors": "error", "test_fails": "failed",
        "test_known": "xfailed"}
    assert outcomes["test_no_meter"].reason == "no RAPL: /sys/class/powercap is not readable here"
    assert "the fixture broke" in outcomes["test_errors"].reason and "one is not two" in outcomes["test_fails"].reason
    assert outcomes["test_known"].reason == "known: the vendor's runtime rounds this"
    assert {o.suite for o in run.outcomes} == {"mine"}
    html = (run.path / "report.html").read_text()
    headline = html[html.index("<b>Tests:</b>"):html.index("<b>Claims:</b>")]
    for count in ("1 failed", "1 error", "1 skipped", "1 xfailed", "1 passed"):
        assert count in headline, headline
    assert "no RAPL: /sys/class/powercap is not readable here" in html and "the fixture broke" in html
    assert "Suite: mine" in html  # a suite of the user's own gets its section


def test_a_run_where_everything_skipped_says_what_and_why(pytester):
    pytester.makepyfile(test_energy='''
import pytest

def test_offline_energy(edgeai_device):
    pytest.skip("no RAPL: energy_uj is root-only")
''')
    result = pytester.runpytest("-p", "no:cacheprovider", "--device", "cpu", "--edgeai-no-isolation")
    result.assert_outcomes(skipped=1)
    [run] = list_runs(pytester.path / "reports")  # a run that measured nothing never becomes 'latest'
    html = (run / "report.html").read_text()
    assert "No claims were checked" not in html and "0 records" not in html
    assert "Nothing was measured" in html and "1 skipped" in html
    assert html.count("no RAPL: energy_uj is root-only") >= 2  # at a glance and in the energy section
    assert "Energy suite tests" in html


def test_malformed_outcomes_in_run_json_are_a_problem_not_a_crash(tmp_path):
    store = RunStore.create(tmp_path, {"environment": {}, "options": {}})
    store.update_meta(tests=[{"test_id": "t::a", "suite": "s", "outcome": "skipped", "reason": "why"},
                             {"test_id": 3, "outcome": "passed"}, {"outcome": "exploded", "test_id": "t::b"}, "x"])
    run = load_run(store.path)
    assert [(o.test_id, o.outcome, o.reason) for o in run.outcomes] == [("t::a", "skipped", "why")]
    assert any("3 test outcome(s)" in p for p in run.problems)


def test_baseline_runs_judge_the_median_of_each_builds_runs(lab, pytester, capsys):
    """--edgeai-baseline-runs 3: a machine episode in one of a build's three runs (its last run 50% slow) is not
    a regression of the build, where one run against one calls it one; the K is kept in run.json, so the
    report rendered again later judges the same medians; a K of 0 is refused before anything is measured."""
    for seed in (1, 2, 3):
        assert lab(1.0, seed, "--edgeai-release", "v1.0").ret == 0
    _more_runs_like_the_latest(pytester, 10)
    for seed in (4, 5):
        assert lab(1.0, seed, "--edgeai-release", "v2.0").ret == 0
    judged = lab(1.5, 6, "--edgeai-release", "v2.0", "--edgeai-baseline", "release:v1.0",
                 "--edgeai-baseline-runs", "3", "--edgeai-fail-on-regression")
    assert judged.ret == 0
    judged.stdout.fnmatch_lines(["*the baseline: the median of 3 runs of release v1.0*",
                                 "*this run: the median of 3 runs of release v2.0*"])
    assert _meta(pytester)["baseline_runs"] == 3
    html = (pytester.path / "reports" / "latest" / "report.html").read_text()
    assert "the median of 3 runs of release v2.0" in html
    reports = str(pytester.path / "reports")
    assert main(["report", "latest", "--edgeai-report-dir", reports]) == 0  # rendered again: the same medians
    assert "the median of 3 runs of release v2.0" in (pytester.path / "reports" / "latest" / "report.html").read_text()
    assert main(["compare", "release:v1.0", "latest", "--edgeai-report-dir", reports]) == 1  # one run a side
    capsys.readouterr()

    before = len(list_runs(pytester.path / "reports"))
    refused = lab(1.0, 7, "--edgeai-baseline", "release:v1.0", "--edgeai-baseline-runs", "0")
    assert refused.ret == pytest.ExitCode.USAGE_ERROR
    refused.stderr.fnmatch_lines(["*--edgeai-baseline-runs 0: give the number of runs of each build to judge*"])
    assert len(list_runs(pytester.path / "reports")) == before
