"""Shared fixtures of the project's own tests."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime  # noqa: F401  imported here so in-process pytester runs never re-import it
import pytest
import scipy.stats  # noqa: F401  (same reason: C extensions cannot be loaded twice in one process)

# @pytest.mark.hardware("<kind>") and the hardware_device fixture: tests/hardware/marker.py
from hardware.marker import hardware_device, pytest_configure, pytest_runtest_setup  # noqa: F401
from onnx import TensorProto, helper, numpy_helper

# The run state and what it imports, loaded once for the whole session: the plugin imports them only when a
# run uses edgeai, and a module first imported inside an in-process pytester run is dropped after it (pytester
# restores sys.modules), so a test that patches it beforehand would patch a copy the next run does not use.
import pytest_edgeai.run  # noqa: F401

# The source of a fake Session that echoes its input (the module it is pasted into imports TensorSpec from
# pytest_edgeai.backends.base): the fake backends that tests write into pytester directories share it.
ECHO_SESSION = '''
class Session:
    inputs = [TensorSpec("x", ("N", 4), "float32")]
    outputs = [TensorSpec("y", ("N", 4), "float32")]

    def run(self, feeds):
        return [feeds["x"]]

    def settings(self):
        return {}

    def close(self):
        pass
'''


def backends_conftest(**backends: str) -> str:
    """The source of a conftest.py that adds fake backends through the hook: name="module:Class"."""
    return f"def pytest_edgeai_backends():\n    return {backends!r}\n"


def devices_toml(devices: dict[str, dict[str, Any]], **common: Any) -> str:
    """The text of a devices.toml: a [devices.NAME] table per entry, holding ``common`` and the entry's own
    keys; a dict value (``options``, ``meter``) becomes its [devices.NAME.KEY] sub-table."""
    def lines(table: dict[str, Any]) -> list[str]:
        return [f"{key} = {json.dumps(value)}" for key, value in table.items()]  # JSON scalars are TOML ones

    out = []
    for name, own in devices.items():
        keys = {**common, **own}
        out += [f"[devices.{name}]", *lines({k: v for k, v in keys.items() if not isinstance(v, dict)})]
        for key, sub in keys.items():
            if isinstance(sub, dict):
                out += [f"[devices.{name}.{key}]", *lines(sub)]
    return "\n".join(out) + "\n"


def wait_for(predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Poll until ``predicate()`` holds (a background thread's effect); AssertionError after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.005)


def build_tiny_model(path: Path, features: int = 16, classes: int = 4, seed: int = 0) -> Path:
    """A small classifier (MatMul, Relu, MatMul, Softmax) with a dynamic batch dimension."""
    rng = np.random.default_rng(seed)
    w1 = numpy_helper.from_array(rng.standard_normal((features, 32)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.standard_normal((32, classes)).astype(np.float32), "w2")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["input", "w1"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
         helper.make_node("MatMul", ["r", "w2"], ["logits"]),
         helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1)],
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", features])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", classes])],
        [w1, w2],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


SUITES = Path(__file__).resolve().parents[1] / "suites"


def copy_suite(name: str, directory: Path) -> Path:
    """suites/test_NAME.py into a pytester directory as test_suite_NAME.py (tests/ has modules named like
    the suites, and one process cannot import two test_concurrency modules), still recorded as suite NAME."""
    path = directory / f"test_suite_{name}.py"
    path.write_text((SUITES / f"test_{name}.py").read_text(encoding="utf-8")
                    + f"\n\npytestmark = pytest.mark.edgeai_suite({name!r})\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One --edgeai-cache-dir for the pytester runs that pass it: zoo models and the digits classifiers are
    built once per test session (pytester gives each run a home of its own, so a cold cache otherwise)."""
    return tmp_path_factory.mktemp("edgeai-cache")


@pytest.fixture
def tiny_model(tmp_path: Path) -> Path:
    return build_tiny_model(tmp_path / "tiny.onnx")


@pytest.fixture(autouse=True)
def private_device_locks(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Device locks in a directory of this test session's own, so two test sessions on one host
    (a developer's and CI's) never queue behind each other's 'cpu'."""
    monkeypatch.setenv("EDGEAI_LOCK_DIR", str(tmp_path_factory.getbasetemp() / "device-locks"))


@pytest.fixture(autouse=True)
def no_canary(monkeypatch: pytest.MonkeyPatch) -> None:
    """pytester sessions skip the canary (a second of measuring each); tests/test_canary.py measures it."""
    monkeypatch.setenv("EDGEAI_NO_CANARY", "1")


# a throughput test a pytester project runs: one offline measurement and its claim (format with model=)
MEASURE_TEST = """
def test_measure(edgeai_device, edgeai_model, edgeai_bench, edgeai_claims):
    model = edgeai_model({model!r})
    record = edgeai_bench.offline(model, batch=2)
    edgeai_claims.check("min_inferences_per_s", record.metric("throughput_ips"), model.name, record)
    edgeai_claims.assert_met()
"""
