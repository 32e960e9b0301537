"""MobileNetV2 on OpenVINO CPU: the harness's async throughput path against OpenVINO's benchmark_app.

Both use the THROUGHPUT hint, the same ONNX file, batch 1 and the same duration, in this run,
alternating (harness, benchmark_app, harness, benchmark_app) so drift on a shared machine hits
both. Prints each figure and the ratio harness / benchmark_app (target >= 0.95).

    python benchmarks/bench_openvino_vs_benchmark_app.py [--seconds 10] [--rounds 2]
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from pytest_edgeai.backends.openvino import OpenVINOBackend
from pytest_edgeai.devices import Device
from pytest_edgeai.measure.asynchronous import measure_async
from pytest_edgeai.measure.inputs import make_feeds
from pytest_edgeai.measure.profiles import Profile
from pytest_edgeai.models.model import resolve_model

THROUGHPUT = re.compile(r"Throughput:\s+([\d.]+)\s+FPS")


def harness(model, seconds: float) -> tuple[float, dict]:
    device = Device(name="openvino_cpu", kind="cpu", backend="openvino",
                    options={"device": "CPU", "performance_hint": "THROUGHPUT"})
    session = OpenVINOBackend().load(model, device)
    feeds = make_feeds(session.inputs, 1)
    profile = Profile("bench", warmup_count=10, warmup_s=1.0, min_duration_s=seconds, min_count=100, timeout_s=600)
    result = measure_async(session, feeds, 1, profile)
    settings = session.settings()
    session.close()
    return result.throughput_ips, settings


def benchmark_app(model, seconds: float) -> tuple[float, str]:
    exe = shutil.which("benchmark_app") or str(Path(sys.executable).with_name("benchmark_app"))
    cmd = [exe, "-m", str(model.path), "-d", "CPU", "-hint", "throughput", "-t", str(int(seconds)),
           "-shape", "input[1,3,224,224]"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds * 10 + 120)
    found = THROUGHPUT.search(done.stdout)
    if done.returncode != 0 or not found:
        raise SystemExit(f"benchmark_app failed (exit {done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    streams = re.search(r"NUM_STREAMS:\s*(\d+)", done.stdout)
    nireq = re.search(r"(\d+) inference requests", done.stdout)
    return float(found.group(1)), (f"streams {streams.group(1) if streams else '?'}, "
                                   f"nireq {nireq.group(1) if nireq else '?'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    model = resolve_model("mobilenet_v2")
    ours, theirs = [], []
    for r in range(args.rounds):
        fps, settings = harness(model, args.seconds)
        ours.append(fps)
        print(f"round {r + 1}: harness       {fps:8.1f} inferences/s  (streams {settings['num_streams']}, "
              f"nireq {settings['num_requests']}, precision {settings['inference_precision']}, "
              f"OpenVINO {settings['openvino_version']})", flush=True)
        fps, how = benchmark_app(model, args.seconds)
        theirs.append(fps)
        print(f"round {r + 1}: benchmark_app {fps:8.1f} FPS            ({how})", flush=True)
    a, b = statistics.mean(ours), statistics.mean(theirs)
    print(f"mean: harness {a:.1f}/s, benchmark_app {b:.1f}/s, ratio harness/benchmark_app = {a / b:.3f} "
          f"(target >= 0.95; {args.rounds} rounds of {args.seconds:g} s each)")


if __name__ == "__main__":
    main()
