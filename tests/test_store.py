"""Records and the run store: atomic writes, partial and foreign records, 'latest'."""

from __future__ import annotations

import json

import pytest

from pytest_edgeai.errors import EdgeAIError
from pytest_edgeai.results.record import SCHEMA_VERSION, Record
from pytest_edgeai.results.store import RunStore, list_runs, load_run, resolve_run, write_json_atomic


def make_record(**kw) -> Record:
    base = dict(suite="throughput", test_id="t::x", device={"name": "cpu"}, backend={"name": "onnxruntime"},
                model={"name": "m"}, scenario={"name": "offline", "batch": 1},
                metrics={"throughput_ips": {"value": 12.5, "unit": "inferences/s", "method": "measured"}})
    base.update(kw)
    return Record(**base)


def test_record_round_trips_through_json():
    r = make_record(samples={"latency_ns": [1, 2, 3]}, warnings=["w"])
    back = Record.from_dict(json.loads(json.dumps(r.to_dict())))
    assert back == r
    assert back.metric("throughput_ips") == 12.5 and back.metric("missing") is None
    assert back.schema_version == SCHEMA_VERSION


def test_run_store_writes_records_and_points_latest(tmp_path):
    store = RunStore.create(tmp_path, {"environment": {"host": "h"}})
    first = make_record()
    path = store.write(first)
    first.claims.append({"name": "c", "verdict": "pass"})
    assert store.write(first) == path  # rewritten in place, not duplicated
    store.write(make_record(model={"name": "other"}))
    store.finish()
    run = load_run("latest", tmp_path)
    assert run.path == store.path.resolve()
    assert run.complete and run.meta["environment"] == {"host": "h"}
    assert len(run.records) == 2 and run.problems == []
    assert {r.run_id for r in run.records} == {store.run_id}
    assert any(r.claims for r in run.records)
    assert list_runs(tmp_path) == [store.path]


def test_unreadable_and_foreign_records_are_reported_and_the_rest_kept(tmp_path):
    store = RunStore.create(tmp_path, {})
    store.write(make_record())
    records = store.path / "records"
    (records / "00-truncated.json").write_text('{"schema": "pytest-edgeai/result", "metr')
    (records / "01-foreign.json").write_text('{"hello": 1}')
    newer = make_record().to_dict() | {"schema_version": SCHEMA_VERSION + 1}
    (records / "02-newer.json").write_text(json.dumps(newer))
    run = load_run(store.path)
    assert len(run.records) == 1
    text = "\n".join(run.problems)
    assert "truncated" in text and "not a pytest-edgeai result record" in text and "newer" in text
    assert not run.complete  # never finished: the report marks it incomplete


def test_atomic_write_leaves_no_partial_file_on_failure(tmp_path):
    target = tmp_path / "x.json"
    write_json_atomic(target, {"a": 1})
    with pytest.raises(TypeError):
        write_json_atomic(target, {"a": object.__new__(type("Unserialisable", (), {"__str__": None}))})
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_a_directory_that_is_not_a_run_is_refused(tmp_path):
    with pytest.raises(EdgeAIError, match="not a run directory"):
        resolve_run(tmp_path)


def test_every_record_field_is_documented():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "record-schema.md").read_text()
    undocumented = [f for f in Record.__dataclass_fields__ if f"| `{f}` |" not in doc]
    assert undocumented == []


def test_a_metric_says_how_it_was_obtained_and_refuses_unknown_methods():
    from pytest_edgeai.results.record import metric

    assert metric(2.0, "x", "a / b", method="derived") == {"value": 2.0, "unit": "x", "method": "derived",
                                                           "source": "a / b"}
    with pytest.raises(ValueError, match="not one of measured, derived, predicted, estimated"):
        metric(1.0, "x", "guess", method="made up")
