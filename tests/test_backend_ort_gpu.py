"""onnxruntime's GPU providers: why one is missing, options validation, no silent CPU fallback."""

from __future__ import annotations

import onnxruntime
import pytest

from pytest_edgeai.backends import onnxruntime as ortb
from pytest_edgeai.backends import ort_gpu
from pytest_edgeai.devices import Device
from pytest_edgeai.errors import BackendError, ConfigError
from pytest_edgeai.models.model import model_from_file

GPU = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]


def gpu(**options) -> Device:
    return Device(name="gpu0", kind="gpu", backend="onnxruntime", options={"providers": GPU, **options})


def test_probe_names_each_missing_provider_and_what_to_install(monkeypatch):
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    a = ortb.OnnxRuntimeBackend().probe(gpu())
    assert not a.attached
    assert "lacks TensorrtExecutionProvider" in a.reason and "TensorRT" in a.reason
    assert "lacks CUDAExecutionProvider" not in a.reason


def test_provider_options_must_name_a_listed_provider():
    bad = gpu(provider_options={"CUDAExecutionProviders": {"device_id": 0}})
    with pytest.raises(ConfigError, match="did you mean 'CUDAExecutionProvider'"):
        ortb._session_options(onnxruntime, bad)


def test_tensorrt_engine_cache_is_on_by_default_and_user_options_win():
    assert ort_gpu.with_defaults("TensorrtExecutionProvider", {"trt_fp16_enable": True}, "/c") == {
        "trt_engine_cache_enable": True, "trt_engine_cache_path": "/c", "trt_fp16_enable": True}
    assert ort_gpu.with_defaults("TensorrtExecutionProvider", {"trt_engine_cache_path": "/mine"}, "/c")[
        "trt_engine_cache_path"] == "/mine"
    assert ort_gpu.with_defaults("CUDAExecutionProvider", {"device_id": 1}, "/c") == {"device_id": 1}


def test_a_silent_fallback_to_the_cpu_is_refused():
    with pytest.raises(BackendError, match="did not enable CUDAExecutionProvider"):
        ort_gpu.check_applied(["CUDAExecutionProvider", "CPUExecutionProvider"], ["CPUExecutionProvider"], "m.onnx")
    ort_gpu.check_applied(["CPUExecutionProvider"], ["CPUExecutionProvider"], "m.onnx")


def test_load_passes_provider_options_per_provider(monkeypatch, tiny_model, tmp_path):
    seen = {}

    class FakeSession:
        def __init__(self, path, sess_options, providers, provider_options):
            seen.update(providers=providers, provider_options=provider_options)

        def get_providers(self):
            return list(seen["providers"])

        get_inputs = get_outputs = lambda self: []

    monkeypatch.setattr(onnxruntime, "InferenceSession", FakeSession)
    device = gpu(cache_dir=str(tmp_path), provider_options={"CUDAExecutionProvider": {"device_id": 1},
                                                              "TensorrtExecutionProvider": {"trt_fp16_enable": True}})
    ortb.OnnxRuntimeBackend().load(model_from_file(tiny_model), device)
    assert seen["providers"] == GPU
    trt, cuda_opts, cpu = seen["provider_options"]
    assert trt == {"trt_engine_cache_enable": True, "trt_engine_cache_path": str(tmp_path), "trt_fp16_enable": True}
    assert cuda_opts == {"device_id": 1} and cpu == {}


@pytest.mark.parametrize("ort_version, trt_version, ok", [("1.26.0", "11.1.0.106", False), ("1.27.0", "11.1.0.106", True),
                                                          ("1.20.1", "10.3.0", True), ("1.26.0", None, True)])
def test_the_tensorrt_provider_needs_onnxruntime_1_27_for_tensorrt_11(ort_version, trt_version, ok):
    problem = ort_gpu.tensorrt_provider_problem(ort_version, trt_version)
    assert (problem is None) == ok
    if not ok:
        assert problem.startswith(f"onnxruntime {ort_version}'s TensorRT provider does not run with TensorRT 11")
