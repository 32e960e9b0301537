"""Planner speed: seconds to find the best (and top-5) plans for growing problems.

Target: 500 cuts x 5 tiers in under 1 s. Prints one line per size; figures come from this run.
Usage: python benchmarks/bench_planner.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np

from pytest_edgeai.split.constraints import KeepInputOnDevice
from pytest_edgeai.split.network import LinkProfile
from pytest_edgeai.split.planner import SplitProblem, plan

TIER_NAMES = ("device", "gateway", "edge", "regional", "cloud")


def problem(cuts: int, tiers: int, seed: int = 0) -> SplitProblem:
    rng = np.random.default_rng(seed)
    names = TIER_NAMES[:tiers]
    blocks = cuts + 1
    lat = {t: list(rng.uniform(1e-4, 1e-2, blocks) / (n + 1)) for n, t in enumerate(names)}
    links = {(a, b): LinkProfile(a, b, float(rng.uniform(1, 100)), float(rng.uniform(1, 100)))
             for a, b in itertools.combinations(names, 2)}
    return SplitProblem(names, lat, list(rng.uniform(1e3, 1e6, blocks + 1)), links)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print(f"{'cuts':>6} {'tiers':>5} {'objective':>10} {'top':>3} {'best s':>9}")
    for cuts, tiers in itertools.product((50, 100, 200, 500, 1000), (3, 5)):
        p = problem(cuts, tiers)
        for objective, top in (("latency", 1), ("latency", 5), ("throughput", 1)):
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                plan(p, objective, [KeepInputOnDevice()], top=top)
                times.append(time.perf_counter() - t0)
            print(f"{cuts:>6} {tiers:>5} {objective:>10} {top:>3} {min(times):>9.4f}")


if __name__ == "__main__":
    main()
