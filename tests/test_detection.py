"""SSD post-processing: anchors that fit the zoo's heads, box decoding, fast NMS."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_edgeai.errors import MeasurementError
from pytest_edgeai.models.detection import NmsConfig, anchors, decode, postprocess
from pytest_edgeai.models.ssd_mobilenet import num_anchors


def test_anchors_fit_the_heads_and_decode_to_themselves_at_zero():
    a = anchors(300)
    assert a.shape == (num_anchors(300), 4) == (1917, 4)
    assert 0 < a[:, :2].min() and a[:, :2].max() < 1  # centres inside the image
    np.testing.assert_allclose(a[0], [0.5 / 19, 0.5 / 19, 0.1, 0.1])  # the lowest layer's small square box
    boxes = decode(np.zeros((len(a), 4)), a)
    np.testing.assert_allclose((boxes[:, 2] - boxes[:, 0]), a[:, 2])
    np.testing.assert_allclose((boxes[:, :2] + boxes[:, 2:]) / 2, a[:, :2])
    shifted = decode(np.array([[10.0, 0, 5 * np.log(2), 0]]), a[:1])  # ty = 10 moves one anchor height
    np.testing.assert_allclose(shifted[0], [a[0, 0] + 0.1 - 0.1, a[0, 1] - 0.05, a[0, 0] + 0.2, a[0, 1] + 0.05])


def test_fast_nms_keeps_the_best_of_overlapping_boxes_and_drops_background():
    a = np.array([[0.5, 0.5, 0.2, 0.2], [0.51, 0.5, 0.2, 0.2], [0.2, 0.2, 0.1, 0.1], [0.8, 0.8, 0.1, 0.1]])
    scores = np.zeros((4, 3))
    scores[:, 0] = 0.99  # background is never a detection
    scores[0, 1], scores[1, 1], scores[2, 2], scores[3, 2] = 0.9, 0.8, 0.7, 0.0
    found = postprocess(np.zeros((4, 4)), scores, a, NmsConfig(score_threshold=0.1))
    assert list(found.classes) == [1, 2] and list(np.round(found.scores, 2)) == [0.9, 0.7]  # box 1 overlaps box 0
    assert len(postprocess(np.zeros((4, 4)), scores, a, NmsConfig(score_threshold=0.1, max_detections=1)).scores) == 1
    with pytest.raises(MeasurementError, match="do not fit 4 anchors"):
        postprocess(np.zeros((3, 4)), scores, a)
