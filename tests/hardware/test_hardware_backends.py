"""Each accelerator's backend for real, where it is attached (skipped with the probe's reason elsewhere).

Tolerances are wider than the CPU agreement test's: fp16/int8 engines, TF32 convolutions on
NVIDIA GPUs and the Myriad's fp16 compute are different computations, so these check that the
device computes the model (same top-1, outputs close), not bit-level agreement.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from pytest_edgeai.backends.base import TensorSpec, get_backend
from pytest_edgeai.measure.inputs import make_feeds
from pytest_edgeai.models.model import resolve_model


def ref_run(model, batch):
    session = ort.InferenceSession(str(model.path), providers=["CPUExecutionProvider"])
    feeds = make_feeds([TensorSpec(i.name, tuple(i.shape), "float32") for i in session.get_inputs()], batch, seed=3)
    return feeds, session.run(None, feeds)


def assert_close(got, want, rel):
    scale = float(np.abs(want).max())
    np.testing.assert_allclose(got, want, atol=rel * scale, rtol=0)
    if want.ndim == 2:  # classifier logits: the decision must not change
        assert (got.argmax(1) == want.argmax(1)).mean() >= 0.5


@pytest.mark.hardware("tensorrt")
def test_tensorrt_engine_agrees_and_times_its_parts(hardware_device):
    model = resolve_model("mobilenet_v2")
    session = get_backend("tensorrt").load(model, hardware_device)
    for batch in (1, 4):
        feeds, ref = ref_run(model, batch)
        assert_close(session.run(feeds)[0], ref[0], rel=2e-2)
    t = session.last_timings()
    assert t["compute_ms"] > 0 and t["h2d_ms"] > 0 and t["d2h_ms"] > 0 and t["host_ms"] >= t["compute_ms"]
    session.close()


@pytest.mark.hardware("cuda")
def test_torch_cuda_agrees(hardware_device):
    model = resolve_model("mobilenet_v2")
    session = get_backend("torch").load(model, hardware_device)
    feeds, ref = ref_run(model, 2)
    assert_close(session.run(feeds)[0], ref[0], rel=2e-2)
    assert session.settings()["gpu"]


@pytest.mark.hardware("ort_cuda")
def test_onnxruntime_cuda_provider_is_really_used(hardware_device):
    model = resolve_model("mobilenet_v2")
    session = get_backend("onnxruntime").load(model, hardware_device)
    assert session.settings()["providers"][0] == "CUDAExecutionProvider"
    feeds, ref = ref_run(model, 2)
    assert_close(session.run(feeds)[0], ref[0], rel=2e-2)


@pytest.mark.parametrize("kind", [pytest.param(k, marks=pytest.mark.hardware(k))
                                  for k in ("ncs2", "openvino_gpu", "npu")])
def test_openvino_accelerator_agrees(kind, hardware_device):
    model = resolve_model("cnn_trad_fpool3")
    session = get_backend("openvino").load(model, hardware_device)
    feeds, ref = ref_run(model, 1)
    assert_close(session.run(feeds)[0], ref[0], rel=5e-2)
    assert session.settings()["full_device_name"]


@pytest.mark.parametrize("kind", [pytest.param(k, marks=pytest.mark.hardware(k)) for k in ("edgetpu", "edgetpu_pci")])
def test_edgetpu_runs_a_compiled_int8_model(kind, hardware_device):
    pytest.importorskip("onnx2tf", reason="converting the zoo's ONNX to int8 TFLite needs tensorflow and onnx2tf")
    model = resolve_model("cnn_trad_fpool3")
    session = get_backend("litert").load(model, hardware_device)
    s = session.settings()
    assert s["delegate"] == "edgetpu" and s["library"] and s["edgetpu_compiled"] != "no (runs on the CPU)"
    spec = session.inputs[0]
    x = np.zeros((1, *spec.shape[1:]), dtype=spec.dtype)
    out = session.run({spec.name: x})
    assert out[0].shape == (1, 4)


@pytest.mark.hardware("jetson")
def test_jetson_records_power_mode_and_clocks(hardware_device):
    session = get_backend("tensorrt").load(resolve_model("cnn_trad_fpool3"), hardware_device)
    s = session.settings()
    assert s["nvpmodel_mode"] and s["jetson_clocks"] in (True, False)
