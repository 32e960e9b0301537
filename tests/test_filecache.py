"""Atomic writes and build-once files: a reader never sees half a file, a build runs once."""

from __future__ import annotations

import pytest

from pytest_edgeai.filecache import atomic_write, build_once, key


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "r.json"
    atomic_write(target, lambda fh: fh.write(b"old"))

    def half_then_fail(fh):
        fh.write(b"ne")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(target, half_then_fail)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_build_once_builds_only_when_missing(tmp_path):
    calls = []

    def produce(tmp):
        calls.append(tmp)
        tmp.write_bytes(b"model")

    path = tmp_path / "cache" / "m.onnx"
    assert build_once(path, produce).read_bytes() == b"model"
    assert build_once(path, produce) == path
    assert len(calls) == 1 and calls[0].suffix == ".onnx"  # producers that need the suffix get it


def test_keys_are_stable_and_order_independent_for_mappings():
    assert key("m", {"a": 1, "b": 2}) == key("m", {"b": 2, "a": 1})
    assert key("m", {"a": 1}) != key("m", {"a": 2})
