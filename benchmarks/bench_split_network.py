"""Split execution over a kernel-shaped link: what the link delivers, and plans measured against predictions.

Needs root (or CAP_NET_ADMIN) and iproute2; traffic stays inside the namespaces it creates.
Prints, from this run only:
1. TCP goodput through tbf at several rates (independent transfers), against the rate (before) and the
   rate less the TCP/IP/Ethernet headers of each segment as read from the hop (after);
2. the delay a link adds (interleaved: rtt 0 against the profile's rtt, same rate);
3. one plan in each wire encoding: median latency, bytes per message, agreement with the unsplit model;
4. a throughput-objective plan run as a pipeline: measured against predicted throughput, the prediction
   without and with the per-message costs a calibration measured on the same stages and links;
5. where the best plan changes, and fixed against re-planned partitions measured in interleaved rounds
   where they differ (every candidate re-priced with its message costs and stage compute measured in
   three calibration runs under the condition):
   a. a sweep of the link's rate with the edge emulated 4x slower than this host (a sleep: no CPU used);
   b. a sweep of the edge's CPU load (bounded generators), after measuring what that load does to the
      cloud's vCPU on this host;
6. one latency plan's prediction error over the user-space link and the kernel-shaped one, without and
   with the calibration, and the measured terms (compute, message CPU, link) against the predicted ones.
The model of 3-5 is synthetic (seeded weights), built so that compute and bytes trade off
(a cheap first block, two 1024x1024 MatMuls, a narrowing MatMul): it is not a zoo workload.

Usage: python benchmarks/bench_split_network.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from pytest_edgeai.split import netns
from pytest_edgeai.split.conditions import Calibrate, compare, profile_under_load, sweep
from pytest_edgeai.split.constraints import KeepInputOnDevice, Pin
from pytest_edgeai.split.cuts import GraphCuts
from pytest_edgeai.split.execute import SplitExecutor, StageSpec, pipeline_window, stages_for
from pytest_edgeai.split.network import LinkProfile
from pytest_edgeai.split.planner import SplitProblem, evaluate, plan
from pytest_edgeai.split.profile import block_latencies

ROWS, WIDTH = 64, 1024
LOAD_WORKERS = 2  # busy loops sharing the edge's CPU with its stage (CFS then gives the stage about a third)
EDGE_SLOWDOWN = 4.0  # 5a's edge: an emulated machine 4x slower than this host (a sleep, so no vCPU is loaded)


def tradeoff_model() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    w = [(rng.standard_normal(s) / np.sqrt(s[0])).astype(np.float32) for s in ((WIDTH, WIDTH), (WIDTH, WIDTH),
                                                                           (WIDTH, 16))]
    nodes = [helper.make_node("Relu", ["x"], ["r0"], name="relu0"),
             helper.make_node("MatMul", ["r0", "w1"], ["m1"], name="mm1"),
             helper.make_node("Tanh", ["m1"], ["r1"], name="tanh1"),
             helper.make_node("MatMul", ["r1", "w2"], ["m2"], name="mm2"),
             helper.make_node("Tanh", ["m2"], ["r2"], name="tanh2"),
             helper.make_node("MatMul", ["r2", "w3"], ["m3"], name="mm3"),
             helper.make_node("Softmax", ["m3"], ["out"], name="softmax", axis=-1)]
    graph = helper.make_graph(nodes, "tradeoff",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, ROWS, WIDTH])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, ROWS, 16])],
                              initializer=[numpy_helper.from_array(a, f"w{i + 1}") for i, a in enumerate(w)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def feeds(n: int) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(1)
    return [{"x": rng.standard_normal((1, ROWS, WIDTH)).astype(np.float32)} for _ in range(n)]


def whole(model: onnx.ModelProto, fs):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return [{"out": sess.run(["out"], f)[0]} for f in fs]


def rates(quick: bool) -> None:
    print("1. TCP goodput through tbf, measured against the predicted goodput: before, the tbf rate itself (no "
          "headers modelled); after, the rate less each segment's headers as the hop reads them (netns.segment_sizes)")
    for mbps in (2.0, 10.0, 50.0, 200.0):
        nbytes = int(mbps * 1e6 / 8 * (0.3 if quick else 1.0))
        with netns.Lab([LinkProfile("a", "b", mbps, 0.0)]) as lab:
            runs = [netns.measure_goodput(lab, nbytes) for _ in range(3)]
            shaped, headers = lab.hops[0].link, lab.hops[0].shaping.headers
        before = [n / s / shaped.rate_bytes_per_s for s, n in runs]
        after = [n / s / shaped.goodput_bytes_per_s for s, n in runs]
        timed = [s / shaped.serialise_s(n) for s, n in runs]
        print(f"   {mbps:6g} Mbit/s, {nbytes} B x 3: measured / predicted goodput, before "
              + ", ".join(f"{r:.3f}" for r in before) + "; after " + ", ".join(f"{r:.3f}" for r in after)
              + "; measured / predicted seconds (wire bytes / rate) " + ", ".join(f"{r:.3f}" for r in timed))
    print(f"   headers: {headers}")


def tiny_model() -> onnx.ModelProto:
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"), helper.make_node("Neg", ["r"], ["out"], name="neg")]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 256])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 256])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def delay(quick: bool) -> None:
    print("2. added delay: 1 kB messages, median latency at rtt 100 ms minus at rtt 0, interleaved rounds")
    graph = GraphCuts(tiny_model())
    stages = [StageSpec("edge", 0, 1), StageSpec("cloud", 1, graph.size)]
    rng = np.random.default_rng(2)
    fs = [{"x": rng.standard_normal((1, 256)).astype(np.float32)} for _ in range(5 if quick else 20)]
    diffs, shaping = [], ""
    for _ in range(3):
        med = []
        for rtt in (0.0, 100.0):
            with SplitExecutor(graph, stages, [LinkProfile("edge", "cloud", 1000.0, rtt)], network="kernel") as ex:
                r = ex.measure(fs, warmup=1)
                med.append(r.median_s)
                shaping = r.shaping[0]["delay"]
        diffs.append(med[1] - med[0])
    print(f"   one-way 50 ms by {shaping}: added " + ", ".join(f"{d * 1e3:.1f} ms" for d in diffs))


def encodings(quick: bool) -> None:
    print("3. the plan's encoding on the wire (edge[0:1] -> cloud, 20 Mbit/s, rtt 10 ms)")
    model = tradeoff_model()
    graph = GraphCuts(model)
    stages = [StageSpec("edge", 0, 1), StageSpec("cloud", 1, graph.size)]
    fs = feeds(3 if quick else 10)
    ref = whole(model, fs)
    for key in ("raw+none", "raw+zstd", "fp16+zstd", "int8+lz4", "int8+zlib"):
        link = LinkProfile("edge", "cloud", 20.0, 10.0)
        with SplitExecutor(graph, stages, [link], network="kernel", encodings=[key]) as ex:
            r = ex.measure(fs, warmup=1, reference=ref)
        print(f"   {key:10} median {r.median_s * 1e3:7.1f} ms, "
              f"predicted {link.transfer_s(r.wire_bytes[0]) * 1e3:7.1f} ms "
              f"for the transfer alone, {r.wire_bytes[0]:9.0f} B/message, max |error| {r.max_abs_error:.2e}, "
              f"top-1 agreement {r.top1_agreement}")


def pipelined(quick: bool) -> None:
    print("4. throughput-objective plan as a pipeline (edge -> cloud, 50 Mbit/s, rtt 20 ms)")
    model = tradeoff_model()
    graph = GraphCuts(model)
    boundaries = list(range(graph.size + 1))
    fs = feeds(2)
    compute = block_latencies(graph, boundaries, fs[0], repeats=5)
    ref_feed = fs[0]
    sizes = [float(ref_feed["x"].nbytes)]
    sess = ort.InferenceSession(graph.with_outputs([graph.boundary(k)[0] for k in range(1, graph.size)])
                                .SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    values = dict(zip(names, sess.run(names, ref_feed)))
    sizes += [float(values[graph.boundary(k)[0]].nbytes) for k in range(1, graph.size)] + [float(values["out"].nbytes)]
    links = {("edge", "cloud"): LinkProfile("edge", "cloud", 50.0, 20.0)}
    problem = SplitProblem(("edge", "cloud"), {"edge": compute, "cloud": compute}, sizes, links)
    best = plan(problem, "throughput", [KeepInputOnDevice(), Pin(problem.blocks - 1, "cloud")])[0]
    stages, stage_links = stages_for(best, boundaries, links)
    n = 10 if quick else 40
    for _ in range(1 if quick else 3):
        for network in ("user", "kernel"):
            with SplitExecutor(graph, stages, stage_links, network=network, cpus={"edge": [0], "cloud": [1]}) as ex:
                priced = ex.calibrate(feeds(3), warmup=1).reprice(problem, best)
                r = ex.measure_pipelined(feeds(n), warmup=0, window=pipeline_window(priced))
            print(f"   {network:6} {best.describe()}, {r.extra['window']} in flight: "
                  f"measured {r.throughput_per_s:.1f}/s; predicted "
                  f"{best.throughput_per_s:.1f}/s uncalibrated "
                  f"(measured/predicted {r.throughput_per_s / best.throughput_per_s:.2f}), "
                  f"{priced.throughput_per_s:.1f}/s calibrated ({r.throughput_per_s / priced.throughput_per_s:.2f}); "
                  f"calibrated stage busy ms " + ", ".join(f"{s.busy_s * 1e3:.2f}" for s in priced.stages)
                  + f", link serialisation {priced.transfers[0].busy_s * 1e3:.2f} ms; "
                  f"measured in the pipeline: compute ms "
                  + ", ".join(f"{x * 1e3:.2f}" for x in r.terms["compute_s"]) + ", send ms "
                  + ", ".join(f"{x * 1e3:.2f}" for x in r.terms["send_s"]) + ", receive ms "
                  + ", ".join(f"{x * 1e3:.2f}" for x in r.terms["receive_s"]))


def sibling_load(quick: bool) -> None:
    """What a load on the edge's vCPU does to a block on the cloud's (one host plays both tiers)."""
    graph = GraphCuts(tradeoff_model())
    fs = feeds(1)
    cloud, edge = min(os.sched_getaffinity(0)), max(os.sched_getaffinity(0))
    for _ in range(1 if quick else 3):
        row = [profile_under_load(graph, list(range(graph.size + 1)), fs[0], [cloud], load, 15, LOAD_WORKERS,
                                  [edge]) for load in (0.0, 0.9)]
        print(f"   the MatMul blocks on vCPU {cloud}, ms: {row[0][1] * 1e3:.1f}, {row[0][3] * 1e3:.1f} with vCPU "
              f"{edge} idle; {row[1][1] * 1e3:.1f}, {row[1][3] * 1e3:.1f} with {LOAD_WORKERS} generators at 90% on "
              f"vCPU {edge}")


def conditions(quick: bool) -> None:
    print("5. plans under changing conditions on the kernel-shaped edge -> cloud link (rtt 2 ms): where the best plan "
          "changes, and whether re-planning pays; every candidate re-priced with its message costs and its stages' "
          "compute measured under the condition (3 calibration runs per plan), fixed against re-planned in "
          "interleaved rounds")
    model = tradeoff_model()
    graph = GraphCuts(model)
    boundaries = list(range(graph.size + 1))
    fs = feeds(6 if quick else 10)
    sess = ort.InferenceSession(graph.with_outputs([graph.boundary(k)[0] for k in range(1, graph.size)])
                                .SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    values = dict(zip(names, sess.run(names, fs[0])))
    sizes = [float(fs[0]["x"].nbytes)] + [float(values[graph.boundary(k)[0]].nbytes) for k in range(1, graph.size)] \
        + [float(values["out"].nbytes)]
    cpus = {"edge": [max(os.sched_getaffinity(0))], "cloud": [min(os.sched_getaffinity(0))]}
    links = {("edge", "cloud"): LinkProfile("edge", "cloud", 10.0, 2.0)}
    constraints = [KeepInputOnDevice(), Pin(graph.size - 1, "cloud")]
    calibrate = Calibrate(fs[:3], top=3, workers=LOAD_WORKERS, compute_as_run=True)
    print(f"   5a. the link's rate, the edge emulated {EDGE_SLOWDOWN:g}x slower than this host (its stage sleeps "
          f"{EDGE_SLOWDOWN - 1:g}x each compute; its profile scaled alike), no load")
    planned, changes = sweep(graph, boundaries, fs[0], ["edge", "cloud"], links, ("edge", "cloud"), "edge", cpus,
                             (10.0, 100.0, 1000.0), (0.0,), sizes, constraints, repeats=15, workers=LOAD_WORKERS,
                             calibrate=calibrate, slowdown={"edge": EDGE_SLOWDOWN})
    judge(graph, boundaries, links, cpus, fs, planned, changes, quick, {"edge": EDGE_SLOWDOWN})
    print(f"   5b. the edge's CPU load ({LOAD_WORKERS} generators at the duty shown on the edge's vCPU), both tiers at "
          "this host's speed, at 1000 Mbit/s")
    sibling_load(quick)
    planned, changes = sweep(graph, boundaries, fs[0], ["edge", "cloud"], links, ("edge", "cloud"), "edge", cpus,
                             (1000.0,), (0.0, 0.9), sizes, constraints, repeats=15, workers=LOAD_WORKERS,
                             calibrate=calibrate)
    judge(graph, boundaries, links, cpus, fs, planned, changes, quick, {})


def judge(graph, boundaries, links, cpus, fs, planned, changes, quick: bool, slowdown) -> None:
    """Print a sweep's plans and changes; measure fixed against re-planned where they differ (or, if the best
    plan never changes, against its best alternative at the last condition, to check the ranking)."""
    for p in planned:
        print(f"   {p.condition.describe():24} best {p.plan.describe()}; uncalibrated best "
              f"{p.uncalibrated.describe()}; blocks ms, edge: " + ", ".join(f"{s * 1e3:.1f}" for s in p.loaded_block_s)
              + "; cloud: " + ", ".join(f"{s * 1e3:.1f}" for s in p.problem.latency_s["cloud"]))
        for route, priced in p.priced.items():
            cal = p.calibrations[route]
            profiled = cal.reprice(p.problem, priced).latency_s
            print(f"      {route:28} calibrated {priced.latency_s * 1e3:6.1f} ms ({profiled * 1e3:6.1f} with the "
                  "profiled compute): stage compute ms profiled "
                  + "/".join(f"{s.compute_s * 1e3:.1f}" for s in cal.reprice(p.problem, priced).stages)
                  + ", run in the calibration "
                  + "/".join(f"{x * 1e3:.1f}" for x in cal.compute_s) + "; message CPU ms "
                  + "/".join(f"{s.message_s * 1e3:.2f}" for s in priced.stages) + "; link overhead ms "
                  + "/".join(f"{x * 1e3:.2f}" for x in cal.link_overhead_s))
    for c in changes:
        print(f"   changes: {c.before.describe()} -> {c.after.describe()}: {c.plan_before}  =>  {c.plan_after}")
    fixed = planned[0].plan
    pairs = [(p, p.plan, "re-planned") for p in planned[1:] if p.plan.cuts != fixed.cuts]
    if not pairs:
        last = planned[-1]
        alternative = min((q for q in last.priced.values() if q.cuts != fixed.cuts), key=lambda q: q.latency_s)
        print(f"   no re-plan: at {last.condition.describe()} the fixed plan against its best alternative, "
              "to check the ranking")
        pairs = [(last, alternative, "alternative")]
    for p, other, label in pairs:
        result = compare(graph, boundaries, p.cost_of(fixed), other, links, p.condition, ("edge", "cloud"), "edge",
                         cpus, fs, rounds=3 if quick else 6, workers=LOAD_WORKERS, slowdown=slowdown)
        lo, hi = result.ratio_ci95
        print(f"   at {p.condition.describe()}: fixed {result.fixed} median "
              f"{statistics.median(result.fixed_median_s) * 1e3:.1f} ms "
              f"(predicted {result.fixed_predicted_s * 1e3:.1f}, calibrated), "
              f"{label} {result.replanned} {statistics.median(result.replanned_median_s) * 1e3:.1f} ms "
              f"(predicted {result.replanned_predicted_s * 1e3:.1f}); fixed/{label} per round "
              + ", ".join(f"{r:.2f}" for r in result.ratios) + f"; 95% CI [{lo:.2f}, {hi:.2f}]: {result.verdict}")


def prediction(quick: bool) -> None:
    print("6. one latency plan's prediction error over the user-space link and the kernel-shaped one, "
          "interleaved rounds (Scission's device-edge 1.6 Mbit/s 66.7 ms, edge-cloud 50 Mbit/s 20 ms)")
    model = tradeoff_model()
    graph = GraphCuts(model)
    boundaries = list(range(graph.size + 1))
    fs = feeds(4 if quick else 8)
    compute = block_latencies(graph, boundaries, fs[0], repeats=9)
    links = {("device", "edge"): LinkProfile("device", "edge", 1.6, 66.7),
             ("edge", "cloud"): LinkProfile("edge", "cloud", 50.0, 20.0)}
    sizes = [float(ROWS * WIDTH * 4)] * (graph.size - 1) + [4.0 * ROWS * 16] * 2  # mm3 narrows to 16 columns
    problem = SplitProblem(("device", "edge", "cloud"), {t: compute for t in ("device", "edge", "cloud")}, sizes, links)
    chosen = evaluate(problem, [("device", 0, graph.size - 1), ("edge", graph.size - 1, graph.size - 1),
                                ("cloud", graph.size - 1, graph.size)])
    stages, stage_links = stages_for(chosen, boundaries, links)
    errors: dict[str, list[tuple[float, float]]] = {"user": [], "kernel": []}
    for _ in range(2 if quick else 4):
        for network, values in errors.items():
            with SplitExecutor(graph, stages, stage_links, network=network) as ex:
                priced = ex.calibrate(fs[:3], warmup=1).reprice(problem, chosen)
                r = ex.measure(fs, warmup=0)
            values.append((abs(r.median_s - chosen.latency_s) / r.median_s,
                           abs(r.median_s - priced.latency_s) / r.median_s))
            terms = ", ".join(f"{k} " + "/".join(f"{x * 1e3:.2f}" for x in r.terms[k]) for k in r.terms)
            print(f"   {network:6} measured {r.median_s * 1e3:.1f} ms, predicted {chosen.latency_s * 1e3:.1f} ms "
                  f"uncalibrated, {priced.latency_s * 1e3:.1f} calibrated; measured terms (ms): {terms}; predicted "
                  f"link ms uncalibrated " + "/".join(f"{t.seconds * 1e3:.2f}" for t in chosen.transfers)
                  + ", calibrated " + "/".join(f"{t.seconds * 1e3:.2f}" for t in priced.transfers)
                  + "; predicted compute ms " + "/".join(f"{s.compute_s * 1e3:.2f}" for s in chosen.stages))
    for network, values in errors.items():
        print(f"   {network:6} prediction error per round, uncalibrated -> calibrated: "
              + ", ".join(f"{a:.3f} -> {b:.3f}" for a, b in values))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", type=int, nargs="*", default=[1, 2, 3, 4, 5, 6])
    args = ap.parse_args()
    why = netns.unavailable()
    if why:
        raise SystemExit(f"bench_split_network: {why}")
    with netns.Lab([LinkProfile("a", "b", 10, 0)]) as lab:
        print(f"kernel netem here: {'yes' if lab.netem else 'no (delay by a user-space relay, loss only modelled)'}")
    for k, fn in enumerate((rates, delay, encodings, pipelined, conditions, prediction), start=1):
        if k in args.only:
            fn(args.quick)


if __name__ == "__main__":
    main()
