"""Every zoo model gives the same outputs on every backend available here as on onnxruntime's CPU.

Tolerance (fp32): |out - ref| <= RTOL * |ref| + ATOL * max|ref| per output tensor. Measured here
the worst relative error is about 5e-5 (ssd_mobilenet_v2 on OpenVINO and torch; reordered fp32
sums); the bound is 2-4x that. OpenVINO is pinned to f32 inference precision: its CPU default on
a bf16-capable CPU is bf16, which is a different (and faster) computation, not an error.
LiteRT runs the ONNX converted to fp32 .tflite: cnn_trad_fpool3 is converted here; the others only
when an earlier conversion is cached (a conversion takes tens of seconds to minutes each).
Inception-v4 runs at batch 1 only. The whole file takes about 60 s on 2 cores.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from pytest_edgeai.backends.base import TensorSpec, get_backend, probe
from pytest_edgeai.devices import Device
from pytest_edgeai.measure.inputs import make_feeds
from pytest_edgeai.models import ZOO
from pytest_edgeai.models.model import resolve_model

RTOL = 1e-4
ATOL = 2e-4  # of the output's largest magnitude
DEVICES = {
    "openvino": Device(name="openvino_f32", kind="cpu", backend="openvino",
                       options={"device": "CPU", "inference_precision": "f32"}),
    "torch": Device(name="torch_cpu", kind="cpu", backend="torch", options={"device": "cpu"}),
    "litert": Device(name="litert_cpu", kind="cpu", backend="litert", options={"num_threads": 2}),
}
CONVERTED_HERE = {"cnn_trad_fpool3"}


def reference(model, batch):
    session = ort.InferenceSession(str(model.path), providers=["CPUExecutionProvider"])
    specs = [TensorSpec(i.name, tuple(i.shape), "float32") for i in session.get_inputs()]
    feeds = make_feeds(specs, batch, seed=7)
    return feeds, session.run(None, feeds)


def litert_session(model, device):
    from pytest_edgeai.backends.tflite_convert import cached_tflite, converter_missing

    if converter_missing():  # not importorskip: onnx2tf's import raises the recursion limit to INT_MAX
        pytest.skip(converter_missing())

    if model.name not in CONVERTED_HERE and cached_tflite(model, "fp32") is None:
        pytest.skip(f"no fp32 .tflite of {model.name} cached (converting it takes minutes): load it once on a "
                    f"litert device to convert")
    return get_backend("litert").load(model, device)


def nhwc(feeds, session):
    """onnx2tf turns NCHW inputs into NHWC: feed the same values in that layout."""
    out = {}
    for spec in session.inputs:
        name = spec.name if spec.name in feeds else next(iter(feeds))
        x = feeds[name]
        out[spec.name] = x.transpose(0, 2, 3, 1) if x.ndim == 4 and x.shape[1:] != spec.shape[1:] else x
    return out


@pytest.mark.parametrize("backend", sorted(DEVICES))
@pytest.mark.parametrize("name", sorted(n for n, b in ZOO.items() if not b.defaults))  # distinct graphs
def test_outputs_agree_with_onnxruntime_cpu(name, backend):
    device = DEVICES[backend]
    availability = probe(device)
    if not availability.attached:
        pytest.skip(f"{backend} not usable here: {availability.reason}")
    model = resolve_model(name)
    batch = 1 if name == "inception_v4" else 2
    feeds, ref = reference(model, batch)
    if backend == "litert":
        session = litert_session(model, device)
        feeds = nhwc(feeds, session)
    else:
        session = get_backend(backend).load(model, device)
    try:
        outputs = session.run(feeds)
    finally:
        session.close()
    assert len(outputs) == len(ref)
    for got, want in zip(outputs, ref):
        got = got.reshape(want.shape) if got.size == want.size else got
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL * float(np.abs(want).max()),
                                   err_msg=f"{name} on {backend}")
