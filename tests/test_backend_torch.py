"""PyTorch on the CPU: ONNX through onnx2torch, TorchScript and pickled modules, clear refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from conftest import build_tiny_model

from pytest_edgeai.backends import torch as torchb
from pytest_edgeai.devices import Device
from pytest_edgeai.errors import ConfigError, ModelError
from pytest_edgeai.models.model import Model, model_from_file

torch = pytest.importorskip("torch", reason="torch is not installed")


def dev(**options) -> Device:
    return Device(name="pt", kind="cpu", backend="torch", options=options)


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(16, 4)

    def forward(self, x):
        return {"probs": torch.softmax(self.fc(x), -1), "aux": (x.sum(1, keepdim=True),)}


def pt_model(path, **params) -> Model:
    m = model_from_file(path)
    return Model(m.name, m.path, m.format, m.source, params=params)


def test_onnx_through_onnx2torch_matches_onnxruntime(tiny_model):
    session = torchb.TorchBackend().load(model_from_file(tiny_model), dev(num_threads=1))
    x = np.random.default_rng(0).standard_normal((3, 16)).astype(np.float32)
    out = session.run({"input": x})
    np.testing.assert_allclose(out[0], ort.InferenceSession(str(tiny_model)).run(None, {"input": x})[0],
                               rtol=1e-5, atol=1e-6)
    s = session.settings()
    assert s["device"] == "cpu" and s["num_threads"] == 1 and s["source"].startswith("onnx2torch")
    assert session.outputs[0].shape == (None, 4)


def test_torchscript_module_with_input_shapes(tmp_path):
    torch.manual_seed(0)
    module = Tiny().eval()
    path = tmp_path / "tiny.pt"
    torch.jit.script(module).save(str(path))
    session = torchb.TorchBackend().load(pt_model(path, input_shapes={"x": [1, 16]}), dev())
    assert session.inputs[0].shape == (None, 16)
    x = np.ones((2, 16), np.float32)
    out = session.run({"x": x})
    assert [o.shape for o in out] == [(2, 4), (2, 1)]
    with torch.no_grad():
        np.testing.assert_allclose(out[0], module(torch.from_numpy(x))["probs"].numpy(), rtol=1e-6)
    assert session.settings()["source"] == "torch.jit.load"


def test_pickled_module_loads_and_state_dict_is_refused(tmp_path):
    path = tmp_path / "whole.pt"
    torch.save(Tiny(), str(path))
    session = torchb.TorchBackend().load(pt_model(path, input_shapes={"x": [1, 16]}), dev())
    assert session.settings()["source"] == "torch.load (pickled module)"
    sd = tmp_path / "weights.pt"
    torch.save(Tiny().state_dict(), str(sd))
    with pytest.raises(ModelError, match="not an nn.Module"):
        torchb.TorchBackend().load(pt_model(sd, input_shapes={"x": [1, 16]}), dev())


def test_a_module_without_input_shapes_says_how_to_give_them(tmp_path):
    path = tmp_path / "tiny.pt"
    torch.jit.script(Tiny()).save(str(path))
    with pytest.raises(ModelError, match="input_shapes"):
        torchb.TorchBackend().load(model_from_file(path), dev())


def test_options_are_validated():
    with pytest.raises(ConfigError,
                       match=r"devices.pt.options.num_thread: unknown torch option \(did you mean 'num_threads'"):
        torchb.TorchBackend().load(Model("m", Path("x.onnx"), "onnx", "file"), dev(num_thread=2))
    assert "must be cpu, cuda or cuda:N" in torchb.TorchBackend().probe(dev(device="gpu")).reason


def test_cuda_probe_on_a_machine_without_it_says_why():
    a = torchb.TorchBackend().probe(Device(name="g", kind="gpu", backend="torch"))
    if torch.cuda.is_available():
        assert a.attached and a.details["gpu"]
    else:
        assert not a.attached
        assert "CPU-only build" in a.reason or "CUDA device(s)" in a.reason


def test_run_synchronises_cuda_before_returning(monkeypatch, tiny_model):
    """The CUDA path calls torch.cuda.synchronize before copying outputs to the host."""
    session = torchb.TorchBackend().load(model_from_file(tiny_model), dev())
    calls = []
    session._cuda = True
    monkeypatch.setattr(torch.cuda, "synchronize", lambda d=None: calls.append(d))
    session.run({"input": np.ones((1, 16), np.float32)})
    assert calls == ["cpu"]


def test_streams_need_a_cuda_device(tmp_path):
    model = model_from_file(build_tiny_model(tmp_path / "t.onnx"))
    with pytest.raises(ConfigError, match="2 streams need a CUDA device, not cpu"):
        torchb.TorchBackend().load(model, Device(name="t", kind="cpu", backend="torch", options={"streams": 2}))


@pytest.mark.hardware("cuda")
def test_cuda_streams_keep_several_queries_in_flight(hardware_device, tmp_path):
    from dataclasses import replace

    device = replace(hardware_device, options={**hardware_device.options, "streams": 3})
    session = torchb.TorchBackend().load(model_from_file(build_tiny_model(tmp_path / "t.onnx")), device)
    assert session.prefers_async()
    run = session.run_async({"input": np.ones((4, 16), np.float32)}, min_count=30, min_duration_s=0.0)
    assert run.in_flight == 3 and run.count >= 30 and min(run.latencies_ns) > 0
