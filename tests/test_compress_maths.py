"""Fidelity and cascade arithmetic on hand-made arrays, where the right answer is known."""

import math

import numpy as np
import pytest

from pytest_edgeai.compress import cascade, fidelity
from pytest_edgeai.compress.cascade import OTHER, CascadeData
from pytest_edgeai.config import Link
from pytest_edgeai.errors import CascadeError, EdgeAIError, MeasurementError

# --- fidelity -------------------------------------------------------------------------------

REF = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.0, 0.0, 1.0], [0.3, 0.3, 0.4]])
CAND = np.array([[0.1, 0.6, 0.3], [0.2, 0.6, 0.2], [0.0, 0.0, 2.0], [0.3, 0.3, 0.4]])


def test_top1_agreement_counts_matching_argmax():
    assert fidelity.top1_agreement(REF, CAND) == pytest.approx(0.75)  # sample 1 flips 0 -> 1


def test_cosine_per_sample_and_scale_invariance():
    cos = fidelity.cosine_similarity(REF, CAND)
    expected0 = np.dot(REF[0], CAND[0]) / (np.linalg.norm(REF[0]) * np.linalg.norm(CAND[0]))
    assert cos[0] == pytest.approx(expected0)
    assert cos[2] == pytest.approx(1.0)  # same direction, twice the length
    assert cos[3] == pytest.approx(1.0)
    assert cos[1] < 0.9


def test_cosine_of_zero_vectors():
    zeros = np.zeros((2, 3))
    assert list(fidelity.cosine_similarity(zeros, zeros)) == [1.0, 1.0]
    assert list(fidelity.cosine_similarity(zeros, np.ones((2, 3)))) == [0.0, 0.0]


def test_max_abs_error_and_compare():
    assert fidelity.max_abs_error(REF, CAND) == pytest.approx(1.0)
    f = fidelity.compare(REF, CAND)
    assert f.samples == 4 and f.top1_agreement == pytest.approx(0.75)
    assert f.mean_cosine == pytest.approx(float(fidelity.cosine_similarity(REF, CAND).mean()))
    assert f.max_abs_error == pytest.approx(1.0)


def test_top1_over_positions_needs_every_position_to_agree():
    ref = np.zeros((2, 3, 4))
    ref[:, :, 0] = 1.0
    cand = ref.copy()
    cand[1, 2, 3] = 5.0  # one position of sample 1 flips
    assert fidelity.top1_agreement(ref, cand) == pytest.approx(0.5)


def test_compare_without_top1_and_shape_mismatch():
    assert fidelity.compare(REF, CAND, top1=False).top1_agreement is None
    assert fidelity.compare(REF[:, :1], CAND[:, :1]).top1_agreement is None  # one score: no top-1
    with pytest.raises(MeasurementError, match="differ in shape"):
        fidelity.compare(REF, CAND[:, :2])


# --- cascade --------------------------------------------------------------------------------

LINK = Link("test", "device", "cloud", bandwidth_mbps=8.0, rtt_ms=100.0)  # 1e6 bytes/s


def _data(**over):
    small = np.array([[0.95, 0.05], [0.6, 0.4], [0.2, 0.8], [0.1, 0.9]])  # classes 0, 1
    large = np.array([[0.9, 0.1, 0.0], [0.1, 0.9, 0.0], [0.0, 0.1, 0.9], [0.0, 0.9, 0.1]])
    base = dict(small_probs=small, small_classes=np.array([0, 1]), large_probs=large,
                large_classes=np.array([0, 1, 2]), labels=np.array([0, 1, 2, 1]),
                bytes_raw=np.array([1000, 1000, 1000, 1000]), bytes_compressed=np.array([100, 200, 300, 400]),
                small_latency_s=0.001, large_latency_s=0.010)
    base.update(over)
    return CascadeData(**base)


def test_link_seconds_is_rtt_plus_bytes_over_goodput():
    assert cascade.link_seconds(LINK, 1e6) == pytest.approx(0.1 + 1.0)
    lossy = Link("l", "device", "cloud", bandwidth_mbps=8.0, rtt_ms=0.0, loss=0.5)
    assert cascade.link_seconds(lossy, 1e6) == pytest.approx(2.0)


def test_cascade_at_a_threshold():
    p = cascade.evaluate(_data(), LINK, 0.85)
    # local: sample 0 (0.95) and sample 3 (0.9); offloaded: samples 1 and 2
    assert p.fraction_offloaded == pytest.approx(0.5)
    assert p.bytes_per_input_compressed == pytest.approx((200 + 300) / 4)
    assert p.bytes_per_input_raw == pytest.approx(2000 / 4)
    remote = (0.1 + 200 / 1e6 + 0.010) + (0.1 + 300 / 1e6 + 0.010)
    assert p.latency_ms == pytest.approx((0.001 + remote / 4) * 1e3)
    assert p.latency_raw_ms == pytest.approx((0.001 + (2 * 0.11 + 2000 / 1e6) / 4) * 1e3)
    baseline = 0.1 + 250 / 1e6 + 0.010
    assert p.baseline_latency_ms == pytest.approx(baseline * 1e3)
    assert p.latency_reduction == pytest.approx(baseline / (0.001 + remote / 4))
    # answers: 0 (small), 1 (large), 2 (large), 1 (small) -> all right; large alone gets all right too
    assert p.accuracy == pytest.approx(1.0) and p.accuracy_large_only == pytest.approx(1.0)
    assert p.accuracy_loss == pytest.approx(0.0) and p.agreement_with_large == pytest.approx(1.0)


def test_low_threshold_keeps_everything_local_and_loses_accuracy():
    p = cascade.evaluate(_data(), LINK, 0.0)
    assert p.fraction_offloaded == 0.0 and p.bytes_per_input_compressed == 0.0
    assert p.latency_ms == pytest.approx(1.0)
    assert p.accuracy == pytest.approx(0.5)  # samples 1 and 2 answered 0 and 1 by the small model
    assert p.accuracy_loss == pytest.approx(0.5)
    assert p.agreement_with_large == pytest.approx(0.5)


def test_threshold_one_sends_everything_and_matches_the_large_model():
    p = cascade.evaluate(_data(), LINK, 1.0)
    assert p.fraction_offloaded == 1.0
    assert p.agreement_with_large == 1.0
    assert p.latency_ms == pytest.approx(p.baseline_latency_ms + 1.0)  # plus the small model's 1 ms


def test_other_class_is_always_offloaded():
    small = np.array([[0.99, 0.01], [0.02, 0.98], [0.97, 0.03], [0.01, 0.99]])  # columns OTHER, 1
    p = cascade.evaluate(_data(small_probs=small, small_classes=np.array([OTHER, 1])), LINK, 0.0)
    assert p.fraction_offloaded == pytest.approx(0.5)  # samples 0 and 2 say "other"


def test_sweep_offloads_more_as_the_threshold_rises():
    points = cascade.sweep(_data(), LINK, (0.0, 0.5, 0.85, 0.92, 1.0))
    fractions = [p.fraction_offloaded for p in points]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0


@pytest.mark.parametrize("bad", [-0.01, 1.01, math.nan, math.inf, True, "0.5", None])
def test_threshold_outside_unit_interval_is_refused(bad):
    with pytest.raises(CascadeError, match="not a confidence in \\[0, 1\\]"):
        cascade.evaluate(_data(), LINK, bad)
    assert issubclass(CascadeError, EdgeAIError)


def test_mismatched_arrays_are_refused_with_every_problem():
    with pytest.raises(CascadeError) as info:
        _data(bytes_raw=np.array([1, 2]), small_classes=np.array([0, 1, 2]), large_latency_s=math.nan)
    text = str(info.value)
    assert "bytes_raw has 2 rows" in text and "3 classes" in text and "large_latency_s" in text


def test_input_bytes_raw_and_zlib():
    x = np.zeros((3, 64), np.float32)
    x[1] = np.arange(64)
    raw, packed = cascade.input_bytes(x)
    assert list(raw) == [256, 256, 256]
    assert packed[0] < packed[1] < 256
