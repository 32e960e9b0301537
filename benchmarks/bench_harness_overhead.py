"""Harness overhead: edgeai's offline throughput vs a bare ``session.run`` loop, same session.

Run: python benchmarks/bench_harness_overhead.py [--seconds 5] [--rounds 3]
Prints both throughputs per round, in ABBA order (bare, harness, harness, bare, ...) so drift on a
shared machine hits both alike, each round's ratio, and the median of the round ratios (robust to
a round that a neighbour's load disturbed). Target: harness within 3% of bare.
"""

from __future__ import annotations

import argparse
import statistics
import time

from pytest_edgeai.backends.onnxruntime import OnnxRuntimeBackend
from pytest_edgeai.devices import builtin_cpu
from pytest_edgeai.measure.inputs import make_feeds
from pytest_edgeai.measure.profiles import Profile
from pytest_edgeai.measure.scenarios import measure
from pytest_edgeai.models.model import resolve_model


def bare_loop(ort_session, feeds, seconds: float) -> float:
    """What a person would write by hand: run back to back for a while, count, divide."""
    run = ort_session.run
    n = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        run(None, feeds)
        n += 1
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mobilenet_v2")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args()

    model = resolve_model(args.model)
    session = OnnxRuntimeBackend().load(model, builtin_cpu())
    feeds = make_feeds(session.inputs, 1)
    profile = Profile("bench", warmup_count=10, warmup_s=1.0, min_duration_s=args.seconds, min_count=10,
                      timeout_s=600)
    bare_loop(session._session, feeds, 1.0)  # warm both paths alike
    bare, harness, ratios = [], [], []
    for i in range(args.rounds):
        pair = {}
        for which in (("bare", "harness") if i % 2 == 0 else ("harness", "bare")):
            pair[which] = (bare_loop(session._session, feeds, args.seconds) if which == "bare"
                           else measure(session, feeds, "offline", 1, profile).throughput_ips)
        bare.append(pair["bare"])
        harness.append(pair["harness"])
        ratios.append(pair["harness"] / pair["bare"])
        print(f"round {i + 1}: bare {bare[-1]:.2f} inferences/s, harness {harness[-1]:.2f} inferences/s, "
              f"ratio {ratios[-1]:.4f}")
    b, h = statistics.median(bare), statistics.median(harness)
    print(f"{args.model} batch 1, onnxruntime CPU, {session.settings()['intra_op_num_threads']} intra-op threads "
          f"(0 = default)")
    print(f"median bare loop:  {b:.2f} inferences/s")
    print(f"median harness:    {h:.2f} inferences/s")
    print(f"harness / bare:    {h / b:.4f}  (ratio of the medians)")
    print(f"median round ratio: {statistics.median(ratios):.4f}  (target >= 0.97)")


if __name__ == "__main__":
    main()
