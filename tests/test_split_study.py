"""The split study glue the suite uses: savings, earliest saving cut, plan, and real execution."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from pytest_edgeai.errors import ConfigError
from pytest_edgeai.split.network import LinkProfile
from pytest_edgeai.split.study import run_plan, study_cuts, study_plan


def tiny_classifier():
    """[N,3,16,16] -> Conv(8) -> Relu -> GlobalAveragePool -> Flatten: only the pooled cut is small."""
    w = np.random.default_rng(0).standard_normal((8, 3, 3, 3)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["img", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("GlobalAveragePool", ["r"], ["g"], name="gap"),
             helper.make_node("Flatten", ["g"], ["out"], name="flatten")]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("img", TensorProto.FLOAT, ["N", 3, 16, 16])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 8])],
                              initializer=[numpy_helper.from_array(w, "w")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_savings_and_earliest_saving_cut():
    study = study_cuts(tiny_classifier(), count=2)
    assert [c.name for c in study.cuts] == ["1:conv", "2:relu", "3:gap"]
    savings = study.savings()
    assert savings[0] < 1 and savings[1] < 1 and savings[2] > 1  # 32 pooled bytes beat any PNG
    assert study.saving_depth() == 1  # only the Flatten is left after the saving cut
    cut, saving = study.best()
    assert cut.name == "3:gap" and saving == pytest.approx(savings[2])
    assert study.best(before_last_layers=2)[0].name in ("1:conv", "2:relu")
    assert study.best(before_last_layers=9) is None
    assert study.best("int8+zlib")[1] > 0
    with pytest.raises(ConfigError, match="encoding 'int4' is not measured"):
        study.best("int4")
    rows = study.table()
    assert rows[2]["depth_layers"] == 1 and rows[2]["bytes"]["raw+none"] == 32


def test_plan_is_executed_and_compared_with_its_prediction():
    study = study_cuts(tiny_classifier(), count=2)
    links = {("device", "cloud"): LinkProfile("device", "cloud", 50.0, 4.0)}
    planned = study_plan(study, links, ["device", "cloud"], repeats=3, top=3)
    assert planned.chosen.stages[0].stop > 0 and planned.chosen.stages[-1].tier == "cloud"
    assert len(planned.plans) == 3
    measured = run_plan(study, planned, runs=3)
    assert measured.max_abs_error == 0.0 and len(measured.latencies_s) == 3
    assert measured.predicted_s == planned.chosen.latency_s and measured.prediction_error >= 0


def test_a_plan_priced_in_an_encoding_is_sent_in_it():
    study = study_cuts(tiny_classifier(), count=2)
    links = {("device", "cloud"): LinkProfile("device", "cloud", 50.0, 4.0)}
    raw = study_plan(study, links, ["device", "cloud"], repeats=3, top=1)
    packed = study_plan(study, links, ["device", "cloud"], repeats=3, top=1, encoding="int8+zlib")
    assert packed.encoding == "int8+zlib"
    assert packed.problem.boundary_bytes[1] < raw.problem.boundary_bytes[1]  # priced in int8 + zlib
    measured = run_plan(study, packed, runs=2)
    assert len(measured.latencies_s) == 2 and measured.top1_agreement is not None
    with pytest.raises(ConfigError, match="encoding 'int4\\+zlib' is not measured"):
        study_plan(study, links, ["device", "cloud"], repeats=1, encoding="int4+zlib")
