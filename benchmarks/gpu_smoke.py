"""GPU smoke run: MobileNetV2 on the torch backend (CUDA) and onnxruntime's CUDA EP, where present.

For a machine with an NVIDIA GPU: prints throughput and latency percentiles per backend and
batch, measured through the harness's own timing loop (``measure``: run() returns only after
torch.cuda.synchronize / the session's outputs reached the host). Backends that are not usable
are listed with the reason. Exit status 1 when no GPU backend could run.

    python benchmarks/gpu_smoke.py [--seconds 3] [--batches 1,8]
"""

from __future__ import annotations

import argparse
import sys

from pytest_edgeai.backends.base import get_backend, probe
from pytest_edgeai.devices import Device
from pytest_edgeai.errors import EdgeAIError
from pytest_edgeai.measure.inputs import make_feeds
from pytest_edgeai.measure.profiles import Profile
from pytest_edgeai.measure.scenarios import measure
from pytest_edgeai.models.model import resolve_model

DEVICES = [
    Device(name="torch_cuda", kind="gpu", backend="torch", options={"device": "cuda"}),
    Device(name="torch_cuda_fp16", kind="gpu", backend="torch", options={"device": "cuda", "fp16": True}),
    Device(name="ort_cuda", kind="gpu", backend="onnxruntime",
           options={"providers": ["CUDAExecutionProvider", "CPUExecutionProvider"]}),
    Device(name="tensorrt", kind="gpu", backend="tensorrt", options={"batch_max": 8}),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--batches", default="1,8")
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    profile = Profile("gpu-smoke", warmup_count=20, warmup_s=1.0, min_duration_s=args.seconds, min_count=50,
                      timeout_s=600)
    model = resolve_model("mobilenet_v2")
    ran = 0
    for device in DEVICES:
        availability = probe(device)
        if not availability.attached:
            print(f"{device.name:16s} skipped: {availability.reason}")
            continue
        try:
            session = get_backend(device.backend).load(model, device)
        except EdgeAIError as exc:
            print(f"{device.name:16s} cannot load: {exc}")
            continue
        print(f"{device.name:16s} {availability.runtime} {availability.runtime_version}; "
              f"settings: {session.settings()}")
        for batch in batches:
            feeds = make_feeds(session.inputs, batch)
            m = measure(session, feeds, "offline", batch, profile)
            s = m.summary
            extra = ""
            if hasattr(session, "timings"):
                t = session.timings(s.count)
                extra = (f"  per query p50: h2d {t['h2d_ms']['p50']:.3f} compute {t['compute_ms']['p50']:.3f} "
                         f"d2h {t['d2h_ms']['p50']:.3f} ms")
            print(f"{device.name:16s} batch {batch:3d}: {m.throughput_ips:9.1f} inferences/s  latency p50 "
                  f"{s.median_ms:.3f} p90 {s.p90_ms:.3f} p99 {s.p99_ms:.3f} ms over {s.count} queries{extra}",
                  flush=True)
        session.close()
        ran += 1
    return 0 if ran else 1


if __name__ == "__main__":
    sys.exit(main())
