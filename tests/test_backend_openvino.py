"""OpenVINO on the CPU here: probe, options, compile errors, sync and pooled runs, settings."""

from __future__ import annotations

import types

import numpy as np
import onnxruntime as ort
import pytest

from pytest_edgeai.backends import openvino as ovb
from pytest_edgeai.devices import Device
from pytest_edgeai.errors import BackendError, ConfigError
from pytest_edgeai.models.model import model_from_file

pytest.importorskip("openvino", reason="openvino is not installed (pip install 'pytest-edgeai[openvino]')")


def dev(**options) -> Device:
    return Device(name="ov", kind="cpu", backend="openvino", options={"device": "CPU", **options})


@pytest.fixture
def tiny(tiny_model):
    return model_from_file(tiny_model)


def test_probe_sees_the_cpu_and_names_what_is_missing():
    backend = ovb.OpenVINOBackend()
    ok = backend.probe(dev())
    assert ok.attached and "CPU" in ok.details["available_devices"]
    gpu = backend.probe(dev(device="GPU.3"))
    assert not gpu.attached and "sees no GPU.3" in gpu.reason
    hetero = backend.probe(dev(device="HETERO:NPU,CPU"))
    assert not hetero.attached and "sees no NPU" in hetero.reason


def test_myriad_needs_openvino_2022_3(monkeypatch):
    backend = ovb.OpenVINOBackend()
    monkeypatch.setattr(ovb, "distribution_version", lambda *_: "2024.6.0")
    reason = backend.probe(dev(device="MYRIAD")).reason
    assert "MYRIAD (NCS2) needs OpenVINO 2022.3 or older; this is 2024.6.0" in reason
    monkeypatch.setattr(ovb, "distribution_version", lambda *_: "2022.3.1")
    assert "needs OpenVINO 2022.3" not in backend.probe(dev(device="MYRIAD")).reason  # then the device list decides


def test_a_typo_in_an_option_names_the_key_and_the_fix(tiny):
    with pytest.raises(ConfigError) as err:
        ovb.OpenVINOBackend().load(tiny, dev(num_stream=2))
    assert "devices.ov.options.num_stream: unknown openvino option (did you mean 'num_streams'?)" in str(err.value)
    with pytest.raises(ConfigError, match=r"performance_hint: 'FAST' is not allowed.*LATENCY, THROUGHPUT"):
        ovb.OpenVINOBackend().load(tiny, dev(performance_hint="FAST"))
    assert not ovb.OpenVINOBackend().probe(dev(num_stream=2)).attached


def test_a_property_the_runtime_rejects_is_one_clear_backend_error(tiny):
    with pytest.raises(BackendError) as err:
        ovb.OpenVINOBackend().load(tiny, dev(config={"NOT_A_PROPERTY": 1}))
    text = str(err.value)
    assert "OpenVINO cannot compile it for CPU" in text and "Exception from src" not in text


def test_outputs_match_onnxruntime_and_batch_changes_recompile(tiny):
    session = ovb.OpenVINOBackend().load(tiny, dev(inference_precision="f32"))
    assert session.inputs[0].shape == (None, 16)
    ref = ort.InferenceSession(str(tiny.path))
    for batch in (1, 5, 2):
        x = np.random.default_rng(batch).standard_normal((batch, 16)).astype(np.float32)
        out = session.run({"input": x})
        np.testing.assert_allclose(out[0], ref.run(None, {"input": x})[0], rtol=1e-5, atol=1e-6)
    session.close()


def test_settings_record_what_was_applied(tiny):
    session = ovb.OpenVINOBackend().load(tiny, dev(performance_hint="THROUGHPUT", num_streams=2, num_requests=3,
                                                   inference_precision="f32"))
    s = session.settings()
    assert s["performance_hint"] == "THROUGHPUT" and s["num_streams"] == 2 and s["num_requests"] == 3
    assert s["inference_precision"] == "f32" and s["asynchronous"] is True
    assert s["openvino_version"] and s["device"] == "CPU"
    latency = ovb.OpenVINOBackend().load(tiny, dev(performance_hint="LATENCY"))
    assert latency.prefers_async() is False and latency.settings()["num_requests"] >= 1


def test_run_async_keeps_the_pool_full_and_returns_every_request(tiny):
    session = ovb.OpenVINOBackend().load(tiny, dev(performance_hint="THROUGHPUT", num_requests=3))
    run = session.run_async({"input": np.ones((2, 16), np.float32)}, min_count=25, min_duration_s=0.0)
    assert run.count >= 25 and run.in_flight == 3
    assert all(lat > 0 for lat in run.latencies_ns) and run.wall_ns >= max(run.latencies_ns)


def test_a_model_openvino_cannot_read_is_a_model_error(tmp_path):
    from pytest_edgeai.errors import ModelError

    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"not a protobuf")
    with pytest.raises(ModelError, match="OpenVINO cannot read it"):
        ovb.OpenVINOBackend().load(model_from_file(bad), dev())


@pytest.mark.parametrize("text, expected", [("2022.3.0-9052-9752fafe8eb-releases/2022/3", (2022, 3)),
                                            ("2026.4.1", (2026, 4)), ("custom", (0, 0))])
def test_version_tuple(text, expected):
    assert ovb.version_tuple(text) == expected


def npu_openvino(monkeypatch, compiled: list):
    """Real OpenVINO with an "NPU" that behaves as the NPU plugin is documented to (OpenVINO docs, NPU
    device, "Supported features": static shapes only; a dynamic model fails to compile). Underneath, the
    CPU plugin computes, so outputs are real."""
    import openvino as ov

    class NpuCore(ov.Core):
        @property
        def available_devices(self):
            return ["CPU", "NPU"]

        def compile_model(self, model, device="CPU", config=None):
            if device == "NPU":
                if model.is_dynamic():
                    raise RuntimeError("Exception from src/plugins/intel_npu/src/plugin/src/plugin.cpp:\n"
                                       "NPU plugin: dynamic shapes are not supported")
                compiled.append([tuple(p.get_shape()) for p in model.inputs])
                device, config = "CPU", {}
            return super().compile_model(model, device, config or {})

    fake = types.SimpleNamespace(**{k: getattr(ov, k) for k in ("AsyncInferQueue", "Tensor", "get_version")},
                                 Core=NpuCore)
    monkeypatch.setattr(ovb, "openvino_module", lambda: fake)


def test_npu_gets_a_model_reshaped_before_compiling_one_per_batch(tiny, monkeypatch):
    compiled = []
    npu_openvino(monkeypatch, compiled)
    device = dev(device="NPU")
    assert ovb.OpenVINOBackend().probe(device).attached
    session = ovb.OpenVINOBackend().load(tiny, device)
    ref = ort.InferenceSession(str(tiny.path))
    for batch in (1, 4, 1, 4):
        x = np.random.default_rng(batch).standard_normal((batch, 16)).astype(np.float32)
        np.testing.assert_allclose(session.run({"input": x})[0], ref.run(None, {"input": x})[0], rtol=1e-5, atol=1e-6)
    assert compiled == [[(1, 16)], [(4, 16)]]  # batch 1 at load, batch 4 once: one compiled model per batch
    assert session.settings()["compiled_shapes"] == [{"input": (1, 16)}, {"input": (4, 16)}]
    with pytest.raises(ConfigError, match="NPU accepts static shapes only"):
        ovb.OpenVINOBackend().load(tiny, dev(device="NPU", static_shapes=False))


def test_the_fake_npu_rejects_what_the_real_one_rejects(tiny, monkeypatch):
    npu_openvino(monkeypatch, [])
    core = ovb.openvino_module().Core()
    with pytest.raises(RuntimeError, match="dynamic shapes are not supported"):
        core.compile_model(core.read_model(str(tiny.path)), "NPU")  # what compiling before reshaping did
