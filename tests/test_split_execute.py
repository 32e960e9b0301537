"""Split execution across processes over shaped loopback TCP, and its failure modes."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import replace

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from pytest_edgeai.claims import INCONCLUSIVE, MET, ClaimSpec, judge
from pytest_edgeai.devices import Device
from pytest_edgeai.errors import ConfigError, MeasurementError, SplitExecutionError
from pytest_edgeai.split import execute
from pytest_edgeai.split.constraints import Pin
from pytest_edgeai.split.cuts import GraphCuts
from pytest_edgeai.split.execute import (
    SplitExecutor,
    SplitMeasurement,
    StageSpec,
    pace,
    pipeline_window,
    stages_for,
)
from pytest_edgeai.split.network import LinkProfile
from pytest_edgeai.split.planner import SplitProblem, evaluate, plan
from pytest_edgeai.split.profile import block_latencies
from pytest_edgeai.split.runner import SegmentSession, stage_device

WIDTH = 4096


def wide_chain(depth: int = 4):
    """x[N, 4096] through Relu/Neg/Relu/...: cheap compute, 16 kB per boundary tensor."""
    ops = ["Relu", "Neg", "Relu", "Sigmoid", "Tanh", "Relu"][:depth]
    nodes = [helper.make_node(op, [f"t{i}"], [f"t{i + 1}"], name=f"{op.lower()}{i}") for i, op in enumerate(ops)]
    graph = helper.make_graph(nodes, "wide", [helper.make_tensor_value_info("t0", TensorProto.FLOAT, ["N", WIDTH])],
                              [helper.make_tensor_value_info(f"t{depth}", TensorProto.FLOAT, ["N", WIDTH])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def feeds(n, width=WIDTH):
    rng = np.random.default_rng(0)
    return [{"t0": rng.standard_normal((1, width)).astype(np.float32)} for _ in range(n)]


def reference(model, fs):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return [{"t4": sess.run(["t4"], f)[0]} for f in fs]


def test_planned_split_runs_for_real_and_is_compared_with_the_prediction():
    model = wide_chain()
    graph = GraphCuts(model)
    boundaries = list(range(graph.size + 1))  # every node is a block
    fs = feeds(4)
    links = {("device", "edge"): LinkProfile("device", "edge", 20.0, 10.0),
             ("edge", "cloud"): LinkProfile("edge", "cloud", 100.0, 4.0)}
    compute = block_latencies(graph, boundaries, fs[0], repeats=3)
    assert len(compute) == graph.size and all(c > 0 for c in compute)
    problem = SplitProblem(("device", "edge", "cloud"),
                           {"device": [c * 50 for c in compute], "edge": compute, "cloud": compute},
                           [WIDTH * 4] * (graph.size + 1), links)
    # compute here is microseconds, so only pins make the plan leave the device
    best = plan(problem, constraints=[Pin(0, "device"), Pin(graph.size - 1, "cloud")], top=1)[0]
    stages, stage_links = stages_for(best, boundaries, links)
    assert len(stages) >= 2
    with SplitExecutor(graph, stages, stage_links, timeout_s=20) as ex:
        result = ex.measure(fs, warmup=1, reference=reference(model, fs))
    result.predicted_s = best.latency_s
    assert result.max_abs_error == 0.0  # the same kernels on the same bytes
    assert len(result.latencies_s) == 4
    transfers = sum(t.seconds for t in best.transfers)
    assert min(result.latencies_s) >= 0.9 * transfers  # the link was really shaped
    assert result.prediction_error is not None and result.prediction_error >= 0.0


def test_relay_stage_forwards_without_computing():
    model = wide_chain()
    graph = GraphCuts(model)
    stages = [StageSpec("device", 0, 2), StageSpec("edge", 2, 2), StageSpec("cloud", 2, 4)]
    links = [LinkProfile("device", "edge", 1000.0, 0.0), LinkProfile("edge", "cloud", 1000.0, 0.0)]
    fs = feeds(2)
    with SplitExecutor(graph, stages, links, timeout_s=20) as ex:
        result = ex.measure(fs, warmup=0, reference=reference(model, fs))
    assert result.max_abs_error == 0.0 and len(result.latencies_s) == 2


def test_a_stage_that_dies_gives_a_clear_error_and_keeps_measurements():
    model = wide_chain()
    graph = GraphCuts(model)
    stages = [StageSpec("device", 0, 2), StageSpec("cloud", 2, 4)]
    slow = LinkProfile("device", "cloud", bandwidth_mbps=0.5, rtt_ms=0.0)  # 16 kB: about 0.26 s
    fs = feeds(2)
    with SplitExecutor(graph, stages, [slow], timeout_s=20) as ex:
        ex.measure(fs[:1], warmup=0)
        killer = threading.Timer(0.1, ex.processes[0].kill)
        killer.start()
        with pytest.raises(SplitExecutionError, match="stage 'cloud'.*(died with exit code -9|closed)") as err:
            ex.measure(fs * 5, warmup=0)
        killer.join()
    assert len(err.value.partial) >= 1 and ex.latencies_s[:1] == err.value.partial[:1]


def test_stages_must_cover_the_graph():
    graph = GraphCuts(wide_chain())
    with pytest.raises(MeasurementError, match="do not cover"):
        SplitExecutor(graph, [StageSpec("device", 0, 1), StageSpec("cloud", 2, 4)],
                      [LinkProfile("device", "cloud", 1, 1)])
    with pytest.raises(MeasurementError, match="need 1 links"):
        SplitExecutor(graph, [StageSpec("device", 0, 2), StageSpec("cloud", 2, 4)], [])


def two_input_model():
    """y and x in; the cut after Add carries {a, y}: a set of tensors, not one."""
    nodes = [helper.make_node("Add", ["x", "y"], ["a"], name="add"),
             helper.make_node("Tanh", ["a"], ["b"], name="tanh"),
             helper.make_node("Mul", ["b", "y"], ["c"], name="mul"),
             helper.make_node("Softmax", ["c"], ["out"], name="softmax", axis=-1)]
    spec = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, WIDTH]) for n in ("x", "y")]
    graph = helper.make_graph(nodes, "two_inputs", spec,
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, WIDTH])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def two_input_feeds(n):
    rng = np.random.default_rng(1)
    return [{"x": rng.standard_normal((1, WIDTH)).astype(np.float32),
             "y": rng.standard_normal((1, WIDTH)).astype(np.float32)} for _ in range(n)]


def whole(model, fs):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return [{"out": sess.run(["out"], f)[0]} for f in fs]


def test_a_model_with_two_inputs_splits_where_a_set_of_tensors_crosses_in_the_plans_encoding():
    model = two_input_model()
    graph = GraphCuts(model)
    assert set(graph.boundary(1)) == {"a", "y"}  # two tensors cross the first cut
    stages = [StageSpec("device", 0, 1), StageSpec("edge", 1, 3), StageSpec("cloud", 3, 4)]
    links = [LinkProfile("device", "edge", 1000.0, 0.0), LinkProfile("edge", "cloud", 1000.0, 0.0)]
    fs = two_input_feeds(3)
    ref = whole(model, fs)
    with SplitExecutor(graph, stages, links, timeout_s=20) as ex:
        exact = ex.measure(fs, warmup=0, reference=ref)
    with SplitExecutor(graph, stages, links, timeout_s=20, encodings=["int8+zlib", "fp16+zstd"]) as ex:
        lossy = ex.measure(fs, warmup=0, reference=ref)
    assert exact.max_abs_error == 0.0 and exact.top1_agreement == 1.0
    assert exact.wire_bytes[0] > 2 * 4 * WIDTH  # a and y, raw
    assert lossy.wire_bytes[0] < exact.wire_bytes[0] / 3  # int8 + zlib really went on the wire
    assert lossy.wire_bytes[1] < exact.wire_bytes[1] / 1.5
    assert 0.0 < lossy.max_abs_error < 1e-2  # decoded on the far side: close to, not equal to, the whole model
    assert lossy.top1_agreement is not None
    assert all(s["rate"].startswith("user-space relay") for s in lossy.shaping)
    assert "NOT an independent check" in lossy.link_method()


def test_a_pipelined_plan_keeps_several_inferences_in_flight():
    model = two_input_model()
    graph = GraphCuts(model)
    stages = [StageSpec("device", 0, 1), StageSpec("edge", 1, 3), StageSpec("cloud", 3, 4)]
    links = [LinkProfile("device", "edge", 1000.0, 0.0), LinkProfile("edge", "cloud", 1000.0, 0.0)]
    fs = two_input_feeds(12)
    with SplitExecutor(graph, stages, links, timeout_s=20) as ex:
        result = ex.measure_pipelined(fs, warmup=1, reference=whole(model, fs))
    assert len(result.latencies_s) == 12 and result.max_abs_error == 0.0
    assert result.throughput_per_s is not None and result.throughput_per_s > 0
    assert result.extra["window"] == 5


def test_the_user_space_links_delay_overlaps_in_a_pipeline():
    # 150 ms one way: a link that held each message before sending the next would complete at most
    # 1 / 0.15 = 6.7 per second; a delay line keeps the window's 5 messages in flight at once
    model = two_input_model()
    graph = GraphCuts(model)
    stages = [StageSpec("device", 0, 1), StageSpec("cloud", 1, 4)]
    link = LinkProfile("device", "cloud", 1000.0, rtt_ms=300.0)
    fs = two_input_feeds(15)
    with SplitExecutor(graph, stages, [link], timeout_s=20) as ex:
        result = ex.measure_pipelined(fs, warmup=1, window=5, reference=whole(model, fs))
    assert result.max_abs_error == 0.0
    assert min(result.latencies_s) >= link.one_way_s  # the delay is in every message's path
    assert result.throughput_per_s > 2 / link.one_way_s  # and several messages were in it at once
    assert result.shaping[0]["delay"].startswith("user-space relay") and "overlap" in result.shaping[0]["delay"]


def test_the_user_space_link_serialises_at_its_goodput():
    model = wide_chain()
    graph = GraphCuts(model)
    stages = [StageSpec("device", 0, 1), StageSpec("cloud", 1, graph.size)]
    link = LinkProfile("device", "cloud", 2.0, rtt_ms=0.0)  # 16 kB: 65 ms at 2 Mbit/s
    fs = feeds(3)
    with SplitExecutor(graph, stages, [link], timeout_s=20) as ex:
        result = ex.measure(fs, warmup=1)
    # a lower bound only: the relay cannot deliver faster than the link serialises
    assert min(result.latencies_s) >= 0.95 * link.serialise_s(WIDTH * 4)
    assert result.shaping[0]["kernel_shaped"] == [] and not result.independent


def test_a_pipeline_keeps_enough_in_flight_to_cover_its_latency():
    links = {("device", "cloud"): LinkProfile("device", "cloud", 1.6, 100.0)}
    problem = SplitProblem(("device", "cloud"), {"device": [0.01, 0.01], "cloud": [0.01, 0.01]}, [1e3, 4e3, 4e3],
                           links)
    slow = evaluate(problem, [("device", 0, 1), ("cloud", 1, 2)], "throughput")
    assert slow.bottleneck_s == pytest.approx(0.02)  # 4 kB at 1.6 Mbit/s
    # 0.01 + 0.05 + 0.02 + 0.01 s of latency at one query per 0.02 s: 5 in flight, and one to spare
    assert pipeline_window(slow) == math.ceil(slow.latency_s / slow.bottleneck_s) + 1 == 6
    fast = evaluate(replace(problem, links={("device", "cloud"): LinkProfile("device", "cloud", 1000.0, 0.0)},
                            latency_s={"device": [0.01, 0.001], "cloud": [0.01, 0.001]}),
                    [("device", 0, 1), ("cloud", 1, 2)], "throughput")
    assert fast.latency_s < 2 * fast.bottleneck_s and pipeline_window(fast) == 3  # one per stage and link at least


def test_a_latency_splits_exactly_into_compute_message_cpu_and_link_terms():
    model = wide_chain()
    graph = GraphCuts(model)
    stages = [StageSpec("device", 0, 1), StageSpec("edge", 1, 2), StageSpec("cloud", 2, graph.size)]
    links = [LinkProfile("device", "edge", 100.0, 20.0), LinkProfile("edge", "cloud", 100.0, 0.0)]
    with SplitExecutor(graph, stages, links, timeout_s=20, encodings=["fp16+zlib", "raw+none"]) as ex:
        calibration = ex.calibrate(feeds(3))
        result = ex.measure(feeds(1), warmup=0)  # one inference: its terms are that inference's
    terms = result.terms
    assert len(terms["compute_s"]) == 3 and len(terms["link_s"]) == 2
    total = sum(terms["compute_s"]) + sum(terms["receive_s"]) + sum(terms["send_s"]) + sum(terms["link_s"])
    assert total == pytest.approx(result.latencies_s[0], abs=2e-6)  # stamps on one clock: nothing unaccounted
    assert terms["link_s"][0] >= links[0].one_way_s  # the delay line is on the link, not in a stage
    assert terms["receive_s"][0] == 0.0 and terms["send_s"][-1] == 0.0  # the head receives none, the last sends none
    assert terms["receive_s"][1] > 0  # the edge decompressed fp16+zlib
    assert calibration.queries == 3 and set(calibration.message_s) == {"device", "edge", "cloud"}
    assert calibration.message_s["device"][0] == 0.0 and calibration.message_s["cloud"][1] == 0.0
    assert all(np.isfinite(calibration.link_overhead_s))
    priced = calibration.links()
    assert [(lk.src, lk.bandwidth_mbps, lk.segment_payload_bytes) for lk in priced] == [
        (lk.src, lk.bandwidth_mbps, 0) for lk in links]  # the user-space relay counts payload: no headers
    assert [lk.message_overhead_s for lk in priced] == calibration.link_overhead_s
    assert priced[0].transfer_s(1000) >= priced[0].one_way_s


def test_bad_encodings_and_networks_are_one_clear_line():
    graph = GraphCuts(wide_chain())
    stages = [StageSpec("device", 0, 2), StageSpec("cloud", 2, 4)]
    link = LinkProfile("device", "cloud", 10, 1)
    with pytest.raises(ConfigError, match="wire encoding 'int4\\+zlib' is not"):
        SplitExecutor(graph, stages, [link], encodings=["int4+zlib"])
    with pytest.raises(ConfigError, match="split network 'wifi' is not one of user, kernel"):
        SplitExecutor(graph, stages, [link], network="wifi")


def test_segments_load_through_the_backend_registry():
    graph = GraphCuts(wide_chain())
    seg = graph.segment(0, 2)
    with pytest.raises(ConfigError, match="unknown backend 'nonesuch'"):
        SegmentSession(seg, device=Device(name="x", kind="cpu", backend="nonesuch"))
    with pytest.raises(ConfigError, match="unknown onnxruntime option"):  # the device's options are the backend's
        SegmentSession(seg, device=Device(name="x", kind="cpu", backend="onnxruntime", options={"threads": 2}))
    session = SegmentSession(seg, threads=1)
    out = session.run(feeds(1)[0])
    assert set(out) == set(seg.outputs) and stage_device(2).options["intra_op_num_threads"] == 2
    session.close()


def test_a_slower_tier_is_paced_by_a_sleep_in_proportion_to_its_compute_and_a_bad_factor_is_one_line(monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr(execute.time, "sleep", slept.append)
    started = time.monotonic_ns() - 20_000_000  # a compute that took 20 ms (at least, by the time pace reads it)
    pace(started, 1.0)
    assert slept == []  # this host's speed: no sleep
    pace(started, 3.0)
    assert len(slept) == 1 and slept[0] >= 2 * 0.020  # the other 2x of a 3x slower tier, the CPU left free
    graph = GraphCuts(wide_chain())
    stages = [StageSpec("device", 0, 2), StageSpec("cloud", 2, 4)]
    with pytest.raises(ConfigError, match=r"^a tier's slowdown must be a finite factor >= 1 \(cloud: 0.5\)$"):
        SplitExecutor(graph, stages, [LinkProfile("device", "cloud", 10, 1)], slowdown={"cloud": 0.5})


@pytest.mark.parametrize("runs, verdict", [(5, INCONCLUSIVE), (20, MET)])
def test_the_prediction_error_is_judged_on_the_medians_interval_and_too_few_runs_are_inconclusive(runs, verdict):
    """Five runs cannot bound a median at 95% (median_ci is unbounded there): the error's interval runs to
    infinity and the claim is inconclusive, never met and never 'not checkable' (nan)."""
    measured = SplitMeasurement(stages=(), latencies_s=[0.100 + 0.001 * i for i in range(runs)], predicted_s=0.1)
    est = measured.prediction_error_estimate()
    assert est.low <= est.value == measured.prediction_error <= est.high
    assert (est.low, est.high) == (0.0, math.inf) if runs == 5 else 0.0 < est.low and est.high < 0.5
    spec = ClaimSpec("split", "max_prediction_error", 0.5)
    assert judge(spec, "cpu", "mobilenet_v2", est).verdict == verdict
