"""TensorRT 8.6, 10 and 11 with fakes of tensorrt and cuda-python injected via sys.modules.

The fakes (tests/vendor_fakes.py: make_trt, make_cudart) follow each version's documented API (TensorRT
Python API reference; "Migrating from TensorRT 10.x to 11.x", removed Python APIs:
BuilderFlag.FP16/INT8/BF16/FP8, IBuilderConfig.int8_calibrator, set_calibration_profile; TensorRT 8.x
ONNX parser: explicit batch only; cuda-python's (error, value) tuples, cudaMallocHost, stream capture).
The fake engine really computes: it runs the ONNX model it was built from with onnxruntime on the bytes
found in the fake device buffers, so outputs prove the pinned host -> device -> host plumbing, not just
the calls.
"""

from __future__ import annotations

import sys
import types

import numpy as np
import onnxruntime as ort
import pytest
from vendor_fakes import fake_trtexec, install_tensorrt, make_cudart

from pytest_edgeai.backends import tensorrt as trtb
from pytest_edgeai.devices import Device
from pytest_edgeai.errors import BackendError, ConfigError, ModelError
from pytest_edgeai.models.model import model_from_file


@pytest.fixture(params=["8.6.1", "10.3.0", "11.1.0"])
def fakes(request, monkeypatch):
    return install_tensorrt(monkeypatch, request.param)


def gpu(tmp_path, **options) -> Device:
    return Device(name="trt", kind="gpu", backend="tensorrt",
                  options={"cache_dir": str(tmp_path / "engines"), **options})


def test_probe_reports_the_gpu_and_versions(fakes, tmp_path):
    trt, _ = fakes
    a = trtb.TensorRTBackend().probe(gpu(tmp_path))
    assert a.attached and a.runtime_version == trt.__version__
    assert a.details["gpu"] == "Fake GPU 80GB" and a.details["compute_capability"] == "9.0"
    assert a.details["cuda_driver"] == "12.4"
    missing = trtb.TensorRTBackend().probe(gpu(tmp_path, device_id=2))
    assert not missing.attached and "CUDA sees 1 GPU(s), not device 2" in missing.reason


@pytest.mark.parametrize("version", ["8.2.1", "8.5.2", "12.0.0"])
def test_a_tensorrt_outside_the_supported_range_is_one_line_naming_both(monkeypatch, tmp_path, version):
    install_tensorrt(monkeypatch, version)
    a = trtb.TensorRTBackend().probe(gpu(tmp_path))
    assert not a.attached
    assert a.reason == (f"TensorRT {version} is not supported (supported: 8.6, 10.x or 11.x): "
                        f"pip install 'tensorrt>=8.6,<12' or a JetPack 6 (TensorRT 8.6/10.3) board")


def test_probe_without_tensorrt_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    a = trtb.TensorRTBackend().probe(gpu(tmp_path))
    assert not a.attached and "pytest-edgeai[tensorrt]" in a.reason


def test_one_static_engine_per_batch_then_cached(fakes, tiny_model, tmp_path):
    trt, rt = fakes
    device = gpu(tmp_path, workspace_mb=256)
    session = trtb.TensorRTBackend().load(model_from_file(tiny_model), device)
    for batch in (1, 4, 1):
        session.run({"input": np.zeros((batch, 16), np.float32)})
    assert [b["profiles"] for b in trt.builds] == [[{"input": ((1, 16),) * 3}], [{"input": ((4, 16),) * 3}]]
    assert trt.builds[0]["workspace"] == 256 << 20
    explicit = trt.builds[0]["network_flags"] & 1
    assert explicit == (1 if trt.__version__.startswith("8.") else 0)  # required by 8.x, deprecated after
    session.close()
    again = trtb.TensorRTBackend().load(model_from_file(tiny_model), device)
    again.run({"input": np.zeros((4, 16), np.float32)})
    assert len(trt.builds) == 2  # the cached batch-4 engine was reused
    again.close()


def test_dynamic_shapes_build_one_profile_with_its_optimum_at_batch_min(fakes, tiny_model, tmp_path):
    trt, _ = fakes
    session = trtb.TensorRTBackend().load(model_from_file(tiny_model), gpu(tmp_path, shapes="dynamic"))
    session.run({"input": np.zeros((3, 16), np.float32)})
    session.run({"input": np.zeros((8, 16), np.float32)})
    assert [b["profiles"] for b in trt.builds] == [[{"input": ((1, 16), (1, 16), (8, 16))}]]
    with pytest.raises(BackendError, match="outside the engine's profile"):
        session.run({"input": np.zeros((9, 16), np.float32)})
    assert session.settings()["batch_profile"] == [1, 1, 8]
    session.close()


def test_fp16_follows_each_versions_documented_api(fakes, tiny_model, tmp_path):
    trt, _ = fakes
    session = trtb.TensorRTBackend().load(model_from_file(tiny_model), gpu(tmp_path, fp16=True))
    x = np.random.default_rng(0).standard_normal((2, 16)).astype(np.float32)
    out = session.run({"input": x})
    want = ort.InferenceSession(str(tiny_model)).run(None, {"input": x})[0]
    [build] = trt.builds
    if trt.__version__.startswith("11."):  # no BuilderFlag.FP16: the ONNX itself is float16, strongly typed
        assert build["flags"] == [] and build["weights"] == ["float16"]
        assert "converted to float16" in session.settings()["precision"]
        np.testing.assert_allclose(out[0], want, atol=2e-2)
    else:
        assert build["flags"] == ["fp16"] and build["weights"] == ["float32"]
        assert session.settings()["precision"] == "fp16 (BuilderFlag.FP16)"
        np.testing.assert_allclose(out[0], want, rtol=1e-6)
    session.close()


def test_int8_needs_qdq_on_tensorrt_11_and_calibrates_before(fakes, tiny_model, tmp_path):
    trt, _ = fakes
    device = gpu(tmp_path, int8=True)
    if trt.__version__.startswith("11."):
        with pytest.raises(BackendError, match="needs a model with QuantizeLinear/DequantizeLinear nodes"):
            trtb.TensorRTBackend().load(model_from_file(tiny_model), device)
        return
    session = trtb.TensorRTBackend().load(model_from_file(tiny_model), device)
    assert "calibrated on 16 seeded standard-normal batches" in session.settings()["precision"]
    session.run({"input": np.zeros((1, 16), np.float32)})
    assert trt.builds[0]["flags"] == ["int8"] and trt.builds[0]["calibrator"]
    session.close()


def test_run_copies_through_pinned_buffers_and_keeps_per_query_statistics(fakes, tiny_model, tmp_path):
    trt, rt = fakes
    session = trtb.TensorRTBackend().load(model_from_file(tiny_model), gpu(tmp_path))
    assert [s.shape for s in session.inputs] == [(None, 16)]
    x = np.random.default_rng(0).standard_normal((3, 16)).astype(np.float32)
    for _ in range(5):
        out = session.run({"input": x})
    np.testing.assert_allclose(out[0], ort.InferenceSession(str(tiny_model)).run(None, {"input": x})[0], rtol=1e-6)
    assert session.outputs[0].name == "probabilities"
    assert rt.calls == ["sync"] * 5 and len(rt.pinned) == 2  # one pinned buffer per input and output
    t = session.timings(3)
    assert t["queries"] == 3 and t["compute_ms"]["p50"] == 5.0 and t["h2d_ms"]["mean"] == 1.0
    assert t["host_ms"]["min"] > 0 and set(t["d2h_ms"]) == {"mean", "min", "max", "p50", "p90", "p99"}
    assert session.settings()["host_buffers"] == "pinned (cudaMallocHost)"
    session.close()
    assert rt.memory == {} and rt.pinned == {}  # every device and pinned buffer freed


def test_streams_keep_several_queries_in_flight(fakes, tiny_model, tmp_path):
    trt, rt = fakes
    session = trtb.TensorRTBackend().load(model_from_file(tiny_model), gpu(tmp_path, streams=3))
    assert session.prefers_async()
    run = session.run_async({"input": np.ones((2, 16), np.float32)}, min_count=10, min_duration_s=0.0)
    assert run.in_flight == 3 and run.count >= 10 and session.timings(run.count)["queries"] == run.count
    assert len(rt.pinned) == 6  # three request slots, each with its own pinned buffers
    session.close()
    assert not trtb.TensorRTBackend().load(model_from_file(tiny_model), gpu(tmp_path)).prefers_async()


def test_cuda_graph_replays_the_captured_enqueue(fakes, tiny_model, tmp_path):
    trt, rt = fakes
    session = trtb.TensorRTBackend().load(model_from_file(tiny_model), gpu(tmp_path, cuda_graph=True))
    x = np.random.default_rng(1).standard_normal((2, 16)).astype(np.float32)
    session.run({"input": x})
    assert rt.graphs == []  # the first query runs plainly; the graph is captured after it
    out = session.run({"input": x})
    assert len(rt.graphs) == 1
    np.testing.assert_allclose(out[0], ort.InferenceSession(str(tiny_model)).run(None, {"input": x})[0], rtol=1e-6)
    session.close()


def test_a_model_the_parser_rejects_is_a_model_error(fakes, tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08garbage")
    with pytest.raises(ModelError, match="bad.onnx: not a readable ONNX model"):
        trtb.TensorRTBackend().load(model_from_file(bad), gpu(tmp_path))


def test_options_are_validated(tmp_path):
    with pytest.raises(ConfigError, match="batch_min 4 <= batch_opt 2 <= batch_max 8"):
        trtb.build_options(gpu(tmp_path, batch_min=4, batch_opt=2))
    with pytest.raises(ConfigError, match="did you mean 'fp16'"):
        trtb.build_options(gpu(tmp_path, fp61=True))
    with pytest.raises(ConfigError, match="'ragged' is not allowed"):
        trtb.build_options(gpu(tmp_path, shapes="ragged"))


def test_a_cuda_error_is_a_backend_error(fakes):
    _, rt = fakes
    rt.cudaMalloc = lambda n: (rt.cudaError_t.cudaErrorMemoryAllocation, 0)
    from pytest_edgeai.backends import cuda

    with pytest.raises(BackendError, match="CUDA cudaMalloc failed: cudaErrorFake"):
        cuda.call(rt, "cudaMalloc", 10)


def test_a_jetson_device_on_another_board_is_not_attached(fakes, tmp_path, monkeypatch):
    from pytest_edgeai.backends import jetson

    monkeypatch.setattr(jetson, "board", lambda: {"board": "NVIDIA Jetson AGX Orin Developer Kit", "l4t": "36.4.3"})
    monkeypatch.setattr(jetson, "state", dict)
    nano = Device(name="orin_nano", kind="jetson", backend="tensorrt", options={"board": "Orin Nano"})
    agx = Device(name="agx", kind="jetson", backend="tensorrt", options={"board": "AGX Orin"})
    a = trtb.TensorRTBackend().probe(nano)
    assert not a.attached and "not the configured 'Orin Nano'" in a.reason
    assert trtb.TensorRTBackend().probe(agx).attached


def test_calibration_batches_fill_device_buffers_then_end():
    """What TensorRT's get_batch returns (< 11): device addresses of the next batch, None when done."""
    rt = make_cudart()
    tensor = types.SimpleNamespace(name="input", shape=(-1, 16))
    feed = trtb.CalibrationBatches(rt, [tensor], batch=2)
    given = [feed.next_pointers() for _ in range(trtb.CALIBRATION_SAMPLES)]
    assert all(p is not None and len(p) == 1 for p in given) and len({p[0] for p in given}) == 1  # one buffer, reused
    data = np.frombuffer(bytes(rt.memory[given[-1][0]]), dtype=np.float32)
    assert data.shape == (32,) and data.std() > 0.5  # standard-normal samples, not zeros
    assert feed.next_pointers() is None


def test_trtexec_compute_time_is_the_median_of_its_exported_queries(tmp_path):
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"plan")
    trtexec = fake_trtexec(tmp_path / "bin", compute_ms=[1.0, 5.0, 2.0, 2.5, 100.0])
    ms = trtb.trtexec_compute_ms(str(trtexec), str(engine), {"input": (1, 16)}, tmp_path, seconds=0.1)
    assert ms == pytest.approx(2.5)
    with pytest.raises(BackendError, match=r"trtexec failed \(1\): &&&& FAILED TensorRT.trtexec"):
        trtb.trtexec_compute_ms(str(trtexec), str(tmp_path / "absent.engine"), {"input": (1, 16)}, tmp_path)
