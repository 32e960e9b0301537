"""The plugin driven through pytester: options, ini keys, selection, skip/strict, markers, records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import MEASURE_TEST, build_tiny_model

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

QUICK = ("--edgeai-profile", "quick", "-p", "no:cacheprovider")


TWO_DEVICES = """
[devices.cpu]
kind = "cpu"
backend = "onnxruntime"
[devices.cpu.options]
intra_op_num_threads = 1
[devices.cpu.claims.throughput]
min_inferences_per_s = {threshold}
[devices.ghost_gpu]
kind = "gpu"
backend = "onnxruntime"
[devices.ghost_gpu.options]
providers = ["NoSuchExecutionProvider"]
"""


@pytest.fixture
def lab(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester dir with a tiny model, a devices.toml with one real and one absent device."""
    build_tiny_model(pytester.path / "tiny.onnx")
    pytester.makefile(".toml", devices=TWO_DEVICES.format(threshold=1.0))
    pytester.makepyfile(test_throughput=MEASURE_TEST.format(model=str(pytester.path / "tiny.onnx")))
    return pytester


def records_of(pytester: pytest.Pytester) -> list[dict]:
    run = (pytester.path / "reports" / "latest").resolve()
    return [json.loads(p.read_text()) for p in sorted((run / "records").glob("*.json"))]


def test_options_have_their_own_group_in_help(pytester):
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*pytest-edgeai: characterise inference on accelerators*",
                                 "*--device=NAME*", "*--devices-file=PATH*", "*--edgeai-profile*",
                                 "*--edgeai-report-dir=DIR*", "*--edgeai-strict*", "*--edgeai-model=PATH*"])
    result.stdout.fnmatch_lines(["*device (args)*", "*edgeai_profile (string)*", "*edgeai_strict (bool)*"])


def test_a_measurement_writes_a_run_with_valid_records_and_a_report(lab):
    result = lab.runpytest("--device", "cpu", *QUICK)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*edgeai summary*", "*throughput*cpu*tiny*offline*2*", "*HTML report: *report.html"])
    [record] = records_of(lab)
    assert record["schema"] == "pytest-edgeai/result" and record["status"] == "ok"
    assert record["device"]["name"] == "cpu" and record["model"]["name"] == "tiny"
    assert record["scenario"]["batch"] == 2 and record["scenario"]["profile"]["name"] == "quick"
    assert record["metrics"]["throughput_ips"]["value"] > 0
    assert len(record["samples"]["latency_ns"]) >= 5
    assert record["backend"]["settings"]["intra_op_num_threads"] == 1
    assert record["claims"][0]["verdict"] == "met"
    assert record["claims"][0]["interval"] == record["metrics"]["throughput_ips"]["ci95"]
    run = (lab.path / "reports" / "latest").resolve()
    meta = json.loads((run / "run.json").read_text())
    assert meta["status"] == "complete" and meta["environment"]["runtimes"]["onnxruntime"]
    assert "tiny" in (run / "report.html").read_text()


def test_a_missed_claim_fails_after_the_measurement_is_recorded(lab):
    lab.makefile(".toml", devices=TWO_DEVICES.format(threshold=1e12))
    result = lab.runpytest("--device", "cpu", *QUICK)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["claim not met:", "*min_inferences_per_s for tiny on cpu: expected >= 1e+12*short)"])
    [record] = records_of(lab)
    assert record["metrics"]["throughput_ips"]["value"] > 0
    assert record["claims"][0]["verdict"] == "missed"


def test_a_device_that_is_not_attached_skips_with_the_reason(lab):
    result = lab.runpytest("--device", "ghost_gpu", *QUICK, "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        ["*device ghost_gpu (gpu, onnxruntime) is not attached: *lacks NoSuchExecutionProvider*"])


def test_strict_turns_a_missing_device_into_an_error(lab):
    result = lab.runpytest("--device", "ghost_gpu", "--edgeai-strict", *QUICK)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*not attached*[--edgeai-strict]*"])
    assert result.ret == 1


def test_device_values_are_comma_separated_and_repeatable_and_by_kind(lab):
    result = lab.runpytest("--device", "cpu,ghost_gpu", *QUICK, "--collect-only", "-q")
    result.stdout.fnmatch_lines(["*test_measure[[]cpu[]]*", "*test_measure[[]ghost_gpu[]]*"])
    result = lab.runpytest("--device", "gpu", "--device", "cpu", *QUICK, "--collect-only", "-q")
    result.stdout.fnmatch_lines(["*test_measure[[]ghost_gpu[]]*", "*test_measure[[]cpu[]]*"])
    result = lab.runpytest("--device", "all", *QUICK, "--collect-only", "-q")
    result.stdout.fnmatch_lines(["*2 tests collected*"])


def test_auto_selects_only_attached_devices(lab):
    result = lab.runpytest("--device", "auto", *QUICK, "--collect-only", "-q")
    result.stdout.fnmatch_lines(["*test_measure[[]cpu[]]*", "*1 test collected*"])


def test_an_unknown_device_is_a_usage_error_with_did_you_mean(lab):
    result = lab.runpytest("--device", "cpuu", *QUICK)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--device cpuu: no such device in *devices.toml (did you mean 'cpu'?)*"])
    assert "Traceback" not in result.stderr.str()


def test_a_malformed_devices_toml_is_one_clear_message(pytester):
    pytester.makefile(".toml", devices='[devices.cpu]\nkind = "cpu"\nbackend = "onnxruntime"\ntier = "edgy"\n')
    pytester.makepyfile("def test_nothing():\n    assert True\n")
    result = pytester.runpytest(*QUICK)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*devices.toml: devices.cpu.tier: 'edgy' is not allowed (did you mean 'edge'?)*"])
    assert "Traceback" not in result.stderr.str()


def test_ini_keys_set_the_same_options(lab):
    lab.makeini("[pytest]\ndevice = ghost_gpu\nedgeai_strict = true\n")
    result = lab.runpytest(*QUICK)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*ghost_gpu*not attached*[--edgeai-strict]*"])


def test_without_devices_toml_there_is_a_builtin_cpu(pytester):
    build_tiny_model(pytester.path / "tiny.onnx")
    pytester.makepyfile(test_throughput=MEASURE_TEST.format(model=str(pytester.path / "tiny.onnx")))
    result = pytester.runpytest(*QUICK, "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["edgeai: devices cpu (cpu, onnxruntime *) from built-in (no devices.toml); profile quick",
         "*test_measure[[]cpu[]] PASSED*"])


def test_markers_are_registered_and_deselect_other_devices(lab):
    lab.makepyfile(test_marked="""
import pytest

@pytest.mark.edgetpu
def test_tpu_only(edgeai_device):
    pass

@pytest.mark.device("cpu")
def test_cpu_only(edgeai_device):
    assert edgeai_device.name == "cpu"

@pytest.mark.device("ghost_gpu")
def test_without_device_fixture():
    pass
""")
    result = lab.runpytest("--strict-markers", "--device", "cpu", "test_marked.py", *QUICK)
    result.assert_outcomes(passed=1, deselected=2)


def test_a_broken_model_file_is_one_clear_message_and_earlier_records_stay(lab):
    (lab.path / "broken.onnx").write_bytes(b"this is not a protobuf")
    lab.makepyfile(test_zbroken="""
def test_broken(edgeai_device, edgeai_model, edgeai_bench):
    edgeai_bench.offline(edgeai_model({path!r}))
""".format(path=str(lab.path / "broken.onnx")))
    result = lab.runpytest("--device", "cpu", *QUICK)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*ModelError: *broken.onnx: onnxruntime cannot load it*"])
    assert "pytest_edgeai/bench.py" not in result.stdout.str()
    statuses = sorted(r["status"] for r in records_of(lab))
    assert statuses == ["error", "ok"]


def test_user_models_join_the_workloads(lab):
    lab.makepyfile(test_workloads="""
def test_names(edgeai_workload):
    assert edgeai_workload.name
""")
    result = lab.runpytest("test_workloads.py", "--edgeai-model", str(lab.path / "tiny.onnx"), *QUICK,
                           "--collect-only", "-q")
    result.stdout.fnmatch_lines(["*test_names[[]mobilenet_v2[]]*", "*test_names[[]cnn_trad_fpool3[]]*",
                                 "*test_names[[]tiny[]]*", "*7 tests collected*"])


def test_a_missing_user_model_is_a_usage_error(lab):
    result = lab.runpytest("--edgeai-model", "nope.onnx", *QUICK)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--edgeai-model nope.onnx: no such file*"])


def test_report_dir_option_moves_the_run(lab):
    result = lab.runpytest("--device", "cpu", "--edgeai-report-dir", "elsewhere", *QUICK)
    result.assert_outcomes(passed=1)
    assert (lab.path / "elsewhere" / "latest" / "report.html").is_file()
    assert not (lab.path / "reports").exists()


def test_plugin_import_does_not_load_runtimes():
    import subprocess
    import sys

    code = ("import sys, pytest_edgeai.plugin; "
            "print(','.join(m for m in ('onnx', 'onnxruntime', 'numpy', 'scipy', 'jinja2') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_every_option_is_documented_in_the_readme():
    from pytest_edgeai.options import OPTIONS

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert [o.flag for o in OPTIONS if f"| `{o.flag}" not in readme] == []
