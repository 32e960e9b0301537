"""Quantised variants: built, cached, loadable and smaller; bad input gets one clear message;
a failing method leaves an error record while the fp32 measurement stays recorded."""

import sys
import types

import numpy as np
import onnx
import pytest
from conftest import build_tiny_model

from pytest_edgeai.backends.base import get_backend, input_specs
from pytest_edgeai.bench import Bench
from pytest_edgeai.compress import base, study, variants
from pytest_edgeai.compress.fidelity import model_scores
from pytest_edgeai.devices import builtin_cpu
from pytest_edgeai.errors import CalibrationError, MethodUnavailable, ModelError, QuantizationError
from pytest_edgeai.measure.profiles import Profile
from pytest_edgeai.models.model import Model, model_from_file, resolve_model

TINY_PROFILE = Profile("unit", warmup_count=1, warmup_s=0.0, min_duration_s=0.0, min_count=3, timeout_s=30)


@pytest.fixture(scope="module")
def kws(tmp_path_factory):
    """cnn_trad_fpool3: the zoo's smallest model (244 K params), built into a private cache."""
    return resolve_model("cnn_trad_fpool3", tmp_path_factory.mktemp("zoo"))


@pytest.fixture(scope="module")
def mlp(tmp_path_factory):
    """The shared tiny classifier: (N, 16) -> softmax over 4 classes, input named 'input'."""
    return model_from_file(build_tiny_model(tmp_path_factory.mktemp("mlp") / "mlp.onnx"), name="mlp")


def _calib(n=4, shape=(1, 1, 32, 40), name="input", seed=1):
    rng = np.random.default_rng(seed)
    return [{name: rng.standard_normal(shape).astype(np.float32)} for _ in range(n)]


def _input_name(model):
    return onnx.load(str(model.path)).graph.input[0].name


@pytest.mark.parametrize("method", ["fp16", "int8_dynamic", "int8_static"])
def test_variant_is_smaller_and_runs(kws, tmp_path, method):
    calib = _calib(name=_input_name(kws)) if method == "int8_static" else None
    v = variants.make_variant(kws, method, tmp_path, calib)
    assert v.path.is_file() and v.path.parent == tmp_path
    assert v.path.stat().st_size < kws.path.stat().st_size * (0.55 if method == "fp16" else 0.3)
    assert v.name == f"cnn_trad_fpool3@{method}" and v.params["method"] == method
    session = get_backend("onnxruntime").load(v, builtin_cpu())
    x = _calib(1, name=session.inputs[0].name)[0]
    out = session.run(x)[0]
    ref = get_backend("onnxruntime").load(kws, builtin_cpu()).run(x)[0]
    assert out.shape == ref.shape and np.isfinite(out).all()


def test_variants_are_cached_by_params_and_calibration(mlp, tmp_path):
    calib = _calib(shape=(1, 16), name="input")
    first = variants.make_variant(mlp, "int8_static", tmp_path, calib)
    stamp = first.path.stat().st_mtime_ns
    again = variants.make_variant(mlp, "int8_static", tmp_path, calib)
    assert again.path == first.path and again.path.stat().st_mtime_ns == stamp
    other_params = variants.make_variant(mlp, "int8_static", tmp_path, calib, per_channel=True)
    other_calib = variants.make_variant(mlp, "int8_static", tmp_path, _calib(shape=(1, 16), name="input", seed=2))
    assert len({first.path, other_params.path, other_calib.path}) == 3
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def test_calibration_of_the_wrong_shape_is_one_clear_message(kws, tmp_path):
    name = _input_name(kws)
    with pytest.raises(CalibrationError,
                       match=rf"input '{name}' has shape \[1, 1, 40, 32\]; the model takes \['\?', 1, 32, 40\]"):
        variants.make_variant(kws, "int8_static", tmp_path, _calib(shape=(1, 1, 40, 32), name=name))
    with pytest.raises(CalibrationError, match="feeds \\['wrong'\\]"):
        variants.make_variant(kws, "int8_static", tmp_path, _calib(name="wrong"))
    with pytest.raises(CalibrationError, match="is float64"):
        variants.make_variant(kws, "int8_static", tmp_path, [{name: np.zeros((1, 1, 32, 40))}])
    with pytest.raises(QuantizationError, match="needs calibration data"):
        variants.make_variant(kws, "int8_static", tmp_path)
    assert not list(tmp_path.glob("*.onnx"))


def test_a_model_the_quantiser_cannot_handle(tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"this is not a protobuf")
    model = model_from_file(broken)
    for method in ("fp16", "int8_dynamic"):
        with pytest.raises(QuantizationError, match="broken.onnx"):
            variants.make_variant(model, method, tmp_path / "cache")
    with pytest.raises(QuantizationError, match="not a readable ONNX model"):
        variants.make_variant(model, "int8_static", tmp_path / "cache", [{"x": np.zeros(1, np.float32)}])
    assert issubclass(QuantizationError, ModelError)


def test_unknown_method_and_non_onnx_model(mlp, tmp_path):
    with pytest.raises(QuantizationError, match="did you mean 'int8_static'"):
        variants.make_variant(mlp, "int8_statc", tmp_path)
    tfl = tmp_path / "m.tflite"
    tfl.write_bytes(b"x")
    with pytest.raises(QuantizationError, match="not tflite"):
        variants.make_variant(model_from_file(tfl), "fp16", tmp_path)


def test_nncf_missing_is_unavailable_with_the_install_line(mlp, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "nncf", None)
    with pytest.raises(MethodUnavailable, match="pip install nncf"):
        variants.make_variant(mlp, "nncf_int8", tmp_path, _calib(shape=(1, 16), name="input"))


def test_nncf_is_called_with_the_model_and_the_calibration_feeds(mlp, tmp_path, monkeypatch):
    seen = {}

    def quantize(model, dataset, preset, subset_size):
        seen.update(model=model, items=dataset.items, preset=preset, subset_size=subset_size)
        return model

    fake = types.SimpleNamespace(quantize=quantize, Dataset=lambda items: types.SimpleNamespace(items=items),
                                 QuantizationPreset=types.SimpleNamespace(PERFORMANCE="perf", MIXED="mixed"))
    monkeypatch.setitem(sys.modules, "nncf", fake)
    calib = _calib(3, shape=(1, 16), name="input")
    v = variants.make_variant(mlp, "nncf_int8", tmp_path, calib, preset="MIXED")
    assert isinstance(seen["model"], onnx.ModelProto) and seen["preset"] == "mixed"
    assert seen["subset_size"] == 3 and len(seen["items"]) == 3 and v.path.is_file()


def _bench(saved):
    return Bench(builtin_cpu(), "compression", "test", TINY_PROFILE, save=saved.append)


def test_study_records_fp32_then_variants_and_keeps_fp32_when_a_method_fails(mlp, tmp_path, monkeypatch):
    class Refuses:
        name, version, needs_calibration = "refuses", 1, False

        def unavailable(self):
            return None

        def quantize(self, src, dst, params, calibration):
            raise QuantizationError(f"{src.name}: refuses cannot handle it")

    class Missing(Refuses):
        def unavailable(self):
            return "pip install missing"

    monkeypatch.setitem(base.METHODS, "refuses", f"{__name__}:_Refuses")
    monkeypatch.setattr(sys.modules[__name__], "_Refuses", Refuses, raising=False)
    monkeypatch.setitem(base.METHODS, "missing", f"{__name__}:_Missing")
    monkeypatch.setattr(sys.modules[__name__], "_Missing", Missing, raising=False)
    saved = []
    bench = _bench(saved)
    feeds = study.deterministic_feeds(input_specs(mlp, builtin_cpu()), 8, seed=0)
    labels = np.argmax(model_scores(mlp, builtin_cpu(), feeds), axis=1)
    result = study.study(bench, mlp, feeds, study.calibration_set(feeds, 1), tmp_path,
                         methods=("fp16", "refuses", "missing", "int8_static"), labels=labels,
                         classes=np.arange(4))
    assert saved[0] is result.fp32 and result.fp32.status == "ok" and result.fp32.metric("throughput_ips") > 0
    fp16 = result.by_method("fp16")
    assert fp16.ok and fp16.record.metric("size_reduction") > 1.0  # 2.5 KB of weights: graph overhead stays
    assert fp16.record.metric("top1_agreement") == fp16.fidelity.top1_agreement
    assert fp16.record.metric("accuracy_fp32") == 1.0  # the labels are fp32's own answers
    assert result.by_method("int8_static").ok
    refused = result.by_method("refuses")
    assert not refused.ok and refused.record.status == "error" and "refuses cannot handle it" in refused.record.error
    assert result.by_method("missing").skipped == "missing: pip install missing"
    with pytest.raises(QuantizationError, match="refuses cannot handle it"):
        result.raise_errors()


def test_deterministic_feeds_fill_static_batches(kws):
    session = get_backend("onnxruntime").load(kws, builtin_cpu())
    a = study.deterministic_feeds(session.inputs, 5, seed=3)
    b = study.deterministic_feeds(session.inputs, 5, seed=3)
    name = session.inputs[0].name
    assert a[name].shape == (5, 1, 32, 40) and np.array_equal(a[name], b[name])
    assert [c[name].shape[0] for c in study.calibration_set(a, 2)] == [2, 2]


def test_variant_keeps_the_source_identity(mlp, tmp_path):
    v = variants.make_variant(mlp, "fp16", tmp_path)
    assert isinstance(v, Model) and v.params["variant_of"] == "mlp" and v.format == "onnx"
