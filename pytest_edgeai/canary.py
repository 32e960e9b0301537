"""The canary: a fixed reference workload read on each device right beside every timed measurement.

Why: four identical runs on a shared 2-core VM differ by 25-50% in every figure at once; the machine's
speed drifts between runs, and within one (a neighbour's load that starts mid-run). A workload whose true
speed never changes with the release (as Chromium's perf bots run a reference build beside the one under
test) measures that drift, so a comparison (results.compare) reads a slowdown of everything, canary
included, as the machine and not the release.

The model is frozen here, not taken from the zoo (a zoo builder may change with a release): an MLP of
``LAYERS`` fully connected layers of ``WIDTH`` with weights from a fixed seed, one sample a query. The
worker that measures a device loads it once through the device's own backend (``CanaryReader``, kept
loaded beside the model under test) and, in the same process and under the same device lock, takes a
reading of ``READING_S`` right before and right after each timed window (``bracket``). The record
carries both readings (``extra.canary``, docs/record-schema.md): the median time per query of each, and
their geometric mean as the record's canary. A reading is a median, not a mean: a reading lasts a few
scheduler quanta, so whether one preemption lands inside it is chance, while the median time per query
is the machine's speed per instruction, which is what moved every query of the timed window (the
minimum latency included) when a neighbour's load changed. The run's canary (results.compare.canaries)
is the median of its records' canaries on the device; there is no separate run-start measurement.
A device whose backend cannot run the canary carries the reason instead; its tests go on.
``--edgeai-no-canary`` (or ``EDGEAI_NO_CANARY=1`` in the environment, as the project's own tests set
it) skips the readings.

Cost: two readings of READING_S (one untimed call each, then at least READING_MIN_COUNT queries) per
measurement, and one load of the canary per worker.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from statistics import median
from typing import TYPE_CHECKING, Any, TypeVar

from .filecache import build_once
from .measure.inputs import make_feeds
from .measure.scenarios import timed_queries
from .models.model import Model

if TYPE_CHECKING:
    import numpy as np
    import onnx

    from .backends.base import Session

NAME = "edgeai_canary"
VERSION = 1  # what the canary computes never changes; a new one gets a new version (and name on disk)
WIDTH, LAYERS, SEED = 256, 6, 20261201
NO_CANARY_ENV = "EDGEAI_NO_CANARY"
FIELD = "canary"  # the record's extra key
READING_S = 0.01  # each reading: short beside a window of seconds (see the cost above)
READING_MIN_COUNT = 5  # ...and at least this many queries, on a device where one query is slow
WARMUP_COUNT = 5  # calls when the canary is loaded, before its first reading
T = TypeVar("T")


def build() -> onnx.ModelProto:
    """The canary's ONNX graph: the same bytes on every machine and in every release."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(SEED)
    nodes, weights = [], []
    x = "input"
    for i in range(LAYERS):
        w = (rng.standard_normal((WIDTH, WIDTH)) / np.sqrt(WIDTH)).astype(np.float32)
        b = np.zeros(WIDTH, np.float32)
        weights += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        nodes += [helper.make_node("MatMul", [x, f"w{i}"], [f"m{i}"]),
                  helper.make_node("Add", [f"m{i}", f"b{i}"], [f"a{i}"]),
                  helper.make_node("Relu", [f"a{i}"], [f"r{i}"])]
        x = f"r{i}"
    nodes.append(helper.make_node("Identity", [x], ["output"]))
    graph = helper.make_graph(nodes, NAME, [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, WIDTH])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, WIDTH])],
                              initializer=weights, doc_string="pytest-edgeai canary: a fixed reference workload")
    model = helper.make_model(graph, producer_name="pytest-edgeai", opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    model.model_version = VERSION
    onnx.checker.check_model(model)
    return model


def canary_model(cache_dir: Path | None = None) -> Model:
    """The canary's model file, built once in the model cache (the zoo's, by default)."""
    from .models import zoo  # imports onnx

    def produce(tmp: Path) -> None:
        tmp.write_bytes(build().SerializeToString())

    path = build_once(Path(cache_dir or zoo.default_cache_dir()) / f"{NAME}-v{VERSION}.onnx", produce)
    return Model(name=NAME, path=path, format="onnx", source="canary", params={"version": VERSION},
                 task="reference workload")


class CanaryReader:
    """The canary loaded on a device, ready for a reading (a short timed loop, measure.scenarios)."""

    def __init__(self, session: Session, feeds: dict[str, np.ndarray] | None = None):
        """``session``: the canary's model loaded by the device's backend; fed one sample a query."""
        self.session = session
        self.feeds = feeds if feeds is not None else make_feeds(session.inputs, 1)
        for _ in range(WARMUP_COUNT):
            session.run(self.feeds)

    def read(self) -> list[int]:
        return timed_queries(self.session, self.feeds, READING_S, READING_MIN_COUNT)

    def close(self) -> None:
        self.session.close()


def entry(before: list[int], after: list[int]) -> dict[str, Any]:
    """The record's ``extra.canary`` from the readings before and after its timed window."""
    readings = [median(before) / 1e6, median(after) / 1e6]
    return {"value": math.sqrt(readings[0] * readings[1]), "unit": "ms", "method": "measured",
            "readings_ms": readings, "queries": [len(before), len(after)],
            "source": f"median time per query of the canary ({NAME} v{VERSION}) in a reading of "
                      f"{READING_S * 1e3:g} ms right before and one right after the timed window (same worker, "
                      f"same device lock); the value is their geometric mean"}


def bracket(reader: CanaryReader | str | None, timed: Callable[[], T]) -> tuple[T, dict[str, Any] | None]:
    """``timed()`` between two canary readings, and the record's canary entry: the reason instead where
    the canary could not be loaded on the device (``reader`` a string), None without a canary."""
    if reader is None or isinstance(reader, str):
        return timed(), None if reader is None else {"reason": reader}
    before = reader.read()
    value = timed()
    return value, entry(before, reader.read())
