"""The command line: report, compare, merge, export, as a person runs them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_edgeai.cli import main
from pytest_edgeai.results import synthetic
from pytest_edgeai.results.store import RunStore, load_run

ONE = dict(batches=(1,), count=120, models=("mobilenet_v2",))


@pytest.fixture
def runs(tmp_path):
    for i in range(5):  # earlier runs of the same bench: the between-run noise a comparison judges on
        synthetic.write_run(tmp_path / "reports", 1.0, seed=10 + i, started=10.0 + i, **ONE)
    base = synthetic.write_run(tmp_path / "reports", 1.0, seed=1, release="v1", started=100.0, **ONE)
    same = synthetic.write_run(tmp_path / "reports", 1.0, seed=2, started=200.0, **ONE)
    slow = synthetic.write_run(tmp_path / "reports", 1.4, seed=3, started=300.0, **ONE)
    return base, same, slow


def test_compare_exits_1_on_a_regression_and_0_otherwise(runs, capsys):
    base, same, slow = runs
    assert main(["compare", str(base), str(same), "--devices-file", "/nonexistent.toml"]) == 2  # bad config
    assert "file not found" in capsys.readouterr().err
    assert main(["compare", str(base), str(same)]) == 0
    assert main(["compare", str(base), str(slow)]) == 1
    out = capsys.readouterr().out
    assert "regressed" in out and "throughput_ips" in out
    assert main(["compare", str(base), str(slow), "--fail-on", "90%"]) == 0  # a tolerance wider than the change


def test_compare_finds_the_baseline_by_release(runs, capsys):
    base, _, slow = runs
    root = str(base.parent)
    assert main(["compare", "release:v1", str(slow), "--edgeai-report-dir", root]) == 1
    assert str(base) in capsys.readouterr().out
    assert main(["compare", "release:v7", str(slow), "--edgeai-report-dir", root]) == 2
    assert "no run of release 'v7'" in capsys.readouterr().err


def test_compare_rejects_a_bad_tolerance_in_one_line(runs, capsys):
    base, same, _ = runs
    assert main(["compare", str(base), str(same), "--fail-on", "lots"]) == 2
    err = capsys.readouterr().err
    assert "--fail-on lots" in err and "Traceback" not in err


def test_fail_on_without_a_percent_sign_is_refused_not_read_as_hundreds_of_percent(runs, capsys):
    base, _, slow = runs
    assert main(["compare", str(base), str(slow), "--fail-on", "5"]) == 2
    err = capsys.readouterr().err
    assert "--fail-on 5: a bare 5 would be a tolerance of 500%: write 5%" in err and "Traceback" not in err


def test_compare_piped_into_a_reader_that_stops_ends_quietly(runs):
    base, _, slow = runs
    cli = [sys.executable, "-c", "import sys; from pytest_edgeai.cli import main; sys.exit(main())"]
    shown = subprocess.Popen([*cli, "compare", str(base), str(slow), "--all"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    assert shown.stdout is not None and shown.stderr is not None
    shown.stdout.close()  # as `| head` does once it has its lines: the reader is gone before the writer ends
    err = shown.stderr.read().decode()
    assert shown.wait(60) == 141 and err == "", err  # 128 + SIGPIPE, as a shell tool ends; nothing said


def test_a_run_that_measured_nothing_leaves_latest_and_compare_latest_alone(runs, capsys):
    base, same, slow = runs
    root = slow.parent
    RunStore.create(root, {"environment": {}, "options": {}}).finish()  # every test skipped: no record
    assert load_run("latest", root).path == slow.resolve()
    assert main(["compare", str(base), "latest", "--edgeai-report-dir", str(root)]) == 1  # latest: slow
    assert main(["compare", "latest", str(slow), "--edgeai-report-dir", str(root)]) == 1  # latest before slow: same
    out = capsys.readouterr().out
    assert f"{same.resolve()}" in out and "regressed" in out


def test_report_of_several_runs_has_the_trend_and_problems_are_said(runs, tmp_path, capsys):
    base, same, slow = runs
    broken = next((slow / "records").glob("*.json"))
    broken.write_text("{not json")
    out = tmp_path / "r.html"
    assert main(["report", str(base), str(same), str(slow), "-o", str(out), "--baseline", str(base)]) == 0
    captured = capsys.readouterr()
    assert "unreadable or truncated record" in captured.err and str(out) in captured.out
    html = out.read_text()
    assert "Trend across runs" in html and "Comparison with the baseline" in html
    assert "unreadable or truncated record" in html


def test_merge_keeps_record_ids_and_lists_sources(runs, tmp_path, capsys):
    base, same, _ = runs
    for run_dir, param in ((base, "a"), (same, "b")):
        test_id = f"suites/test_energy.py::test_energy[{param}]"
        meta = json.loads((run_dir / "run.json").read_text())  # the outcomes a session records
        meta["tests"] = [{"test_id": test_id, "suite": "energy", "outcome": "skipped", "reason": "no RAPL"}]
        (run_dir / "run.json").write_text(json.dumps(meta))
    merged = tmp_path / "merged"
    assert main(["merge", str(base), str(same), "-o", str(merged)]) == 0
    run = load_run(merged)
    ids = {r.id for r in load_run(base).records} | {r.id for r in load_run(same).records}
    assert {r.id for r in run.records} == ids
    assert [s["path"] for s in run.meta["sources"]] == [str(base.resolve()), str(same.resolve())]
    assert len(run.outcomes) == 2 and run.outcomes == load_run(base).outcomes + load_run(same).outcomes
    assert main(["merge", str(base), str(base), "-o", str(tmp_path / "twice")]) == 0
    assert "already in the merge" in capsys.readouterr().err
    assert main(["merge", str(base), "-o", str(merged)]) == 2  # never overwrites a run


def test_export_is_read_by_pytest_benchmark_compare(runs, tmp_path):
    pytest.importorskip("pytest_benchmark", reason="pytest-benchmark is not installed")
    base, _, _ = runs
    target = tmp_path / "0001_edgeai.json"
    assert main(["export", str(base), "-o", str(target)]) == 0
    doc = json.loads(target.read_text())
    assert {"machine_info", "commit_info", "benchmarks", "datetime", "version"} <= set(doc)
    from pytest_benchmark.stats import Stats

    bench = doc["benchmarks"][0]
    reference = Stats()
    for value in bench["stats"]["data"]:
        reference.update(value)
    for field, value in reference.as_dict().items():
        assert bench["stats"][field] == pytest.approx(value), field
    tool = shutil.which("pytest-benchmark", path=str(Path(sys.executable).parent))
    if tool is None:
        pytest.skip("the pytest-benchmark command is not installed next to this Python")
    done = subprocess.run([tool, "compare", str(target), "--group-by", "group"], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "single_stream" in done.stdout and "mobilenet_v2" in done.stdout


def test_export_ops_is_inferences_per_second_for_a_batch(tmp_path):
    """A query of batch 4 is one round of 4 iterations: OPS is the record's inferences/s, not queries/s."""
    pytest.importorskip("pytest_benchmark", reason="pytest-benchmark is not installed")
    from pytest_benchmark.stats import Stats

    run = synthetic.write_run(tmp_path / "reports", 1.0, batches=(4,), count=60, models=("mobilenet_v2",))
    target = tmp_path / "export.json"
    assert main(["export", str(run), "-o", str(target)]) == 0
    [offline] = [b for b in json.loads(target.read_text())["benchmarks"] if b["params"]["batch"] == 4]
    [record] = [r for r in load_run(run).records if r.scenario["batch"] == 4]
    assert offline["stats"]["iterations"] == 4
    assert offline["stats"]["ops"] == pytest.approx(record.metric("throughput_ips"), rel=1e-6)
    reference = Stats()  # pytest-benchmark's own statistics of the exported data agree, OPS included
    for value in offline["stats"]["data"]:
        reference.update(value)
    assert reference.as_dict()["ops"] == pytest.approx(offline["stats"]["ops"])
