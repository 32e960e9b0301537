"""Hostile options, names and paths given to the plugin (issue 16 items 2, 6, 7, 12): one line each,
before anything is measured, and a report however the devices and models are named."""

from __future__ import annotations

import json

import pytest

from conftest import build_tiny_model
from pytest_edgeai.report.charts import distribution_chart, line_chart
from pytest_edgeai.report.html import build_report
from pytest_edgeai.results import synthetic
from pytest_edgeai.results.store import RECORDS_DIR, write_json_atomic

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

QUICK = ("--edgeai-profile", "quick", "-p", "no:cacheprovider")
MEASURE = """
def test_measure(edgeai_device, edgeai_model, edgeai_bench):
    edgeai_bench.offline(edgeai_model({model!r}), batch=1)
"""


def one_line_usage_error(result: pytest.RunResult, text: str) -> None:
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert text in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if line.strip()]) == 1


@pytest.mark.parametrize("value", ["inf", "1e400", "nan", "-3", "soon"])
def test_a_timeout_that_is_not_a_finite_positive_number_is_refused_at_once(pytester, value):
    pytester.makepyfile("def test_nothing(edgeai_device):\n    pass\n")
    result = pytester.runpytest("--edgeai-timeout", value, *QUICK)
    one_line_usage_error(result, f"--edgeai-timeout {value}: give a positive number of seconds")


def test_a_report_dir_that_is_a_file_is_refused_at_once(pytester):
    (pytester.path / "hostname").write_text("bench\n")
    pytester.makepyfile("def test_nothing(edgeai_device):\n    pass\n")
    result = pytester.runpytest("--edgeai-report-dir", str(pytester.path / "hostname"), *QUICK)
    one_line_usage_error(result, "hostname is not a directory")
    result = pytester.runpytest("--edgeai-report-dir", str(pytester.path / "hostname" / "runs"), *QUICK)
    one_line_usage_error(result, "hostname is not a directory")


MATH_NAMES = ("$x^2$", "price_$5_and_$10", r"$\frac{a}{b}$", "$unclosed")


def test_charts_show_dollars_as_text_not_mathtext():
    for name in MATH_NAMES:  # each raised ValueError (mathtext parse error) before
        svg = line_chart(name, name, name, [(name, [1, 2], [3, 4])], marks=[(1.5, name)])
        assert "$" in svg
        assert "$" in distribution_chart(name, name, [(name, [1.0, 2.0, 3.0])])


def test_a_run_with_dollar_names_is_reported(tmp_path):
    run = synthetic.write_run(tmp_path, 1.0, seed=1, batches=(1, 2), count=40, models=("mobilenet_v2",))
    for file in (run / RECORDS_DIR).glob("*.json"):
        data = json.loads(file.read_text())
        data["device"]["name"] = "price_$5_and_$10"
        data["model"]["name"] = "$net^2$"
        write_json_atomic(file, data)
    html = build_report(run).path.read_text()
    assert "price_$5_and_$10" in html and "$net^2$" in html


def test_a_session_with_dollar_names_ends_with_a_report(pytester):
    build_tiny_model(pytester.path / "tiny.onnx")
    pytester.makefile(".toml", devices='[devices."price_$5_and_$10"]\nkind = "cpu"\nbackend = "onnxruntime"\n'
                                       '[models."$tiny^2$"]\npath = "tiny.onnx"\n')
    pytester.makepyfile(MEASURE.format(model="$tiny^2$"))
    result = pytester.runpytest("--device", "price_$5_and_$10", *QUICK)
    result.assert_outcomes(passed=1)
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert "price_$5_and_$10" in (pytester.path / "reports" / "latest" / "report.html").read_text()


def test_a_model_name_that_clashes_with_the_zoo_is_one_usage_error(pytester):
    build_tiny_model(pytester.path / "tiny.onnx")
    pytester.makefile(".toml", devices='[devices.cpu]\nkind = "cpu"\nbackend = "onnxruntime"\n'
                                       '[models.mobilenet_v2]\npath = "tiny.onnx"\n')
    pytester.makepyfile(MEASURE.format(model="mobilenet_v2"))
    result = pytester.runpytest(*QUICK)
    one_line_usage_error(result, "model name used twice: mobilenet_v2")


def test_a_backend_option_typo_is_a_usage_error_not_a_skip(pytester):
    pytester.makefile(".toml", devices='[devices.ov]\nkind = "cpu"\nbackend = "openvino"\n'
                                       '[devices.ov.options]\nperformance_hnt = "THROUGHPUT"\n')
    pytester.makepyfile("def test_nothing(edgeai_device):\n    pass\n")
    result = pytester.runpytest("--device", "ov", *QUICK)
    one_line_usage_error(result, "devices.ov.options.performance_hnt: unknown openvino option "
                                 "(did you mean 'performance_hint'?)")


def test_a_worker_for_a_device_with_a_hostile_name_starts(tmp_path):
    """A Device built in code (a lab's conftest) skips devices.toml's name rule: the worker's log file
    name is escaped all the same."""
    from pytest_edgeai.devices import Device
    from pytest_edgeai.lab.runners import make_runner
    from pytest_edgeai.lab.work import CallRequest

    runner = make_runner(isolated=True)
    device = Device(name="../a/b" + "x" * 300, kind="cpu", backend="onnxruntime")
    try:
        result = runner.call(CallRequest(device, len, ("four",), exclusive=False, timeout_s=60), lambda _e: None)
        assert result.value == 4
    finally:
        runner.close()
