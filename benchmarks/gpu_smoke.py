"""GPU smoke run: MobileNetV2 through torch (CUDA), onnxruntime's CUDA provider and TensorRT, one prepared
script that a machine with an NVIDIA GPU finishes in under 5 minutes, printing figures measured in this run.

For each backend that is usable here (the others are listed with the probe's reason):
- offline throughput and latency percentiles per batch, through the harness's own timing loop (``measure``:
  run() returns only once the outputs are on the host); for TensorRT also the per-query H2D / compute /
  D2H medians from CUDA events;
- ``streams = N`` against one stream at batch 1: offline throughput with N requests in flight
  (``measure_async``) over the synchronous loop, measured in interleaved rounds (1, N, 1, N, ...), each
  round's ratio printed, and their median and range (rounds, not a confidence interval);
- TensorRT, where trtexec is installed: the harness's median GPU compute per query against trtexec's
  (--exportTimes) on the same engine file.

    python benchmarks/gpu_smoke.py [--seconds 2] [--warmup 0.5] [--batches 1,8] [--streams 4] [--rounds 3] [--model M]
                                   [--devices torch_cuda,ort_cuda,...] [--json FILE]

Exit status 1 when no GPU backend could run.

A lab machine installs the extras first: ``pip install -e '.[torch,tensorrt,ort-gpu]'`` and then replaces
onnxruntime with onnxruntime-gpu as docs/nightly.md says (``.ci/nightly_install.py gpu`` does all of it).
This workplace's device machine has no registry: its python3 holds a CUDA torch, cuda-bindings and the CPU
onnxruntime (so the ORT-CUDA and TensorRT rows say why they skip). Carry onnx2torch as a wheel in the
ignored folder .whl (``pip download --no-deps -d .whl onnx2torch`` here; ``carry: [".whl"]``) and run there:
``pip install --no-deps --no-index -t /tmp/site .whl/*.whl && PYTHONPATH=$PWD:/tmp/site timeout 290 python3
benchmarks/gpu_smoke.py --json $OUT/gpu_smoke.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from pytest_edgeai.backends.asynchronous import AsyncSession
from pytest_edgeai.backends.base import Session, get_backend, probe
from pytest_edgeai.backends.tensorrt import find_trtexec, trtexec_compute_ms
from pytest_edgeai.devices import Device
from pytest_edgeai.errors import EdgeAIError
from pytest_edgeai.measure.asynchronous import measure_async
from pytest_edgeai.measure.inputs import make_feeds
from pytest_edgeai.measure.profiles import Profile
from pytest_edgeai.measure.scenarios import Measurement, measure
from pytest_edgeai.models.model import resolve_model

DEVICES = [
    Device(name="torch_cuda", kind="gpu", backend="torch", options={"device": "cuda"}),
    Device(name="torch_cuda_fp16", kind="gpu", backend="torch", options={"device": "cuda", "fp16": True}),
    Device(name="ort_cuda", kind="gpu", backend="onnxruntime",
           options={"providers": ["CUDAExecutionProvider", "CPUExecutionProvider"]}),
    Device(name="tensorrt", kind="gpu", backend="tensorrt", options={}),
]
STREAMS = ("torch_cuda", "ort_cuda", "tensorrt")  # the backends with a streams option


def row(device: str, batch: int, m: Measurement, **extra: Any) -> dict[str, Any]:
    s = m.summary
    figures = {"device": device, "batch": batch, "in_flight": m.in_flight or 1,
               "throughput_ips": round(m.throughput_ips, 1), "p50_ms": round(s.median_ms, 4),
               "p90_ms": round(s.p90_ms, 4), "p99_ms": round(s.p99_ms, 4), "queries": s.count, **extra}
    split = " ".join(f"{k} {v:.3f}" for k, v in extra.get("gpu_p50_ms", {}).items())
    print(f"{device:16s} batch {batch:3d} in flight {figures['in_flight']}: {figures['throughput_ips']:9.1f} "
          f"inferences/s, latency p50 {s.median_ms:.3f} p90 {s.p90_ms:.3f} p99 {s.p99_ms:.3f} ms over {s.count} "
          f"queries" + (f"; per query p50 ms: {split}" if split else ""), flush=True)
    return figures


def gpu_split(session: Session, count: int) -> dict[str, Any]:
    """TensorRT's per-query H2D / compute / D2H medians (CUDA events) over the last ``count`` queries."""
    timings = getattr(session, "timings", None)
    if timings is None:
        return {}
    t = timings(count)
    return {"gpu_p50_ms": {k: round(t[k]["p50"], 4) for k in ("h2d_ms", "compute_ms", "d2h_ms") if k in t}}


def streams_rounds(name: str, one: Session, many: AsyncSession, profile: Profile, streams: int,
                   rounds: int) -> dict[str, Any]:
    """Offline throughput with ``streams`` in flight over one, at batch 1, in interleaved rounds."""
    feeds = make_feeds(one.inputs, 1)
    ratios = []
    for r in range(rounds):
        single = measure(one, feeds, "offline", 1, profile)
        multi = measure_async(many, feeds, 1, profile)
        ratios.append(multi.throughput_ips / single.throughput_ips)
        print(f"{name:16s} round {r + 1}: 1 stream {single.throughput_ips:9.1f}/s, {streams} streams "
              f"{multi.throughput_ips:9.1f}/s (in flight {multi.in_flight}), ratio {ratios[-1]:.2f}", flush=True)
    print(f"{name:16s} {streams} streams / 1 stream, batch 1: median {statistics.median(ratios):.2f} over "
          f"{rounds} interleaved rounds (range {min(ratios):.2f}-{max(ratios):.2f})", flush=True)
    return {"device": name, "streams": streams, "ratios": [round(x, 3) for x in ratios],
            "median_ratio": round(statistics.median(ratios), 3)}


def against_trtexec(session: Session, profile: Profile) -> dict[str, Any] | None:
    """The harness's median GPU compute per query at batch 1 against trtexec's on the same engine."""
    trtexec = find_trtexec()
    if trtexec is None:
        print("tensorrt         trtexec not installed: no harness-vs-trtexec figure", flush=True)
        return None
    feeds = make_feeds(session.inputs, 1)
    m = measure(session, feeds, "offline", 1, profile)
    ours = gpu_split(session, m.summary.count)["gpu_p50_ms"]["compute_ms"]
    engine = session.settings()["engines"]["batch 1"]
    with tempfile.TemporaryDirectory() as work:
        theirs = trtexec_compute_ms(trtexec, engine, {n: a.shape for n, a in feeds.items()}, Path(work),
                                    seconds=profile.min_duration_s)
    print(f"tensorrt         GPU compute per query, batch 1: harness {ours:.3f} ms, trtexec {theirs:.3f} ms, "
          f"ratio {ours / theirs:.2f}", flush=True)
    return {"harness_compute_p50_ms": round(ours, 4), "trtexec_compute_p50_ms": round(theirs, 4),
            "ratio": round(ours / theirs, 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="timed window per measurement")
    parser.add_argument("--warmup", type=float, default=0.5, help="warm-up seconds before each window")
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", default="mobilenet_v2", help="a zoo name or a model file")
    parser.add_argument("--devices", default=",".join(d.name for d in DEVICES), help="which of them to run")
    parser.add_argument("--json", type=Path, help="write every figure here too")
    args = parser.parse_args(argv)
    batches = [int(b) for b in args.batches.split(",")]
    profile = Profile("gpu-smoke", warmup_count=10, warmup_s=args.warmup, min_duration_s=args.seconds, min_count=20,
                      timeout_s=300)
    model = resolve_model(args.model)
    out: dict[str, Any] = {"model": model.name, "profile_s": args.seconds, "skipped": {}, "runs": [],
                           "streams": [], "trtexec": None}
    for device in [d for d in DEVICES if d.name in args.devices.split(",")]:
        availability = probe(device)
        if not availability.attached:
            print(f"{device.name:16s} skipped: {availability.reason}", flush=True)
            out["skipped"][device.name] = availability.reason
            continue
        sessions: list[Session] = []
        try:
            session = get_backend(device.backend).load(model, device)
            sessions.append(session)
            print(f"{device.name:16s} {availability.runtime} {availability.runtime_version}; settings: "
                  f"{session.settings()}", flush=True)
            for batch in batches:
                m = measure(session, make_feeds(session.inputs, batch), "offline", batch, profile)
                out["runs"].append(row(device.name, batch, m, **gpu_split(session, m.summary.count)))
            if device.name in STREAMS:
                many = get_backend(device.backend).load(
                    model, replace(device, options={**device.options, "streams": args.streams}))
                sessions.append(many)
                if not isinstance(many, AsyncSession):
                    raise EdgeAIError(f"{device.backend} has no asynchronous run for streams = {args.streams}")
                out["streams"].append(streams_rounds(device.name, session, many, profile, args.streams,
                                                     args.rounds))
            if device.backend == "tensorrt":
                out["trtexec"] = against_trtexec(session, profile)
        except EdgeAIError as exc:
            print(f"{device.name:16s} failed: {exc}", flush=True)
            out["skipped"][device.name] = f"failed: {exc}"
        finally:
            for s in sessions:
                s.close()
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0 if out["runs"] else 1


if __name__ == "__main__":
    sys.exit(main())
