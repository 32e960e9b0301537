"""A model that takes no batched input (issue 16 item 12): a batch it cannot take is refused, not
counted as inferences that never ran."""

from __future__ import annotations

import pytest

from pytest_edgeai.backends.base import TensorSpec
from pytest_edgeai.errors import ModelError
from pytest_edgeai.measure.inputs import make_feeds


def test_a_model_without_inputs_is_not_measured_at_batch_2():
    assert make_feeds([], 1) == {}
    for specs in ([], [TensorSpec("scale", (), "float32")]):
        with pytest.raises(ModelError, match="cannot be fed at batch 2"):
            make_feeds(specs, 2)  # it reported twice the throughput of batch 1 before
    assert make_feeds([TensorSpec("x", ("N", 3), "float32")], 2)["x"].shape == (2, 3)
