"""The split study glue the suite uses: savings, earliest saving cut, plan, and real execution."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from pytest_edgeai.errors import ConfigError
from pytest_edgeai.models.inputs import ASSUMED
from pytest_edgeai.split.network import LinkProfile
from pytest_edgeai.split.study import run_plan, study_cuts, study_file, study_plan, term_errors


def tiny_classifier():
    """[N,3,16,16] -> Conv(8) -> Relu -> GlobalAveragePool -> Flatten -> Gemm: only the pooled cut is small."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((8, 3, 3, 3)).astype(np.float32)
    fc = rng.standard_normal((8, 4)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["img", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("GlobalAveragePool", ["r"], ["g"], name="gap"),
             helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "fc"], ["out"], name="fc")]
    graph = helper.make_graph(nodes, "tiny",
                              [helper.make_tensor_value_info("img", TensorProto.FLOAT, ["N", 3, 16, 16])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 4])],
                              initializer=[numpy_helper.from_array(w, "w"), numpy_helper.from_array(fc, "fc")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_savings_best_feature_cut_and_earliest_saving_cut():
    study = study_cuts(tiny_classifier(), 2, ASSUMED.at(16))
    assert [c.name for c in study.cuts] == ["2:relu", "4:flatten"]  # one per layer boundary and size
    assert [study.depth(c) for c in study.cuts] == [1, 1] and study.layers == 2
    savings = study.savings()
    assert savings[0] < 1 < savings[1]  # 32 pooled bytes beat any PNG; the 8x16x16 map does not
    assert study.saving_depth() == 1
    cut, saving = study.best()  # the pooled vector is not inside the feature layers
    assert cut.name == "2:relu" and saving == pytest.approx(savings[0])
    assert study.best(before_last_layers=2) is None
    assert study.at("relu")[0].name == "2:relu" and study.at("nothing") is None
    assert "no cut ends a block named 'relx' (did you mean 'relu'?)" in study.no_block("relx")
    assert study.savings(baseline="jpeg")[1] == pytest.approx(study.jpeg_bytes / 32)  # beside the PNG one
    with pytest.raises(ConfigError, match="encoding 'int4' is not measured"):
        study.best("int4")
    rows = study.table()
    assert rows[1]["depth_layers"] == 1 and rows[1]["bytes"]["raw+none"] == 32 and not rows[1]["feature_layer"]
    assert study.input_set == {}


def test_plan_is_executed_and_compared_with_its_prediction():
    study = study_cuts(tiny_classifier(), 2, ASSUMED.at(16))
    links = {("device", "cloud"): LinkProfile("device", "cloud", 50.0, 4.0)}
    planned = study_plan(study, links, ["device", "cloud"], repeats=3, top=3)
    assert planned.chosen.stages[0].stop > 0 and planned.chosen.stages[-1].tier == "cloud"
    assert len(planned.plans) == 2  # the input stays on the device, the last block on the cloud: 2 cuts left
    measured = run_plan(study, planned, runs=3)
    assert measured.max_abs_error == 0.0 and len(measured.latencies_s) == 3  # calibration runs are not samples
    assert measured.extra["uncalibrated_predicted_s"] == planned.chosen.latency_s and measured.prediction_error >= 0
    calibration = measured.extra["calibration"]
    assert calibration["queries"] == 5 and calibration["method"].startswith("measured")
    # the prediction compared is the plan re-priced with what its messages measured to cost, term by term
    priced = measured.extra["predicted_terms"]
    assert priced["compute_s"] == measured.extra["uncalibrated_predicted_terms"]["compute_s"]
    device_send = calibration["message_s"]["device"][1]
    assert device_send > 0 and priced["message_s"][0] == device_send
    link = links[("device", "cloud")]
    assert priced["link_s"][0] == pytest.approx(max(link.one_way_s, link.transfer_s(
        planned.chosen.transfers[0].nbytes) + calibration["link_overhead_s"][0]))
    assert measured.predicted_s == pytest.approx(sum(priced["compute_s"]) + sum(priced["message_s"])
                                                 + sum(priced["link_s"]))
    by_term = term_errors(measured)
    got = measured.extra["measured_terms"]
    assert by_term["compute_s"] == pytest.approx(sum(got["compute_s"]) - sum(priced["compute_s"]))
    assert by_term["link_s"] == pytest.approx(sum(got["link_s"]) - sum(priced["link_s"]))


def test_a_plan_priced_in_an_encoding_is_sent_in_it():
    study = study_cuts(tiny_classifier(), 2, ASSUMED.at(16))
    links = {("device", "cloud"): LinkProfile("device", "cloud", 50.0, 4.0)}
    raw = study_plan(study, links, ["device", "cloud"], repeats=3, top=1)
    packed = study_plan(study, links, ["device", "cloud"], repeats=3, top=1, encoding="int8+zlib")
    assert packed.encoding == "int8+zlib"
    assert packed.problem.boundary_bytes[1] < raw.problem.boundary_bytes[1]  # priced in int8 + zlib
    measured = run_plan(study, packed, runs=2)
    assert len(measured.latencies_s) == 2 and measured.top1_agreement is not None
    with pytest.raises(ConfigError, match="encoding 'int4\\+zlib' is not measured"):
        study_plan(study, links, ["device", "cloud"], repeats=1, encoding="int4+zlib")


def test_an_int8_tier_is_priced_and_sent_in_int8_and_its_accuracy_change_measured():
    study = study_cuts(tiny_classifier(), 2, ASSUMED.at(16))
    links = {("device", "cloud"): LinkProfile("device", "cloud", 50.0, 4.0)}
    fp32 = study_plan(study, links, ["device", "cloud"], repeats=1, top=1, encoding="raw+zlib")
    int8 = study_plan(study, links, ["device", "cloud"], repeats=1, top=2, encoding="raw+zlib",
                      precision={"device": "int8"}, trained=True)
    assert int8.problem.sent_bytes("device")[1] < fp32.problem.sent_bytes("device")[1]  # int8 + zlib is smaller
    assert int8.problem.sent_bytes("cloud") == fp32.problem.sent_bytes("cloud")
    assert int8.encodings(int8.chosen) == ["int8+zlib"]
    assert fp32.agreement[0] == {"top1_agreement": 1.0, "encodings": ["raw+zlib"],
                                 "method": "exact: raw tensors are sent losslessly"}
    measured = int8.agreement[0]
    assert (measured["method"].startswith("measured") and measured["views"] >= 30
            and 0 <= measured["top1_agreement"] <= 1)
    seeded = study_plan(study, links, ["device", "cloud"], repeats=1, top=1, precision={"device": "int8"})
    assert seeded.agreement[0]["top1_agreement"] is None and "seeded" in seeded.agreement[0]["method"]
    assert len(run_plan(study, int8, runs=2).latencies_s) == 2  # the executor sends what was priced


def test_a_plans_agreement_is_measured_on_a_model_with_several_inputs(tmp_path):
    pytest.importorskip("PIL", reason="photographs are decoded with Pillow")
    from test_split_suite_inputs import two_input_cnn

    two_input_cnn(tmp_path / "two.onnx")
    study = study_file(str(tmp_path / "two.onnx"), 2)
    links = {("device", "cloud"): LinkProfile("device", "cloud", 50.0, 4.0)}
    planned = study_plan(study, links, ["device", "cloud"], repeats=1, top=1, encoding="raw+zlib",
                         precision={"device": "int8"}, trained=True)
    agreement = planned.agreement[0]
    assert agreement["encodings"] == ["int8+zlib"]
    assert agreement["method"].startswith("measured") and "seeded smooth fields on meta" in agreement["method"]
    assert agreement["views"] >= 30 and 0.0 <= agreement["top1_agreement"] <= 1.0
    seeded = study_plan(study, links, ["device", "cloud"], repeats=1, top=1, precision={"device": "int8"})
    assert seeded.agreement[0]["top1_agreement"] is None  # seeded weights: not judged
