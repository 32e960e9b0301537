"""The canary: a fixed reference workload each run measures on each device before anything else there.

Why: four identical runs on a shared 2-core VM differ by 25-50% in every figure at once; the machine's
speed drifts between runs. A workload whose true speed never changes with the release (as Chromium's
perf bots run a reference build beside the one under test) measures that drift, so a comparison
(results.compare) reads a slowdown of everything, canary included, as the machine and not the release.

The model is frozen here, not taken from the zoo (a zoo builder may change with a release): an MLP of
``LAYERS`` fully connected layers of ``WIDTH`` with weights from a fixed seed, one sample a query. It is
measured single-stream through the device's own backend and isolated worker, like any measurement, for
about a second (``canary_profile``), and written as a record of suite results.compare.CANARY_SUITE. A device whose
backend cannot run it gets an error record saying why; the tests go on. ``--edgeai-no-canary`` (or
``EDGEAI_NO_CANARY=1`` in the environment, as the project's own tests set it) skips it.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import EdgeAIError
from .filecache import build_once
from .measure.profiles import Profile
from .models.model import Model

if TYPE_CHECKING:
    import onnx

    from .bench import Bench

NAME = "edgeai_canary"
VERSION = 1  # what the canary computes never changes; a new one gets a new version (and name on disk)
WIDTH, LAYERS, SEED = 256, 6, 20261201
MAX_WINDOW_S = 1.0
NO_CANARY_ENV = "EDGEAI_NO_CANARY"


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


def canary_profile(profile: Profile) -> Profile:
    """About a second: half the profile's window, at most MAX_WINDOW_S, a short warm-up."""
    return replace(profile, name=f"{profile.name}-canary", warmup_count=min(profile.warmup_count, 5),
                   warmup_s=min(profile.warmup_s, 0.2), min_duration_s=min(profile.min_duration_s / 2, MAX_WINDOW_S),
                   min_count=min(profile.min_count, 10))


def measure_canary(bench: Bench, cache_dir: Path | None = None) -> None:
    """Measure the canary on the bench's device and record it (an error record if it cannot run)."""
    try:
        model = canary_model(cache_dir)
    except (OSError, EdgeAIError) as exc:
        bench.fail_record(bench.new_record(None, {"name": "single_stream", "batch": 1}),
                          f"the canary model could not be built: {exc}")
        return
    try:
        bench.single_stream(model)
    except EdgeAIError:
        pass  # Bench.run recorded the error with its message; the device's own tests go on

