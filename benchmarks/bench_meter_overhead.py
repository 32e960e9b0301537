"""What does a 10 Hz sampling meter cost the workload it measures?

Runs onnxruntime on the CPU (the zoo's MobileNetV2 by default) for N seconds without a meter
and with one, alternating in the same process so drift and other load hit both alike, then
prints each round's throughput, the medians and their ratio. Target: sampling costs < 1%.
On a busy machine the throughput ratio is dominated by other load, so it also prints the
meter's own CPU time per wall second, measured before onnxruntime is loaded (its spinning
worker threads would count too), less the same window with no meter.

    python benchmarks/bench_meter_overhead.py --seconds 5 --rounds 3 --meters estimate,rapl
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from pytest_edgeai.devices import Device
from pytest_edgeai.energy import make_meter
from pytest_edgeai.models.zoo import cached_path


def fake_rapl(root: Path) -> None:
    """A powercap tree with two package zones, as the RAPL meter reads it."""
    for zone in ("intel-rapl:0", "intel-rapl:1"):
        d = root / "sys/class/powercap" / zone
        d.mkdir(parents=True)
        (d / "name").write_text(f"package-{zone[-1]}\n")
        (d / "energy_uj").write_text("123456789\n")
        (d / "max_energy_range_uj").write_text("262143328850\n")


def throughput(session: ort.InferenceSession, feeds: dict[str, np.ndarray], seconds: float) -> float:
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        session.run(None, feeds)
        count += 1
    return count / (time.perf_counter() - start)


def cpu_share(meter, seconds: float) -> float:
    """CPU seconds the process spends per wall second while it sleeps (under the meter, if one)."""
    cpu0, wall0 = time.process_time(), time.perf_counter()
    if meter is not None:
        meter.start()
    try:
        time.sleep(seconds)
    finally:
        if meter is not None:
            meter.stop()
    return (time.process_time() - cpu0) / (time.perf_counter() - wall0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="mobilenet_v2")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rate-hz", type=float, default=None, help="default: each meter's own (10 Hz; NVML 2 Hz)")
    ap.add_argument("--meters", default="estimate,rapl",
                    help="comma list of estimate (real /proc/stat), rapl (a fake powercap tree), "
                         "nvml (a real GPU, where there is one)")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="edgeai-bench-"))
    fake_rapl(tmp)
    kinds = tuple(k for k in args.meters.split(",") if k)
    meters = {k: make_meter(Device(name="bench", kind="cpu", backend="onnxruntime", tdp_w=15.0,
                                   meter={"source": k, **({"rate_hz": args.rate_hz} if args.rate_hz else {}),
                                          **({"root": str(tmp)} if k == "rapl" else {})}))
              for k in kinds}
    idle = cpu_share(None, args.seconds)
    cpu = {k: cpu_share(m, args.seconds) - idle for k, m in meters.items()}

    session = ort.InferenceSession(str(cached_path(args.model)), providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in inp.shape]
    feeds = {inp.name: np.random.default_rng(0).standard_normal(shape).astype(np.float32)}
    throughput(session, feeds, 1.0)  # warm-up

    results: dict[str, list[float]] = {"none": [], **{k: [] for k in kinds}}
    samples: dict[str, list[int]] = {k: [] for k in kinds}
    rates = ", ".join(f"{k} {m.rate_hz:g} Hz" for k, m in meters.items())
    print(f"{args.model} on onnxruntime CPU, {args.seconds:g} s per measurement, {args.rounds} rounds; meters: {rates}")
    order = ["none", *kinds]
    for rnd in range(args.rounds):
        for name in order[rnd % len(order):] + order[:rnd % len(order)]:  # rotate: no name always first
            if name == "none":
                ips = throughput(session, feeds, args.seconds)
            else:
                meter = meters[name]
                meter.start()
                try:
                    ips = throughput(session, feeds, args.seconds)
                finally:
                    reading = meter.stop()
                samples[name].append(len(reading.samples))
            results[name].append(ips)
            print(f"  round {rnd + 1} {name:9s} {ips:8.2f} inferences/s")
    for m in meters.values():
        m.close()
    base = statistics.median(results["none"])
    print(f"median without meter: {base:.2f} inferences/s")
    for k in kinds:
        med = statistics.median(results[k])
        print(f"median with {k} meter: {med:.2f} inferences/s (ratio {med / base:.4f}, "
              f"cost {100 * (1 - med / base):+.2f}%; {statistics.median(samples[k]):.0f} samples a window)")
        print(f"{k} meter alone: {100 * cpu[k]:.3f}% of one CPU while sampling (idle process: {100 * idle:.3f}%)")


if __name__ == "__main__":
    main()
