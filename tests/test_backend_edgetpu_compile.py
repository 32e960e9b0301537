"""EdgeTPU static shapes end to end: the real ONNX -> full-integer int8 TFLite conversion (tensorflow and
onnx2tf on the CPU), an edgetpu_compiler fake that behaves as Coral documents it (vendor_fakes), and the
LiteRT session's one-compiled-model-per-batch path with the delegate stubbed out (no TPU here)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import build_tiny_model
from test_backend_edgetpu import fake_sysfs, paired_runtime
from vendor_fakes import fake_edgetpu_compiler

from pytest_edgeai.backends import edgetpu, litert, tflite_convert
from pytest_edgeai.devices import Device
from pytest_edgeai.errors import BackendError
from pytest_edgeai.models.model import model_from_file

pytest.importorskip("tensorflow", reason="tensorflow is not installed (pip install 'pytest-edgeai[tflite-convert]')")
if tflite_convert.converter_missing():  # not importorskip: onnx2tf's import raises the recursion limit
    pytest.skip(tflite_convert.converter_missing(), allow_module_level=True)
pytest.importorskip("ai_edge_litert", reason="ai-edge-litert is not installed (the fake compiler reads models with it)")


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("edgetpu")
    models = [model_from_file(build_tiny_model(root / f"tiny{i}.onnx", seed=i)) for i in (0, 1)]
    return root, models


@pytest.fixture
def compiler(work, monkeypatch):
    root, _ = work
    exe = fake_edgetpu_compiler(root / "bin")
    monkeypatch.setenv("PATH", f"{exe.parent}:/usr/bin:/bin")
    return exe


def test_a_static_int8_model_compiles_and_its_op_mapping_is_kept(work, compiler):
    root, (model, _) = work
    converted = tflite_convert.to_tflite(model, "int8", root / "cache", batch=1)
    [result] = edgetpu.compile_for_edgetpu([converted.path], root / "cache")
    report = result.report
    assert report["ops_total"] > 0 and report["ops_on_tpu"] == report["ops_total"]
    assert report["ops_on_tpu_fraction"] == 1.0 and report["compiler"] == "Edge TPU Compiler version 16.0.384591198"
    assert report["on_chip_parameter_bytes"] == 1 << 20 and report["off_chip_parameter_bytes"] == 0
    assert {o["status"] for o in report["operators"]} == {"Mapped to Edge TPU"}


def test_the_compiler_rejects_a_dynamic_batch_with_one_line(work, compiler):
    root, (model, _) = work
    dynamic = tflite_convert.to_tflite(model, "int8", root / "cache")  # batch left free: what the old path made
    with pytest.raises(BackendError) as err:
        edgetpu.compile_for_edgetpu([dynamic.path], root / "cache")
    assert ("Model contains dynamic-sized tensors" in str(err.value)
            and "convert it with a fixed batch" in str(err.value))


def test_a_model_nothing_of_which_maps_to_the_tpu_is_refused(work, compiler):
    root, (model, _) = work
    fp32 = tflite_convert.to_tflite(model, "fp32", root / "cache", batch=1)
    with pytest.raises(BackendError, match=r"mapped 0 of \d+ operations of .* to the Edge TPU \(Operation is "
                                           r"working on an unsupported data type\): it would run entirely on the CPU"):
        edgetpu.compile_for_edgetpu([fp32.path], root / "cache")


class NoDelegateInterpreter:
    """ai_edge_litert's interpreter without the delegate (there is no TPU here); refuses to resize, as a
    compiled Edge TPU model cannot be resized."""

    def __init__(self, model_path, num_threads=None, experimental_delegates=()):
        from ai_edge_litert.interpreter import Interpreter

        self._it = Interpreter(model_path=model_path, num_threads=num_threads)
        self.delegates = list(experimental_delegates)

    def resize_tensor_input(self, *args):
        raise AssertionError("a compiled Edge TPU model was resized")

    def __getattr__(self, name):
        return getattr(self._it, name)


@pytest.fixture
def coral(tmp_path, monkeypatch):
    """``coral(cache_dir)``: an Edge TPU device on LiteRT, paired (fake sysfs and runtime), its delegate
    stubbed out; each test chooses its cache (shared with the tests above, or a fresh one)."""
    paired_runtime(monkeypatch, tmp_path)
    monkeypatch.setattr(litert, "_edgetpu_interpreter", lambda: (NoDelegateInterpreter, lambda lib, opts: "delegate",
                                                                 "tflite_runtime.interpreter", "2.5.0.post1"))

    def device(cache_dir: Path) -> Device:
        return Device(name="coral", kind="edgetpu", backend="litert",
                      options={"delegate": "edgetpu", "sysfs_root": str(fake_sysfs(tmp_path / "sys")),
                               "cache_dir": str(cache_dir)})

    return device


def test_each_batch_gets_its_own_converted_and_compiled_model(work, compiler, coral):
    root, (model, _) = work
    device = coral(root / "cache")
    session = litert.LiteRTBackend().load(model, device)
    assert session.inputs[0].dtype == "int8" and session.inputs[0].shape == (None, 16)
    files = {}
    for batch in (1, 2):
        out = session.run({session.inputs[0].name: np.zeros((batch, 16), np.int8)})
        assert out[0].shape == (batch, 4)
        s = session.settings()
        files[batch] = s["model_file"]
        assert s["batch"] == batch and s["edgetpu_compiler"]["ops_on_tpu_fraction"] == 1.0
        assert s["edgetpu_compiled"] == "edgetpu_compiler" and s["shapes"].startswith("static")
    assert files[1] != files[2] and files[2].endswith("-b2-" + files[2].split("-b2-")[1])


def test_co_compiled_models_are_compiled_in_one_run(work, compiler, coral, tmp_path):
    _, models = work
    device = coral(tmp_path / "cache")  # this test's own cache
    a, b = litert.LiteRTBackend().load_together(models, device)
    sa, sb = a.settings(), b.settings()
    assert sa["edgetpu_compiled"] == sb["edgetpu_compiled"] == "edgetpu_compiler, co-compiled with 1 model(s)"
    assert Path(sa["model_file"]).parent == Path(sb["model_file"]).parent  # one compiler run's output
    assert sa["model_file"] != sb["model_file"]
