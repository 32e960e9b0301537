"""The digits workloads: deterministic training and export, the skew, the 'other' class."""

import numpy as np
import pytest

from pytest_edgeai.backends.base import get_backend
from pytest_edgeai.compress import digits
from pytest_edgeai.compress.cascade import OTHER
from pytest_edgeai.devices import builtin_cpu
from pytest_edgeai.errors import EdgeAIError

pytest.importorskip("sklearn")
pytest.importorskip("skl2onnx")

FAST = digits.DigitsConfig(large_hidden=32, large_max_iter=10, skewed_size=200)


def _scores(model, x):
    session = get_backend("onnxruntime").load(model, builtin_cpu())
    names = [o.name for o in session.outputs]
    return session.run({session.inputs[0].name: x})[names.index("probabilities")]


def test_training_and_export_are_deterministic(tmp_path):
    a = digits.build("skewed", tmp_path / "a", FAST)
    b = digits.build("skewed", tmp_path / "b", FAST)
    assert a.small.path.read_bytes() == b.small.path.read_bytes()
    assert a.large.path.read_bytes() == b.large.path.read_bytes()
    assert np.array_equal(a.inputs, b.inputs) and np.array_equal(a.labels, b.labels)


def test_models_run_through_the_backend_and_beat_chance(tmp_path):
    built = digits.build("uniform", tmp_path, FAST)
    split = digits.load_split(FAST)
    assert np.array_equal(built.inputs, split.x_test) and len(built.labels) == len(split.y_test)
    for model, classes in ((built.small, built.small_classes), (built.large, built.large_classes)):
        probs = _scores(model, built.inputs)
        assert probs.shape == (len(built.labels), 10)
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-4)
        assert np.mean(classes[np.argmax(probs, axis=1)] == built.labels) > 0.8  # chance is 0.1


def test_skewed_workload_draws_mostly_common_classes_and_small_model_has_other(tmp_path):
    built = digits.build("skewed", tmp_path, FAST)
    assert len(built.labels) == FAST.skewed_size
    assert np.mean(np.isin(built.labels, FAST.common_classes)) == pytest.approx(FAST.common_share)
    assert list(built.small_classes) == [OTHER, *FAST.common_classes]
    assert _scores(built.small, built.inputs).shape == (FAST.skewed_size, len(FAST.common_classes) + 1)


def test_train_and_test_do_not_overlap():
    split = digits.load_split(FAST)
    train = {row.tobytes() for row in split.x_train}
    assert len(split.x_train) + len(split.x_test) == 1797
    assert sum(row.tobytes() in train for row in split.x_test) < 5  # the dataset holds a few duplicates


def test_unknown_workload_is_refused(tmp_path):
    with pytest.raises(EdgeAIError, match="unknown digits workload 'zipf'; known: uniform, skewed"):
        digits.build("zipf", tmp_path, FAST)
