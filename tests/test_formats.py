"""Formats a backend cannot run are skipped with the reason, in every suite; a real .tflite runs
through the throughput suite on LiteRT (mediapipe's edge models are not used: mediapipe 0.10.21 pins
numpy < 2, so this test builds its .tflite with TensorFlow instead)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

SUITES = Path(__file__).resolve().parents[1] / "suites"
DEVICES = """
[devices.cpu]
kind = "cpu"
backend = "onnxruntime"

[devices.litert_cpu]
kind = "cpu"
backend = "litert"
"""


@pytest.fixture(scope="module")
def tflite_file(tmp_path_factory) -> Path:
    """A small trained-shape image CNN as a .tflite, converted by TensorFlow's own converter."""
    pytest.importorskip("ai_edge_litert",
                        reason="ai-edge-litert is not installed (pip install 'pytest-edgeai[litert]')")
    tf = pytest.importorskip("tensorflow", reason="tensorflow is not installed (pip install "
                                                  "'pytest-edgeai[tflite-convert]'): no .tflite can be built here")
    rng = np.random.default_rng(0)
    w = rng.standard_normal((3, 3, 3, 8)).astype(np.float32)
    fc = rng.standard_normal((8, 5)).astype(np.float32)

    @tf.function(input_signature=[tf.TensorSpec([1, 32, 32, 3], tf.float32, name="image")])
    def f(x):
        y = tf.nn.relu(tf.nn.conv2d(x, w, 1, "SAME"))
        return tf.nn.softmax(tf.matmul(tf.reduce_mean(y, axis=[1, 2]), fc))

    path = tmp_path_factory.mktemp("tflite") / "tinycnn.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_concrete_functions([f.get_concrete_function()], f).convert())
    return path


def test_a_tflite_runs_on_litert_and_skips_with_the_reason_elsewhere(pytester: pytest.Pytester, tflite_file):
    pytester.makefile(".toml", devices=DEVICES)
    for suite in ("test_throughput", "test_split", "test_compression"):
        pytester.makepyfile(**{suite: (SUITES / f"{suite}.py").read_text()})
    result = pytester.runpytest_subprocess(
        "--devices-file", str(pytester.path / "devices.toml"), "--edgeai-report-dir", str(pytester.path / "reports"),
        "--device", "cpu,litert_cpu", "--edgeai-model", str(tflite_file), "--edgeai-profile", "quick",
        "--edgeai-batches", "1", "-p", "no:cacheprovider", "-k", "tinycnn and (single_stream or batch_sweep "
        "or bytes_per_cut or quantised_variants)", "-rs")
    out = result.stdout.str()
    result.assert_outcomes(passed=2, skipped=6)  # throughput x2 on LiteRT; the rest skip, none fails
    assert "tinycnn on cpu (onnxruntime): onnxruntime runs .onnx models, not tflite" in out
    assert "the split study cuts ONNX graphs; tinycnn is tflite" in out
    assert "tinycnn is tflite: the quantisers here take ONNX models" in out
    records = [json.loads(p.read_text()) for p in (pytester.path / "reports" / "latest" / "records").glob("*.json")]
    ran = [r for r in records if r["device"]["name"] == "litert_cpu" and r["status"] == "ok"]
    assert ran and all(r["model"]["format"] == "tflite" for r in ran)
    assert any(r["metrics"].get("throughput_ips", {}).get("value", 0) > 0 for r in ran)
