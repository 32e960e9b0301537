"""A run store under attack (issue 16 items 3, 4, 8, 12): every bad record or file is named and
skipped, every good record is used, and report, compare, export and merge each finish."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from pytest_edgeai.cli import main
from pytest_edgeai.results import synthetic
from pytest_edgeai.results.store import (
    RECORDS_DIR,
    RUN_FILE,
    load_run,
    read_json,
    write_json_atomic,
)

ONE = {"batches": (1,), "count": 60, "models": ("mobilenet_v2",)}


@pytest.fixture
def run(tmp_path):
    return synthetic.write_run(tmp_path / "reports", 1.0, seed=1, started=100.0, **ONE)


def good(run: Path) -> dict:
    return json.loads(min((run / RECORDS_DIR).glob("[0-9]*.json")).read_text())


def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


def hostile(base: dict) -> dict[str, str]:
    """File name -> text of a record that parses (or nearly) but is not a record of the right shape."""
    def variant(**changes) -> str:
        data = {**base, "id": changes.pop("id", "x" * 12), **changes}
        return json.dumps(data)

    missing = {k: v for k, v in base.items() if k not in ("suite", "model")}
    return {
        "missing.json": json.dumps({**missing, "id": "m" * 12}),
        "wrongtype.json": variant(id="w" * 12, device="cpu", samples=[1, 2]),
        "metricnumber.json": variant(id="n" * 12, metrics={"throughput_ips": 5.0}),
        "metricvalue.json": variant(id="v" * 12, metrics={"throughput_ips": {"value": "fast", "unit": "x"}}),
        "deep.json": '{"schema": "pytest-edgeai/result", "extra": ' + deep(100_000) + "}",
        "nested.json": variant(id="d" * 12, extra={"a": json.loads(deep(200))}),
        "huge-int.json": variant(id="h" * 12, samples={"latency_ns": [10**400]}),
        "array.json": "[1, 2, 3]",
        "version-float.json": variant(id="f" * 12, schema_version=1.0),
        "version-none.json": variant(id="o" * 12, schema_version=None),
        "version-zero.json": variant(id="z" * 12, schema_version=0),
        "version-negative.json": variant(id="g" * 12, schema_version=-5),
        "claims.json": variant(id="c" * 12, claims=[1]),
        "path-id.json": variant(id="../../../escaped"),
        "created-huge.json": variant(id="t" * 12, created=1e300),
        "windows.json": variant(id="i" * 12, metrics={"throughput_ips": {"value": 5.0, "unit": "x", "windows": 5}}),
        "rounds.json": variant(id="r" * 12, metrics={"throughput_ips": {"value": 5.0, "unit": "x", "rounds": "3"}}),
    }


def test_bad_records_are_named_and_skipped_and_good_ones_used(run):
    base = good(run)
    bad = hostile(base)
    for name, text in bad.items():
        (run / RECORDS_DIR / name).write_text(text)
    big_sample = {**base, "id": "b" * 12, "samples": {"latency_ns": [10**30, 2.0e6]}}
    (run / RECORDS_DIR / "big-sample.json").write_text(json.dumps(big_sample))
    loaded = load_run(run)
    named = {Path(p.split(":")[0]).name for p in loaded.problems}
    assert named == set(bad)
    assert len(loaded.problems) == len(bad)  # one line each
    assert "b" * 12 in {r.id for r in loaded.records}  # 1e30 is a number a float holds: used
    assert base["id"] in {r.id for r in loaded.records}


def test_schema_versions_are_classified(run):
    base = good(run)
    for name, version in (("float", 1.0), ("none", None), ("zero", 0), ("neg", -5), ("newer", 99)):
        (run / RECORDS_DIR / f"{name}.json").write_text(json.dumps({**base, "schema_version": version}))
    by_file = {Path(p.split(":")[0]).stem: p for p in load_run(run).problems}
    assert "has no schema_version" in by_file["none"]
    for name in ("float", "zero", "neg"):
        assert "is not a version" in by_file[name] and "upgrade" not in by_file[name]
    assert "newer than this pytest-edgeai reads" in by_file["newer"] and "upgrade" in by_file["newer"]


def test_report_compare_export_merge_finish_over_bad_records(run, tmp_path, capsys):
    other = synthetic.write_run(tmp_path / "reports", 1.0, seed=2, started=200.0, **ONE)
    for target in (run, other):
        for name, text in hostile(good(target)).items():
            (target / RECORDS_DIR / name).write_text(text)
        big = {**good(target), "id": "b" * 12, "samples": {"latency_ns": [10**30, 2.0e6]}}
        (target / RECORDS_DIR / "big-sample.json").write_text(json.dumps(big))
    out = tmp_path / "r.html"
    assert main(["report", str(run), str(other), "-o", str(out), "--baseline", str(run)]) == 0
    assert out.is_file()
    assert main(["compare", str(run), str(other)]) in (0, 1)
    assert main(["export", str(other), "-o", str(tmp_path / "b.json")]) == 0
    assert main(["merge", str(run), str(other), "-o", str(tmp_path / "merged")]) == 0
    merged = load_run(tmp_path / "merged")
    assert merged.problems == []
    assert len(merged.records) == len(load_run(run).records) + len(load_run(other).records) - 1  # b*12 twice
    err = capsys.readouterr().err
    assert "Traceback" not in err and "deep.json" in err


def test_a_record_id_that_is_a_path_never_becomes_one(run, tmp_path):
    # merge writes each record it reads under records/<created>-<id>.json: an id "../../../escaped" put a file
    # outside the merged run
    (run / RECORDS_DIR / "escape.json").write_text(json.dumps({**good(run), "id": "../../../escaped"}))
    problems = load_run(run).problems
    assert len(problems) == 1 and "escape.json" in problems[0] and "is not a record id" in problems[0]
    assert main(["merge", str(run), "-o", str(tmp_path / "out" / "merged")]) == 0
    assert not list(tmp_path.rglob("*escaped*"))


def test_run_json_of_the_wrong_shape_is_said_and_the_records_used(run, capsys):
    (run / RUN_FILE).write_text("[1, 2]")
    loaded = load_run(run)
    assert loaded.records and "not an object" in loaded.problems[0]
    (run / RUN_FILE).write_text(json.dumps({"status": "complete", "environment": "h", "started": "now"}))
    loaded = load_run(run)
    assert loaded.complete and "environment" not in loaded.meta and len(loaded.problems) == 2
    assert main(["report", str(run)]) == 0
    assert main(["export", str(run), "-o", str(run / "x.json")]) == 0


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_fifo_and_device_links_in_records_are_not_read(run):
    os.mkfifo(run / RECORDS_DIR / "fifo.json")
    (run / RECORDS_DIR / "zero.json").symlink_to("/dev/zero")
    loaded = load_run(run)  # would hang on the FIFO, or read /dev/zero without end
    assert sorted(Path(p.split(":")[0]).name for p in loaded.problems) == ["fifo.json", "zero.json"]
    assert all("not a regular file" in p for p in loaded.problems)
    assert len(loaded.records) == 2


def test_a_record_over_the_size_cap_is_refused(tmp_path):
    path = tmp_path / "big.json"
    path.write_text(json.dumps({"a": "x" * 2000}))
    data, why = read_json(path, limit=1000)
    assert data is None and "larger than the 1000" in why


def test_temporary_files_of_an_interrupted_write_are_not_records(run):
    # what filecache.atomic_write leaves if killed between write and rename
    (run / RECORDS_DIR / ".00000000000001-abc.xyz123.json").write_text('{"schema": "pytest-edgeai/res')
    loaded = load_run(run)
    assert loaded.problems == [] and len(loaded.records) == 2


def test_records_that_is_a_file_or_a_symlink_loop_says_so(tmp_path, capsys):
    for name, make in (("file", lambda d: d.write_text("x")), ("loop", lambda d: d.symlink_to(d))):
        run = synthetic.write_run(tmp_path / name, 1.0, seed=1, started=100.0, **ONE)
        records = run / RECORDS_DIR
        for f in records.iterdir():
            f.unlink()
        records.rmdir()
        make(records)
        loaded = load_run(run)
        assert loaded.records == []
        assert len(loaded.problems) == 1
        assert ("is a file, not a directory" if name == "file" else "is a symlink loop") in loaded.problems[0]
        assert main(["report", str(run)]) == 0
        assert "no records read" in capsys.readouterr().err


def test_a_run_whose_baseline_was_deleted_is_still_reported(run, tmp_path, capsys):
    base = synthetic.write_run(tmp_path / "reports", 1.0, seed=2, started=50.0, **ONE)
    meta = json.loads((run / RUN_FILE).read_text())
    write_json_atomic(run / RUN_FILE, {**meta, "baseline": str(base)})
    for f in (base / RECORDS_DIR).iterdir():
        f.unlink()
    (base / RECORDS_DIR).rmdir()
    (base / RUN_FILE).unlink()
    base.rmdir()
    assert main(["report", str(run)]) == 0
    err = capsys.readouterr().err
    assert "baseline" in err and str(base) in err and "Traceback" not in err
    assert (run / "report.html").is_file()


@pytest.mark.parametrize("output, expect", [
    ("no/such/dir/x.html", "No such file or directory"),
    ("", "Is a directory"),
])
def test_report_output_paths_that_cannot_be_written_are_one_line(run, tmp_path, capsys, output, expect):
    output = str(tmp_path / output)
    assert main(["report", str(run), "-o", output]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and expect in err and "Traceback" not in err



@pytest.mark.parametrize("argv", [
    ["export", "{run}", "-o", "{missing}/b.json"],
    ["merge", "{run}", "-o", "{file}"],
    ["merge", "{run}", "-o", "{file}/merged"],
])
def test_export_and_merge_outputs_that_cannot_be_written_are_one_line(run, tmp_path, capsys, argv):
    (tmp_path / "afile").write_text("x")
    missing = tmp_path / "no" / "such"
    assert main([a.format(run=run, file=tmp_path / "afile", missing=missing) for a in argv]) == 2
    assert not missing.parent.exists()
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_deep_nesting_is_refused_even_when_a_library_raised_the_recursion_limit(run):
    """json's C parser recurses on the C stack: with the limit raised (hypothesis and torch raise it), 100,000
    levels overflowed it and killed the process (exit 139). Run apart so a crash fails this test alone."""
    import subprocess

    (run / RECORDS_DIR / "deep.json").write_text(deep(100_000))
    code = ("import sys; sys.setrecursionlimit(10**6)\n"
            "from pytest_edgeai.results.store import load_run\n"
            f"print(load_run({str(run)!r}).problems)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr[-500:]
    assert "deep.json: nested too deeply to be a record" in done.stdout
