"""Bytes on the wire at cuts (the input sets and their baselines are tested in test_inputs.py)."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from pytest_edgeai.split import wire
from pytest_edgeai.split.wire import CODECS, ENCODINGS, encode, measure_cut_bytes


def test_encodings_have_the_expected_sizes_and_int8_is_close():
    x = np.random.default_rng(0).standard_normal((2, 8, 5, 5)).astype(np.float32)
    assert len(encode(x, "raw")) == x.nbytes
    assert len(encode(x, "fp16")) == x.nbytes // 2
    q = encode(x, "int8")
    assert len(q) == x.size + 8
    scale, lo = np.frombuffer(q[:8], np.float32)
    back = np.frombuffer(q[8:], np.uint8).astype(np.float32) * scale + lo
    assert np.abs(back - x.ravel()).max() <= scale / 2 + 1e-6
    with pytest.raises(ValueError, match="unknown encoding"):
        encode(x, "fp8")


def test_cut_bytes_sum_crossing_tensors_and_report_savings():
    rng = np.random.default_rng(1)
    sparse = np.maximum(rng.standard_normal((1, 16, 8, 8)).astype(np.float32), 0)
    small = rng.standard_normal((1, 10)).astype(np.float32)
    feeds = [{"a": sparse, "b": small}]
    report = measure_cut_bytes(["1:x", "2:y"], [("a", "b"), ("b",)], feeds, [3000], [1500], "png")
    two, one = report.cuts
    assert two.sizes["raw+none"] == sparse.nbytes + small.nbytes
    assert one.sizes["raw+zlib"] == len(zlib.compress(small.tobytes(), wire.ZLIB_LEVEL))
    assert two.sizes["raw+zlib"] < two.sizes["raw+none"]  # half the values are zero
    key, size = one.best()
    assert key.startswith("raw+") and size == min(v for k, v in one.sizes.items() if k.startswith("raw+"))
    assert report.saving(one) == pytest.approx(1500 / size)
    assert set(two.sizes) <= {f"{e}+{c}" for e in ENCODINGS for c in CODECS}


def test_missing_optional_codecs_are_reported_not_fatal(monkeypatch):
    def missing():
        raise ImportError("no zstandard")

    monkeypatch.setattr(wire, "_zstd", missing)
    report = measure_cut_bytes(["1:x"], [("a",)], [{"a": np.zeros(10, np.float32)}], [1], [1], "png")
    assert "zstd" in report.unavailable and "zstandard" in report.unavailable["zstd"]
    assert "raw+zstd" not in report.cuts[0].sizes and "raw+zlib" in report.cuts[0].sizes


def test_an_integer_tensor_at_a_cut_is_counted_raw_in_every_encoding_as_the_wire_sends_it():
    """link.encode_frame sends integer tensors raw whatever the plan's encoding (wire_encoding): their bytes per
    cut in fp16 or int8 are their raw bytes, or the planner would price a message smaller than the one sent."""
    ids = np.arange(64, dtype=np.int64).reshape(1, 64) * 1000
    report = measure_cut_bytes(["1:x"], [("ids",)], [{"ids": ids}], [1], [1], "png")
    sizes = report.cuts[0].sizes
    assert sizes["fp16+none"] == sizes["int8+none"] == sizes["raw+none"] == ids.nbytes
    assert sizes["int8+zlib"] == sizes["raw+zlib"]
