"""A suite's own study (``edgeai_bench.call``: a tenant sweep, LoadGen, block profiling) has the
protection a measurement has: it runs in the device's isolated worker, a crash fails that test with the
signal named, a hang is killed at --edgeai-timeout, and what the study relayed before is recorded.

Driven through pytester with the fake backends of test_isolation; the studies live in a module the
worker imports, as the suites' studies live in pytest_edgeai.
"""

from __future__ import annotations

import os

import pytest
from conftest import copy_suite
from test_isolation import QUICK, bench_dir, records  # noqa: F401  (bench_dir is a fixture)

STUDIES = '''
import ctypes, os, time


def steps(n, on_step):
    for i in range(n):
        on_step(i, os.getpid())
    return os.getpid()


def crash_after_one_step(on_step):
    on_step(0, os.getpid())
    ctypes.string_at(0)


def hang():
    time.sleep(3600)


def slow_but_alive(n, every_s, on_step):
    for i in range(n):
        time.sleep(every_s)
        on_step(i, os.getpid())
    return n


def broken():
    return {}["missing"]


def vanish():
    from pytest_edgeai.errors import DeviceUnavailable

    raise DeviceUnavailable("fake accelerator fell off the USB bus mid-study")
'''

TESTS = '''
import os
import pytest
import studies


def step_recorder(bench):
    def on_step(i, pid):
        record = bench.new_record(None, {"name": "study_step", "step": i})
        record.extra["pid"] = pid
        bench.save(record)
    return on_step


def test_steps(edgeai_bench):
    seen = []
    pid = edgeai_bench.call(studies.steps, 3, events={"on_step": lambda i, p: seen.append((i, p))})
    assert seen == [(0, pid), (1, pid), (2, pid)]
    edgeai_bench.save(edgeai_bench.new_record(None, {"name": "study_summary"}))
    with open("pids.txt", "a") as fh:
        fh.write(f"{pid}\\n")


def test_crash(edgeai_bench):
    edgeai_bench.call(studies.crash_after_one_step, events={"on_step": step_recorder(edgeai_bench)})


def test_hang(edgeai_bench):
    edgeai_bench.call(studies.hang)


def test_alive(edgeai_bench):
    assert edgeai_bench.call(studies.slow_but_alive, 4, 0.6, events={"on_step": step_recorder(edgeai_bench)}) == 4


def test_broken(edgeai_bench):
    edgeai_bench.call(studies.broken)


def test_vanish(edgeai_bench):
    edgeai_bench.call(studies.vanish)


def test_unpicklable(edgeai_bench):
    edgeai_bench.call(lambda: 1)


def test_after(edgeai_bench, edgeai_model):
    edgeai_bench.offline(edgeai_model("tiny.onnx"))
'''


@pytest.fixture
def studies_dir(bench_dir: pytest.Pytester) -> pytest.Pytester:  # noqa: F811
    bench_dir.makepyfile(studies=STUDIES, test_bench=TESTS)
    return bench_dir


def run(pytester: pytest.Pytester, select: str, *args: str):
    return pytester.runpytest("--device", "ok", "-k", select, *args, *QUICK, "-rs")


def test_a_study_runs_in_the_worker_and_relays_its_steps_in_order(studies_dir):
    run(studies_dir, "steps").assert_outcomes(passed=1)
    [pid] = (studies_dir.path / "pids.txt").read_text().split()
    assert int(pid) != os.getpid()
    [summary] = records(studies_dir)
    assert set(summary["extra"]["clocks"]) == {"before", "after"}  # read around the study, in the worker


def test_without_isolation_a_study_runs_in_the_pytest_process(studies_dir):
    run(studies_dir, "steps", "--edgeai-no-isolation").assert_outcomes(passed=1)
    assert (studies_dir.path / "pids.txt").read_text().split() == [str(os.getpid())]


def test_a_study_that_crashes_fails_its_test_keeps_its_steps_and_the_session_goes_on(studies_dir):
    result = run(studies_dir, "crash or after")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*the runtime crashed with SIGSEGV during ok: crash_after_one_step*"])
    steps = [r for r in records(studies_dir) if r["scenario"]["name"] == "study_step"]
    [crashed] = [r for r in records(studies_dir) if r["status"] == "error"]
    assert crashed["scenario"]["name"] == "crash_after_one_step" and "SIGSEGV" in crashed["error"]
    assert [r["scenario"]["step"] for r in steps] == [0] and steps[0]["extra"]["pid"] != os.getpid()
    assert any(r["scenario"]["name"] == "offline" and r["status"] == "ok" for r in records(studies_dir))


def test_a_study_that_hangs_is_killed_and_its_device_lost(studies_dir):
    result = run(studies_dir, "hang or after", "--edgeai-timeout", "1.5")
    result.assert_outcomes(failed=1, skipped=1)
    result.stdout.fnmatch_lines(["*ok: hang: no answer within 1.5 s (--edgeai-timeout)*was killed*",
                                 "*SKIPPED*device ok was lost earlier in this run*"])


def test_a_study_that_keeps_relaying_steps_outlives_the_time_limit(studies_dir):
    """2.4 s of work against a 1.5 s limit: each relayed step is a sign of life and restarts the limit."""
    run(studies_dir, "alive", "--edgeai-timeout", "1.5").assert_outcomes(passed=1)
    assert len([r for r in records(studies_dir) if r["scenario"]["name"] == "study_step"]) == 4


def test_a_device_that_vanishes_during_a_study_is_lost_for_the_rest_of_the_run(studies_dir):
    result = run(studies_dir, "vanish or after")
    result.assert_outcomes(failed=1, skipped=1)
    result.stdout.fnmatch_lines(["*SKIPPED*device ok was lost earlier in this run: fake accelerator fell off the "
                                 "USB bus mid-study*"])
    [failed] = records(studies_dir)
    assert failed["scenario"]["name"] == "vanish" and failed["status"] == "error"


def test_a_python_error_in_a_study_is_one_line_that_says_where(studies_dir):
    result = run(studies_dir, "broken or after")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*the runtime failed: KeyError: 'missing' (at studies.py:* in broken)*"])


def test_the_concurrency_suite_survives_a_runtime_that_segfaults_under_concurrent_models(bench_dir):  # noqa: F811
    """The real suite: its concurrent-models study crashes on one device, the other device still runs."""
    copy_suite("concurrency", bench_dir.path)
    (bench_dir.path / "test_bench.py").unlink()
    result = bench_dir.runpytest("--device", "segfault,ok", "-k", "concurrent_models", *QUICK)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*the runtime crashed with SIGSEGV during segfault: run_concurrent_models*"])
    failed = [r for r in records(bench_dir) if r["status"] == "error"]
    assert [(r["device"]["name"], r["scenario"]["name"]) for r in failed] == [("segfault", "run_concurrent_models")]
    assert "SIGSEGV" in failed[0]["error"]


def test_records_made_from_a_throttled_study_say_so_and_a_later_measurement_does_not(monkeypatch, tiny_model):
    from pytest_edgeai.bench import Bench
    from pytest_edgeai.devices import builtin_cpu
    from pytest_edgeai.lab import clocks
    from pytest_edgeai.measure.profiles import Profile
    from pytest_edgeai.models.model import model_from_file

    monkeypatch.setattr(clocks, "throttling", lambda device, before, after: ["cpu0 ended at 40% of its maximum"])
    bench = Bench(builtin_cpu(), "concurrency", "t", Profile("t", 1, 0.0, 0.0, 3, 30), save=lambda r: None)
    try:
        assert bench.call(len, "abc") == 3
        made = bench.new_record(None, {"name": "from_the_study"})
        assert made.extra["throttled"] is True and made.warnings == ["throttled: cpu0 ended at 40% of its maximum"]
        monkeypatch.setattr(clocks, "throttling", lambda device, before, after: [])
        measured = bench.offline(model_from_file(tiny_model))
        assert "throttled" not in measured.extra and not any(w.startswith("throttled") for w in measured.warnings)
    finally:
        bench.close()


def test_a_study_that_cannot_be_sent_says_what_a_study_must_be(studies_dir):
    result = run(studies_dir, "unpicklable or after")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*ok: test_unpicklable.<locals>.<lambda>: cannot be sent to the isolated worker*"
                                 "a study is a module-level function and its arguments plain data*"])


def test_a_study_that_times_nothing_keeps_the_loaded_model_and_reads_no_clocks(tiny_model):
    from pytest_edgeai.bench import Bench
    from pytest_edgeai.devices import builtin_cpu
    from pytest_edgeai.measure.profiles import Profile
    from pytest_edgeai.models.model import model_from_file

    model = model_from_file(tiny_model)
    bench = Bench(builtin_cpu(), "split", "t", Profile("t", 1, 0.0, 0.0, 3, 30), save=lambda r: None)
    try:
        assert bench.offline(model).extra["model_load_s"] is not None
        assert bench.call(len, "abc", exclusive=False) == 3
        assert "clocks" not in bench.new_record(None, {"name": "bytes"}).extra
        assert bench.offline(model).extra["model_load_s"] is None  # still loaded: not reloaded
        bench.call(len, "abc")  # a timed study frees it, and reads the clocks
        assert set(bench.new_record(None, {"name": "sweep"}).extra["clocks"]) == {"before", "after"}
        assert bench.offline(model).extra["model_load_s"] is not None
    finally:
        bench.close()
