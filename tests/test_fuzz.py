"""Fuzzing devices.toml and the run store (issue 16): whatever the file holds, the answer is a Config or
one line per problem, never a traceback from our code; every readable record is used and every other
one is named. Bounded to a few seconds: hypothesis' own database is off, so CI runs the same budget."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_edgeai import config
from pytest_edgeai.errors import ConfigError
from pytest_edgeai.report.html import build_report
from pytest_edgeai.results import synthetic
from pytest_edgeai.results.compare import compare_runs
from pytest_edgeai.results.export import to_pytest_benchmark
from pytest_edgeai.results.store import RECORDS_DIR, RUN_FILE, load_run

FAST = settings(max_examples=40, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

# Keys a devices.toml uses, so the fuzzer reaches deep into the validator, and some it does not.
WORDS = ("devices", "models", "links", "tolerances", "cpu", "kind", "backend", "tier", "options", "memory_mb",
         "price_usd", "tdp_w", "hardware_id", "meter", "source", "rate_hz", "idle_s", "claims", "throughput",
         "min_inferences_per_s", "threshold", "mobilenet_v2", "*", "path", "zoo", "params", "from", "to",
         "bandwidth_mbps", "rtt_ms", "loss", "onnxruntime", "openvino", "providers", "intra_op_num_threads",
         "performance_hint", "num_streams", "rapl", "command", "zones", "edge", "device", "cloud", "gpu")
keys = st.one_of(st.sampled_from(WORDS), st.text(max_size=12))
scalars = st.one_of(
    st.sampled_from(WORDS), st.text(max_size=20), st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20), st.integers(min_value=10**300, max_value=10**401),
    st.floats(allow_nan=True, allow_infinity=True),
)
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                      st.dictionaries(keys, inner, max_size=5)), max_leaves=25)
documents = st.dictionaries(keys, values, max_size=5)


def toml_value(value: Any) -> str:
    """A value as TOML inline syntax (JSON's string escapes are TOML's)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def check_outcome(load) -> None:
    try:
        cfg = load()
    except ConfigError as exc:
        assert exc.problems, "a ConfigError names at least one problem"
        for line in exc.problems:
            assert line and "\n" not in line and "\r" not in line, f"a problem must be one line: {line!r}"
        return
    assert cfg.devices, "a loaded config has at least one device"


@FAST
@given(doc=documents)
def test_devices_toml_structures_give_a_config_or_one_line_per_problem(doc):
    check_outcome(lambda: config.parse(doc))


@FAST
@given(doc=documents, prefix=st.sampled_from(["", "\ufeff", "[devices.cpu]\n", "x = "]),
       junk=st.text(max_size=30))
def test_devices_toml_text_gives_a_config_or_one_line_per_problem(tmp_path, doc, prefix, junk):
    body = "\n".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in doc.items())
    path = tmp_path / "devices.toml"
    path.write_text(prefix + body + "\n" + junk, encoding="utf-8", errors="surrogatepass")
    check_outcome(lambda: config.load(path))


# --- the run store -------------------------------------------------------------------------------

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.text(max_size=10), st.integers(min_value=-(10**40), max_value=10**40),
              st.floats(allow_nan=True, allow_infinity=True)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=10)


@st.composite
def mutations(draw) -> list[tuple[str, Any]]:
    """Edits of a record: (dotted path, new value or DELETE), at the fields readers use."""
    fields = ("suite", "test_id", "device", "device.name", "backend", "model", "model.name", "scenario",
              "scenario.name", "scenario.batch", "metrics", "metrics.throughput_ips",
              "metrics.throughput_ips.value", "metrics.throughput_ips.unit", "metrics.throughput_ips.ci95",
              "metrics.latency_p50_ms.value", "samples", "samples.latency_ns", "claims", "warnings", "status",
              "error", "extra", "id", "created", "schema_version", "run_id")
    edits = draw(st.lists(st.tuples(st.sampled_from(fields), st.one_of(st.just(DELETE), json_values)),
                          min_size=1, max_size=3))
    return edits


DELETE = object()


def mutate(record: dict[str, Any], edits: list[tuple[str, Any]]) -> dict[str, Any]:
    for path, value in edits:
        *parents, last = path.split(".")
        target: Any = record
        for p in parents:
            target = target.get(p) if isinstance(target, dict) else None
        if not isinstance(target, dict):
            continue
        if value is DELETE:
            target.pop(last, None)
        else:
            target[last] = value
    return record


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    return synthetic.write_run(tmp_path_factory.mktemp("fuzz") / "reports", 1.0, seed=1, batches=(1, 2), count=30,
                               models=("mobilenet_v2",))


def fuzzed_run(template: Path, tmp_path_factory, edits, meta, raw) -> tuple[Path, Any]:
    """A copy of the template run with mutated records, raw bytes and run.json, read back and checked."""
    run = tmp_path_factory.mktemp("run") / template.name
    shutil.copytree(template, run)
    good = sorted((run / RECORDS_DIR).glob("*.json"))
    kept = {json.loads(p.read_text())["id"] for p in good}
    base = json.loads(good[0].read_text())
    for i, change in enumerate(edits):
        record = mutate(json.loads(json.dumps(base)) | {"id": f"fuzz{i:08d}"}, change)
        (run / RECORDS_DIR / f"fuzz-{i}.json").write_text(json.dumps(record))
    for i, data in enumerate(raw):
        (run / RECORDS_DIR / f"raw-{i}.json").write_bytes(data)
    if meta is not None:
        (run / RUN_FILE).write_text(json.dumps(meta))
    loaded = load_run(run)
    files = len(good) + len(edits) + len(raw)
    named = [p for p in loaded.problems if RECORDS_DIR in p]
    assert len(loaded.records) + len(named) == files  # every file either used or named
    assert kept <= {r.id for r in loaded.records}  # every untouched record is used
    assert all("\n" not in p for p in loaded.problems)
    return run, loaded


run_edits = {"edits": st.lists(mutations(), min_size=1, max_size=3), "meta": st.one_of(st.none(), json_values),
             "raw": st.lists(st.binary(max_size=40), max_size=2)}


@FAST
@given(**run_edits)
def test_a_fuzzed_run_is_read_compared_and_exported(template, tmp_path_factory, edits, meta, raw):
    _, loaded = fuzzed_run(template, tmp_path_factory, edits, meta, raw)
    document, left_out = to_pytest_benchmark(loaded)  # none may raise on what the store let through
    assert isinstance(document, dict) and all(isinstance(why, str) for why in left_out)
    for base, new in ((load_run(template), loaded), (loaded, load_run(template))):
        comparison = compare_runs(base, new)
        assert all(d.verdict and d.test for d in comparison.deltas)  # a verdict, and what it was judged on


@settings(FAST, max_examples=4)  # a report draws charts: about a second each
@given(**run_edits)
def test_a_fuzzed_run_is_reported(template, tmp_path_factory, edits, meta, raw):
    run, _ = fuzzed_run(template, tmp_path_factory, edits, meta, raw)
    assert build_report(run).path.is_file()
