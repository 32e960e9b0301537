"""Each accelerator's backend for real, where it is attached (skipped with the probe's reason elsewhere).

Tolerances are wider than the CPU agreement test's: fp16/int8 engines, TF32 convolutions on
NVIDIA GPUs and the Myriad's fp16 compute are different computations, so these check that the
device computes the model (same top-1, outputs close), not bit-level agreement.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import onnxruntime as ort
import pytest

from pytest_edgeai.backends.base import TensorSpec, get_backend
from pytest_edgeai.backends.cuda import cudart
from pytest_edgeai.backends.tensorrt import find_trtexec, trtexec_compute_ms
from pytest_edgeai.errors import BackendError
from pytest_edgeai.measure.inputs import make_feeds
from pytest_edgeai.measure.profiles import PROFILES
from pytest_edgeai.measure.scenarios import measure
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
    t = session.timings(1)
    assert t["compute_ms"]["p50"] > 0 and t["h2d_ms"]["p50"] > 0 and t["d2h_ms"]["p50"] > 0
    assert t["host_ms"]["p50"] >= t["compute_ms"]["p50"]
    session.close()


@pytest.mark.hardware("tensorrt")
def test_harness_gpu_compute_matches_trtexec_on_the_same_engine(hardware_device, tmp_path):
    """Same engine file, same batch: the harness's median compute (CUDA events) against trtexec's.
    A loose bound (0.5x-2x): it checks that both time the same thing, not which is faster."""
    trtexec = find_trtexec()
    if not trtexec:
        pytest.skip("trtexec is not installed (it ships with TensorRT's tar/deb packages and JetPack)")
    model = resolve_model("mobilenet_v2")
    session = get_backend("tensorrt").load(model, hardware_device)
    feeds, _ = ref_run(model, 1)
    m = measure(session, feeds, "offline", 1, PROFILES["quick"])
    ours = session.timings(m.summary.count)["compute_ms"]["p50"]
    engine = session.settings()["engines"]["batch 1"]
    session.close()
    theirs = trtexec_compute_ms(trtexec, engine, {n: a.shape for n, a in feeds.items()}, tmp_path)
    print(f"GPU compute per query, batch 1: harness {ours:.3f} ms, trtexec {theirs:.3f} ms, ratio {ours / theirs:.2f}")
    assert 0.5 < ours / theirs < 2.0


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


@pytest.mark.hardware("ort_cuda")
def test_onnxruntime_cuda_streams_keep_requests_in_flight(hardware_device):
    """streams = 2: two sessions, each on a CUDA stream of ours that onnxruntime says it took."""
    try:
        cudart()
    except BackendError as exc:  # streams need cuda-python besides onnxruntime-gpu
        pytest.skip(str(exc))
    device = replace(hardware_device, options={**hardware_device.options, "streams": 2})
    session = get_backend("onnxruntime").load(resolve_model("mobilenet_v2"), device)
    feeds, ref = ref_run(resolve_model("mobilenet_v2"), 1)
    run = session.run_async(feeds, min_count=50, min_duration_s=0.5)
    assert run.in_flight == 2 and run.count >= 50
    assert session.settings()["streams"] == 2
    assert_close(session.run(feeds)[0], ref[0], rel=2e-2)
    session.close()


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
    from pytest_edgeai.backends.tflite_convert import converter_missing

    if converter_missing():
        pytest.skip(converter_missing())
    model = resolve_model("cnn_trad_fpool3")
    session = get_backend("litert").load(model, hardware_device)
    s = session.settings()
    assert s["delegate"] == "edgetpu" and s["library"] and s["edgetpu_compiled"] != "no (runs on the CPU)"
    assert s["edgetpu_compiler"]["ops_on_tpu"] > 0 and s["batch"] == 1
    spec = session.inputs[0]
    x = np.zeros((1, *spec.shape[1:]), dtype=spec.dtype)
    out = session.run({spec.name: x})
    assert out[0].shape == (1, 4)


@pytest.mark.hardware("jetson")
def test_jetson_records_power_mode_and_clocks(hardware_device):
    session = get_backend("tensorrt").load(resolve_model("cnn_trad_fpool3"), hardware_device)
    s = session.settings()
    assert s["nvpmodel_mode"] and s["jetson_clocks"] in (True, False)
