"""onnxruntime's GPU providers: why one is missing, options validation, no silent CPU fallback, streams."""

from __future__ import annotations

import sys

import numpy as np
import onnxruntime
import pytest
from vendor_fakes import FakeCudaSessions, install_cuda_runtime, make_cudart

from pytest_edgeai.backends import onnxruntime as ortb
from pytest_edgeai.backends import ort_gpu
from pytest_edgeai.backends.asynchronous import AsyncSession
from pytest_edgeai.devices import Device
from pytest_edgeai.errors import BackendError, ConfigError
from pytest_edgeai.measure.asynchronous import measure_async
from pytest_edgeai.measure.profiles import Profile
from pytest_edgeai.models.model import model_from_file

GPU = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]


def gpu(**options) -> Device:
    return Device(name="gpu0", kind="gpu", backend="onnxruntime", options={"providers": GPU, **options})


def test_probe_names_each_missing_provider_and_what_to_install(monkeypatch):
    monkeypatch.setattr(onnxruntime, "get_available_providers",
                        lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
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
    with pytest.raises(BackendError, match="did not enable CUDAExecutionProvider .*: its libraries failed to load: F"):
        ort_gpu.check_applied(["CUDAExecutionProvider", "CPUExecutionProvider"], ["CPUExecutionProvider"],
                              "m.onnx", "F")
    ort_gpu.check_applied(["CPUExecutionProvider"], ["CPUExecutionProvider"], "m.onnx", "F")


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


@pytest.mark.parametrize("ort_version, trt_version, ok", [("1.26.0", "11.1.0.106", False),
                                                          ("1.27.0", "11.1.0.106", True),
                                                          ("1.20.1", "10.3.0", True), ("1.26.0", None, True)])
def test_the_tensorrt_provider_needs_onnxruntime_1_27_for_tensorrt_11(ort_version, trt_version, ok):
    problem = ort_gpu.tensorrt_provider_problem(ort_version, trt_version)
    assert (problem is None) == ok
    if not ok:
        assert problem.startswith(f"onnxruntime {ort_version}'s TensorRT provider does not run with TensorRT 11")


@pytest.fixture
def cuda_sessions(monkeypatch):
    """onnxruntime-gpu's CUDA provider (documented behaviour, tests/vendor_fakes.py) over the real CPU session,
    and cuda-python's stream calls."""
    rt = make_cudart()
    install_cuda_runtime(monkeypatch, rt)
    monkeypatch.setitem(sys.modules, "cuda.bindings.utils", None)  # cuda-python 12.x before the utility module

    def install(cuda_build: str = "12.8", **behaviour):
        ort_gpu.preload.cache_clear()
        monkeypatch.setattr(onnxruntime, "cuda_version", cuda_build, raising=False)  # '' in a CPU build
        driver = int(cuda_build.split(".")[0]) * 1000 + 20  # a driver of the build's CUDA major, x.2
        rt.cudaDriverGetVersion = lambda: (rt.cudaError_t.cudaSuccess, driver)
        fake = FakeCudaSessions(onnxruntime.InferenceSession, **behaviour)
        monkeypatch.setattr(onnxruntime, "InferenceSession", fake.session_class())
        monkeypatch.setattr(onnxruntime, "get_available_providers",
                            lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
        return fake, rt

    return install


def cuda_device(**options) -> Device:
    return Device(name="ort_cuda", kind="gpu", backend="onnxruntime",
                  options={"providers": ["CUDAExecutionProvider", "CPUExecutionProvider"], **options})


def test_streams_keep_n_requests_in_flight_each_session_on_its_own_stream(cuda_sessions, tiny_model):
    fake, rt = cuda_sessions(rendezvous=3)  # the first three runs wait for each other: one in flight fails
    session = ortb.OnnxRuntimeBackend().load(model_from_file(tiny_model), cuda_device(streams=3))
    assert isinstance(session, AsyncSession) and session.prefers_async()
    x = np.random.default_rng(0).standard_normal((2, 16)).astype(np.float32)
    run = session.run_async({"input": x}, min_count=12, min_duration_s=0.0)
    assert run.in_flight == 3 and run.count >= 12 and fake.peak == 3
    streams = [s.get_provider_options()["CUDAExecutionProvider"] for s in fake.created[1:]]
    assert len(streams) == 3 and all(o["has_user_compute_stream"] == "1" for o in streams)
    assert {int(o["user_compute_stream"]) for o in streams} == rt.live  # three distinct streams of ours
    assert set(rt.flags.values()) == {rt.cudaStreamNonBlocking}
    assert session.settings()["streams"] == 3 and "user_compute_stream" in session.settings()["in_flight"]
    session.close()
    assert rt.live == set()  # every stream destroyed, after the sessions that ran on it


def test_offline_through_the_stream_sessions_is_a_measurement_with_n_in_flight(cuda_sessions, tiny_model):
    cuda_sessions()
    session = ortb.OnnxRuntimeBackend().load(model_from_file(tiny_model), cuda_device(streams=2))
    profile = Profile("test", warmup_count=2, warmup_s=0.0, min_duration_s=0.0, min_count=8, timeout_s=30)
    result = measure_async(session, {"input": np.ones((4, 16), np.float32)}, 4, profile)
    assert result.in_flight == 2 and result.summary.count >= 8
    session.close()


def test_one_stream_is_the_synchronous_session(cuda_sessions, tiny_model):
    fake, rt = cuda_sessions()
    session = ortb.OnnxRuntimeBackend().load(model_from_file(tiny_model), cuda_device())
    assert not session.prefers_async() and len(fake.created) == 1 and rt.live == set()
    assert session.settings()["streams"] == 1


def test_streams_need_the_cuda_provider_first(tiny_model):
    cpu = Device(name="cpu", kind="cpu", backend="onnxruntime", options={"streams": 2})
    with pytest.raises(ConfigError, match="2 streams need CUDAExecutionProvider first in providers"):
        ortb.OnnxRuntimeBackend().load(model_from_file(tiny_model), cpu)


def test_an_onnxruntime_that_ignores_the_stream_is_refused_and_frees_its_streams(cuda_sessions, tiny_model):
    fake, rt = cuda_sessions(takes_user_stream=False)
    with pytest.raises(BackendError, match="did not take the CUDA stream it was given"):
        ortb.OnnxRuntimeBackend().load(model_from_file(tiny_model), cuda_device(streams=2))
    assert rt.live == set()


def test_cuda_libraries_that_do_not_load_are_refused_not_measured_on_the_cpu(cuda_sessions, tiny_model):
    """get_available_providers() still lists CUDA; only the session's own providers tell."""
    cuda_sessions(libraries_load=False)
    assert "CUDAExecutionProvider" in onnxruntime.get_available_providers()
    with pytest.raises(BackendError, match="did not enable CUDAExecutionProvider .* built for CUDA 12.8 and needs "
                                           "CUDA 12.x and cuDNN 9"):
        ortb.OnnxRuntimeBackend().load(model_from_file(tiny_model), cuda_device(streams=2))


def test_streams_without_cuda_python_is_not_attached_with_what_to_install(monkeypatch):
    monkeypatch.setattr(onnxruntime, "get_available_providers",
                        lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    for name in ("cuda", "cuda.bindings", "cuda.bindings.runtime", "cuda.cudart"):
        monkeypatch.setitem(sys.modules, name, None)
    a = ortb.OnnxRuntimeBackend().probe(cuda_device(streams=2))
    assert not a.attached and a.reason.startswith("streams: cuda-python is not importable: pip install cuda-python")


@pytest.mark.parametrize("build, needs, other", [
    ("12.8", "CUDA 12.x", "for CUDA 13: pip install 'onnxruntime-gpu[cuda,cudnn]>=1.27,<2'"),
    ("13.0", "CUDA 13.x", "for CUDA 12: pip install 'onnxruntime-gpu[cuda,cudnn]>=1.21,<1.27'")])
def test_the_probe_creates_a_session_and_names_what_the_builds_cuda_major_needs(cuda_sessions, build, needs, other):
    cuda_sessions(cuda_build=build, libraries_load=False)
    a = ortb.OnnxRuntimeBackend().probe(cuda_device())
    assert not a.attached
    assert a.reason.startswith(f"onnxruntime {onnxruntime.__version__} lists CUDAExecutionProvider but a session "
                               f"does not get it (its libraries did not load): onnxruntime-gpu")
    assert f"built for CUDA {build} and needs {needs} and cuDNN 9" in a.reason and a.reason.endswith(other)
    assert f"pip install 'onnxruntime-gpu[cuda,cudnn]=={onnxruntime.__version__}'" in a.reason


def test_the_probe_says_attached_when_the_session_gets_the_provider(cuda_sessions):
    fake, _ = cuda_sessions(cuda_build="13.0")
    a = ortb.OnnxRuntimeBackend().probe(cuda_device())
    assert a.attached and a.details["cuda_build"] == "13.0"
    assert fake.created[-1].get_providers()[0] == "CUDAExecutionProvider"  # it really made a session


def test_preload_loads_nvidia_wheels_of_the_builds_major_only(monkeypatch):
    calls = []
    monkeypatch.setattr(onnxruntime, "preload_dlls", lambda **kw: calls.append(kw), raising=False)
    installed = {"nvidia-cuda-runtime-cu12": "12.9.79"}
    monkeypatch.setattr(ort_gpu, "distribution_version", lambda *names: next(
        (installed[n] for n in names if n in installed), None))
    for build, preloaded in (("13.0", False), ("12.8", True), ("", False)):
        ort_gpu.preload.cache_clear()
        monkeypatch.setattr(onnxruntime, "cuda_version", build, raising=False)
        where = ort_gpu.preload(onnxruntime)
        assert (where == "NVIDIA's wheels (nvidia-cuda-runtime-cu12 12.9.79), preloaded by "
                         "onnxruntime.preload_dlls") == preloaded
        assert len(calls) == int(preloaded)
        calls.clear()
    ort_gpu.preload.cache_clear()


@pytest.mark.parametrize("major, wheels, problem", [
    (13, {12: "10.13.0", 13: None}, "built for CUDA 13 but the TensorRT installed is tensorrt-cu12 10.13.0"),
    (12, {12: None, 13: "11.1.0"}, "built for CUDA 12 but the TensorRT installed is tensorrt-cu13 11.1.0"),
    (12, {12: "10.13.0", 13: None}, None), (12, {12: None, 13: None}, None), (None, {12: "10.13.0", 13: None}, None)])
def test_the_tensorrt_provider_needs_tensorrt_of_the_builds_cuda_major(major, wheels, problem):
    found = ort_gpu.cuda_major_problem("1.31.1", major, wheels)
    assert (found is None) == (problem is None)
    if problem:
        assert problem in found and "pip install" in found


@pytest.mark.parametrize("driver, build, attached", [(12040, "13.0", False), (13000, "13.0", True),
                                                     (12040, "12.8", True), (13020, "12.8", True), (0, "12.8", False)])
def test_a_driver_older_than_the_builds_cuda_major_is_named_with_both_fixes(cuda_sessions, driver, build, attached):
    """cudaDriverGetVersion is the newest CUDA the driver runs; a CUDA 12.x build runs on any 12+ driver."""
    _, rt = cuda_sessions(cuda_build=build)
    rt.cudaDriverGetVersion = lambda: (rt.cudaError_t.cudaSuccess, driver)
    a = ortb.OnnxRuntimeBackend().probe(cuda_device())
    assert a.attached == attached
    if driver == 0:
        assert a.reason.startswith("no NVIDIA driver is installed (cudaDriverGetVersion gives 0): install one")
        assert a.reason.endswith("built for CUDA 12.8, which needs >= 525.60.13)")
    elif not attached:
        assert a.reason == (f"the NVIDIA driver supports CUDA up to 12.4 but onnxruntime-gpu {onnxruntime.__version__} "
                            f"is built for CUDA 13.0: update the driver (CUDA 13 needs >= 580), or pip install "
                            f"'onnxruntime-gpu[cuda,cudnn]>=1.21,<1.27'")
