"""Fidelity that can fail: top-1/top-5 agreement, the top-1 probability change, a degenerate reference."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_edgeai.compress.fidelity import (
    compare,
    degenerate,
    probabilities,
    top1_probability_change,
    top5_agreement,
)


def test_a_reference_with_one_class_for_every_input_is_degenerate_not_perfect():
    ref = np.zeros((6, 10))
    ref[:, 3] = 5.0  # a seeded network's bias: class 3 whatever the input
    f = compare(ref, ref.copy())
    assert f.top1_agreement is None and f.top5_agreement is None and "class 3" in f.degenerate
    assert f.mean_cosine == pytest.approx(1.0)  # the other measures are still given
    assert degenerate(np.eye(6)) is None


def test_top1_top5_and_probability_change_see_a_damaged_variant():
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((40, 20)) * 3
    same = compare(ref, ref)
    assert same.top1_agreement == 1.0 and same.top5_agreement == 1.0 and same.top1_prob_change == 0.0
    noisy = ref + rng.standard_normal(ref.shape) * 3
    f = compare(ref, noisy)
    assert f.top1_agreement < 0.9 and f.top5_agreement >= f.top1_agreement and f.top1_prob_change > 0.01
    assert f.top1_prob_change_max >= f.top1_prob_change


def test_top5_and_probabilities_by_hand():
    ref = np.array([[0.0, 0, 0, 0, 0, 0, 9]])  # top-1 is class 6
    cand = np.array([[6.0, 5, 4, 3, 2, 1, 0]])  # class 6 is its last: outside its top 5
    assert top5_agreement(ref, cand) == 0.0 and top5_agreement(ref, cand[:, ::-1]) == 1.0
    p = np.array([[0.2, 0.8]])
    np.testing.assert_array_equal(probabilities(p), p)  # already probabilities: kept
    np.testing.assert_allclose(probabilities(np.array([[0.0, np.log(3)]])), [[0.25, 0.75]])
    np.testing.assert_allclose(top1_probability_change(p, np.array([[0.5, 0.5]])), [0.3])


def test_a_quantised_softmax_whose_rows_miss_one_by_a_few_codes_is_read_as_probabilities():
    """A uint8 softmax (scale 1/256) sums to 1 +- a few codes: it is the reference's probabilities, quantised,
    not logits to put through another softmax, which would flatten 1000 classes to about 1/1000 each."""
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((8, 1000)) * 4
    ref = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    quantised = np.round(ref * 256) / 256  # what a QDQ softmax output dequantises to
    assert not np.allclose(quantised.sum(axis=1), 1.0, atol=1e-3)  # the rows miss 1 by more than the tolerance
    change = top1_probability_change(ref, quantised)
    assert change.max() <= 1 / 512 + 1e-12  # each probability moved by at most half a code
    assert compare(ref, quantised).top1_prob_change <= 1 / 512 + 1e-12
