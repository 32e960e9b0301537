"""LiteRT on the CPU interpreter here: a .tflite built with TensorFlow, and ONNX converted to it."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from pytest_edgeai.backends import litert, tflite_convert
from pytest_edgeai.devices import Device
from pytest_edgeai.errors import BackendError
from pytest_edgeai.models.model import model_from_file

pytest.importorskip("ai_edge_litert", reason="ai-edge-litert is not installed (pip install 'pytest-edgeai[litert]')")


def cpu(**options) -> Device:
    return Device(name="lite", kind="cpu", backend="litert", options={"num_threads": 1, **options})


@pytest.fixture(scope="module")
def tf():
    return pytest.importorskip("tensorflow", reason="tensorflow is not installed (pip install "
                                                    "'pytest-edgeai[tflite-convert]'): no .tflite can be built here")


def test_runs_a_tflite_built_with_tensorflow_and_resizes_the_batch(tf, tmp_path):
    w = np.arange(12, dtype=np.float32).reshape(4, 3) / 10

    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
    def f(x):
        return tf.nn.relu(tf.matmul(x, w))

    data = tf.lite.TFLiteConverter.from_concrete_functions([f.get_concrete_function()], f).convert()
    path = tmp_path / "tiny.tflite"
    path.write_bytes(data)
    session = litert.LiteRTBackend().load(model_from_file(path), cpu())
    name = session.inputs[0].name
    assert session.inputs[0].shape == (None, 4)
    for batch in (1, 3):
        x = np.random.default_rng(batch).standard_normal((batch, 4)).astype(np.float32)
        np.testing.assert_allclose(session.run({name: x})[0], np.maximum(x @ w, 0), rtol=1e-5, atol=1e-6)
    s = session.settings()
    assert (s["num_threads"] == 1 and s["quantization"] == "as given"
            and s["interpreter"] == "ai_edge_litert.interpreter")


@pytest.fixture(scope="module")
def conversion_cache(tf, tmp_path_factory):
    if tflite_convert.converter_missing():  # not importorskip: onnx2tf's import raises the recursion limit
        pytest.skip(tflite_convert.converter_missing())
    return tmp_path_factory.mktemp("tflite-cache")


@pytest.fixture
def converted(conversion_cache, tiny_model):
    return model_from_file(tiny_model), conversion_cache


def test_onnx_converted_to_fp32_agrees_with_onnxruntime_and_is_cached(converted, monkeypatch):
    model, cache = converted
    before = model.sha256()
    session = litert.LiteRTBackend().load(model, cpu(cache_dir=str(cache)))
    assert model.sha256() == before  # onnx2tf rewrites its input: the converter must hand it a copy
    x = np.random.default_rng(0).standard_normal((2, 16)).astype(np.float32)
    out = session.run({session.inputs[0].name: x})[0]
    np.testing.assert_allclose(out, ort.InferenceSession(str(model.path)).run(None, {"input": x})[0], atol=1e-5)
    assert session.settings()["quantization"] == "fp32" and "onnx2tf" in session.settings()["converter"]
    monkeypatch.setattr(tflite_convert, "_convert", lambda *a: pytest.fail("converted twice"))
    again = tflite_convert.to_tflite(model, "fp32", cache)
    assert str(again.path) == session.settings()["model_file"]


def test_onnx_converted_to_full_integer_int8(converted):
    model, cache = converted
    session = litert.LiteRTBackend().load(model, cpu(cache_dir=str(cache), quantization="int8"))
    assert session.inputs[0].dtype == "int8" and session.outputs[0].dtype == "int8"
    scale, zero = session.quantization()[session.inputs[0].name]
    assert scale > 0
    x = np.random.default_rng(1).standard_normal((1, 16)).astype(np.float32)
    q = np.clip(np.round(x / scale) + zero, -128, 127).astype(np.int8)
    out = session.run({session.inputs[0].name: q})[0]
    out_scale, out_zero = session.quantization()[session.outputs[0].name]
    probs = (out.astype(np.float32) - out_zero) * out_scale
    ref = ort.InferenceSession(str(model.path)).run(None, {"input": x})[0]
    assert abs(probs.sum() - 1.0) < 0.05  # still a softmax after quantisation
    assert np.abs(probs - ref).max() < 0.1  # int8 of a softmax: within a few quantisation steps
    s = session.settings()
    assert s["quantization"] == "int8" and "seeded standard-normal" in s["calibration"]


def test_conversion_without_tensorflow_says_what_to_install(monkeypatch, tiny_model, tmp_path):
    def missing():
        raise BackendError("converting ONNX to TFLite needs tensorflow and onnx2tf (No module named 'onnx2tf'): "
                           "pip install 'pytest-edgeai[tflite-convert]', or give a .tflite model")

    monkeypatch.setattr(tflite_convert, "_tools", missing)
    with pytest.raises(BackendError, match=r"pytest-edgeai\[tflite-convert\]"):
        litert.LiteRTBackend().load(model_from_file(tiny_model), cpu(cache_dir=str(tmp_path)))


def test_bad_quantisation_and_formats_are_refused(tiny_model, tmp_path):
    from pytest_edgeai.errors import ConfigError

    with pytest.raises(ConfigError, match="quantization: 'int4' is not allowed"):
        litert.LiteRTBackend().load(model_from_file(tiny_model), cpu(quantization="int4"))
    ir = tmp_path / "m.xml"
    ir.write_text("<net/>")
    with pytest.raises(BackendError, match="only ONNX models can be converted"):
        tflite_convert.to_tflite(model_from_file(ir), "fp32", tmp_path)


def test_converting_leaves_the_process_recursion_limit_as_it_was(converted):
    import sys

    model, cache = converted
    before = sys.getrecursionlimit()
    tflite_convert._tools()  # onnx2tf's import raises it to the C int maximum
    tflite_convert.to_tflite(model, "fp32", cache, batch=3)
    assert sys.getrecursionlimit() == before
