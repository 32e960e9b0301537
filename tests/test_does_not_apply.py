"""A study that does not apply to a model skips with the reason, never fails: a model with a fixed batch
of 1 in the batch sweep (batch 1 is measured, the others are skipped), and a scikit-learn model whose
output is a ZipMap (a sequence of dicts, not a tensor) in the compression and split suites; and, below the
full profile, a trained zoo model is not timed again where its seeded twin (the same graph) is."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from pytest_edgeai.backends.base import TensorSpec
from pytest_edgeai.errors import ModelError
from pytest_edgeai.measure.inputs import batch_problem, make_feeds
from pytest_edgeai.models.model import model_from_file, non_tensor_outputs
from pytest_edgeai.models.zoo import seeded_twin

SUITES = Path(__file__).resolve().parents[1] / "suites"
QUICK = ("--edgeai-profile", "quick", "-p", "no:cacheprovider", "-p", "no:randomly", "-rs")


def fixed_batch_model(path: Path) -> Path:
    """MatMul + Softmax whose input is declared [1, 16]: it takes batch 1 and nothing else."""
    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((16, 4)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["input", "w"], ["logits"]),
         helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1)], "fixed",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 16])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [1, 4])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def zipmap_model(path: Path) -> Path:
    """skl2onnx's default export of a classifier: probabilities as a ZipMap (a sequence of maps)."""
    pytest.importorskip("skl2onnx", reason="skl2onnx is not installed (pip install 'pytest-edgeai[compress]')")
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    x = np.random.default_rng(0).standard_normal((40, 4)).astype(np.float32)
    onnx.save(to_onnx(LogisticRegression().fit(x, (x[:, 0] > 0).astype(int)), x[:1]), str(path))
    return path


def test_the_batch_rule_says_why_and_feeding_raises_the_same():
    fixed = [TensorSpec("input", (1, 16), "float32")]
    assert batch_problem(fixed, 1) is None
    assert batch_problem([TensorSpec("input", ("N", 16), "float32")], 8) is None
    why = batch_problem(fixed, 2)
    assert why == "input 'input' has a static batch of 1 (shape [1, 16]): it cannot be fed at batch 2"
    with pytest.raises(ModelError) as raised:
        make_feeds(fixed, 2)
    assert str(raised.value) == why
    assert batch_problem(fixed, 2, overrides={"input": [1, 16]}) is None  # the lab's declared shape wins
    assert "only scalar inputs" in batch_problem([TensorSpec("x", (), "float32")], 4)


def test_a_zipmap_output_is_named_and_a_tensor_model_is_not(tmp_path):
    why = non_tensor_outputs(model_from_file(zipmap_model(tmp_path / "zipmap.onnx")))
    assert why and "output_probability is a sequence of maps" in why and "ZipMap" in why
    assert non_tensor_outputs(model_from_file(fixed_batch_model(tmp_path / "fixed1.onnx"))) is None


def test_a_trained_zoo_model_names_the_seeded_twin_that_runs_its_graph():
    assert seeded_twin("mobilenet_v2_imagenet") == "mobilenet_v2"
    assert seeded_twin("mobilenet_v2") is None and seeded_twin("inception_v4") is None
    assert seeded_twin("not_a_zoo_model") is None


def test_fixed_batch_and_zipmap_models_skip_what_does_not_apply(pytester: pytest.Pytester):
    fixed = fixed_batch_model(pytester.path / "fixed1.onnx")
    zipmap = zipmap_model(pytester.path / "zipmap.onnx")
    pytester.makefile(".toml", devices='[devices.cpu]\nkind = "cpu"\nbackend = "onnxruntime"\n'
                                       '[devices.cpu.options]\nintra_op_num_threads = 1\n'
                                       '[devices.cpu.claims.throughput]\nmin_batching_speedup = 1.01\n')
    for suite in ("test_throughput", "test_split", "test_compression"):
        pytester.makepyfile(**{suite: (SUITES / f"{suite}.py").read_text()})
    result = pytester.runpytest_subprocess(
        "--device", "cpu", f"--edgeai-model={fixed}", f"--edgeai-model={zipmap}", "--edgeai-batches", "1,2,4", *QUICK,
        "-k", "(fixed1 and batch_sweep) or (zipmap and (bytes_per_cut or planned or quantised_variants))")
    out = result.stdout.str()
    result.assert_outcomes(skipped=4)
    assert "batches 2, 4 skipped: input 'input' has a static batch of 1 (shape [1, 16])" in out
    assert "min_batching_speedup for fixed1 on cpu: not checkable: only batch 1 can be measured" in out
    assert "compression does not apply to zipmap: its output output_probability is a sequence of maps" in out
    assert "SKIPPED [2] test_split.py:" in out  # both split tests, one reason
    assert "split does not apply to zipmap: its output output_probability is a sequence of maps" in out
    run = (pytester.path / "reports" / "latest").resolve()
    records = [json.loads(p.read_text()) for p in (run / "records").glob("*.json")]
    assert all(r["status"] == "ok" for r in records), [r.get("error") for r in records]
    assert all(r["model"].get("name") == "fixed1" for r in records)  # nothing measured the ZipMap model
    assert {r["scenario"]["batch"] for r in records if r["scenario"]["name"] == "offline"} == {1}
    pooled = [r for r in records if r["scenario"]["name"] == "offline_rounds"]
    assert len(pooled) == 1 and pooled[0]["metrics"]["throughput_ips"]["value"] > 0
    assert set(pooled[0]["extra"]["batches_skipped"]) == {"2", "4"}
    assert " ? " not in out and "error" not in out.split("edgeai summary")[-1]
