"""Through pytester: a user's model with two inputs (a photograph and a feature vector) goes through
the split suite's bytes study and plan, the image fed photograph views and the other a seeded
synthetic field, each labelled so in the record."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import build_tiny_model
from onnx import TensorProto, helper, numpy_helper

SUITES = Path(__file__).resolve().parents[1] / "suites"
DEVICES = """
[devices.cpu]
kind = "cpu"
backend = "onnxruntime"
"""


def two_input_cnn(path: Path) -> None:
    """img [N,3,32,32] -> Conv, plus meta [N,4] -> MatMul -> Reshape [N,8,1,1], added; then Relu -> Conv
    -> Relu -> GlobalAveragePool -> Flatten -> Gemm. Single-tensor cuts exist only after the join."""
    rng = np.random.default_rng(0)
    inits = {"w1": rng.standard_normal((8, 3, 3, 3)), "wm": rng.standard_normal((4, 8)),
             "w2": rng.standard_normal((8, 8, 3, 3)), "fc": rng.standard_normal((8, 10)), "fb": np.zeros(10)}
    tensors = [numpy_helper.from_array(v.astype(np.float32), k) for k, v in inits.items()]
    tensors.append(numpy_helper.from_array(np.array([-1, 8, 1, 1], np.int64), "shape"))
    nodes = [helper.make_node("Conv", ["img", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1], strides=[2, 2]),
             helper.make_node("MatMul", ["meta", "wm"], ["m"], name="embed"),
             helper.make_node("Reshape", ["m", "shape"], ["m4"], name="reshape"),
             helper.make_node("Add", ["c1", "m4"], ["a"], name="join"),
             helper.make_node("Relu", ["a"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
             helper.make_node("GlobalAveragePool", ["r2"], ["g"], name="gap"),
             helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "fc", "fb"], ["logits"], name="fc")]
    graph = helper.make_graph(nodes, "usertwo",
                              [helper.make_tensor_value_info("img", TensorProto.FLOAT, ["N", 3, 32, 32]),
                               helper.make_tensor_value_info("meta", TensorProto.FLOAT, ["N", 4])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
                              initializer=tensors)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def run_split_suite(pytester: pytest.Pytester, model: str, select: str) -> pytest.RunResult:
    """The shipped split suite at the quick profile on ``model`` (a file in the pytester dir), the tests ``-k select``,
    with the devices.toml the test wrote there."""
    pytester.makepyfile(test_split=(SUITES / "test_split.py").read_text())
    return pytester.runpytest_subprocess(
        "--devices-file", str(pytester.path / "devices.toml"), "--edgeai-report-dir", str(pytester.path / "reports"),
        "--edgeai-model", str(pytester.path / model), "--edgeai-profile", "quick",
        "-p", "no:cacheprovider", "-k", select)

def test_a_two_input_user_model_is_studied_planned_and_executed(pytester: pytest.Pytester):
    pytest.importorskip("PIL", reason="photographs are decoded with Pillow")
    two_input_cnn(pytester.path / "usertwo.onnx")
    pytester.makefile(".toml", devices=DEVICES)
    result = run_split_suite(pytester, "usertwo.onnx", "usertwo")
    result.assert_outcomes(passed=2)
    records = {r["scenario"]["name"]: r for r in
               (json.loads(p.read_text()) for p in (pytester.path / "reports" / "latest" / "records").glob("*.json"))}
    cuts = records["split_bytes_per_cut"]
    inputs = cuts["scenario"]["input_set"]["inputs"]
    assert inputs["img"].startswith("photographs") and inputs["meta"].startswith("synthetic")
    assert {c["cut"].split(":")[1] for c in cuts["extra"]["cuts"]} >= {"relu1", "relu2"}  # after the join only
    assert not any(c["cut"].split(":")[1] in ("conv1", "embed", "reshape") for c in cuts["extra"]["cuts"])
    # both inputs cross at boundary 0: 3x32x32 + 4 float32s
    assert cuts["metrics"]["input_raw_bytes"]["value"] == 32 * 32 * 3 + 4 * 4  # uint8 pixels + the synthetic floats
    planned = records["split_plan"]
    assert planned["extra"]["boundary_bytes"][0] == (3 * 32 * 32 + 4) * 4
    assert planned["metrics"]["measured_latency_ms"]["value"] > 0
    assert planned["metrics"]["max_abs_output_error"]["value"] < 1e-3  # the split outputs are the whole model's
    assert planned["metrics"]["measured_throughput_per_s"]["value"] > 0


def test_a_cut_saving_claim_at_a_block_the_model_lacks_is_missed_naming_the_nearest(pytester: pytest.Pytester):
    """A misspelt ``at`` found no cut, and the claim was judged on nothing: skipped as 'nothing was measured'."""
    build_tiny_model(pytester.path / "tiny.onnx")
    pytester.makefile(".toml", devices=DEVICES + '[devices.cpu.claims.split]\nmin_cut_saving = { "*" = { '
                                                  'threshold = 1.0, at = "Reluu", device_independent = true } }\n')
    result = run_split_suite(pytester, "tiny.onnx", "bytes_per_cut and tiny")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*no cut ends a block named 'Reluu' (did you mean 'Relu'?)*"])
    record = next(json.loads(p.read_text()) for p in (pytester.path / "reports" / "latest" / "records").glob("*.json")
                  if json.loads(p.read_text())["scenario"]["name"] == "split_bytes_per_cut")
    assert [c["verdict"] for c in record["claims"]] == ["missed"]
