"""benchmarks/gpu_smoke.py end to end against the documented fakes (tests/vendor_fakes.py): a session lent a GPU
for a few minutes must not find out there that the script breaks. The figures the fakes give mean nothing; what
is checked is that every path runs, prints its figures, and writes them to the JSON."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import onnxruntime
import pytest
from vendor_fakes import FakeCudaSessions, fake_trtexec, install_tensorrt

from pytest_edgeai.backends import ort_gpu

SCRIPT = Path(__file__).parent.parent / "benchmarks" / "gpu_smoke.py"


@pytest.fixture
def gpu_smoke():
    spec = importlib.util.spec_from_file_location("gpu_smoke", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_gpu_path_runs_and_writes_its_figures(gpu_smoke, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("EDGEAI_CACHE_DIR", str(tmp_path / "cache" / "models"))
    trt, rt = install_tensorrt(monkeypatch, "10.3.0")
    ort_gpu.preload.cache_clear()
    monkeypatch.setattr(onnxruntime, "cuda_version", "12.8", raising=False)
    monkeypatch.setattr(onnxruntime, "InferenceSession", FakeCudaSessions(onnxruntime.InferenceSession).session_class())
    monkeypatch.setattr(onnxruntime, "get_available_providers",
                        lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    fake_trtexec(tmp_path / "bin", compute_ms=[1.0, 2.0, 3.0])
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    out = tmp_path / "gpu_smoke.json"
    rc = gpu_smoke.main(["--model", "cnn_trad_fpool3", "--seconds", "0.01", "--warmup", "0", "--batches", "1,2",
                         "--streams", "2", "--rounds", "2", "--devices", "ort_cuda,tensorrt", "--json", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    figures = json.loads(out.read_text())
    assert {(r["device"], r["batch"]) for r in figures["runs"]} == {("ort_cuda", 1), ("ort_cuda", 2), ("tensorrt", 1),
                                                                   ("tensorrt", 2)}
    assert all(r["throughput_ips"] > 0 and r["queries"] >= 20 for r in figures["runs"])
    assert set(next(r for r in figures["runs"] if r["device"] == "tensorrt")["gpu_p50_ms"]) == {"h2d_ms", "compute_ms",
                                                                                             "d2h_ms"}
    assert [(s["device"], len(s["ratios"])) for s in figures["streams"]] == [("ort_cuda", 2), ("tensorrt", 2)]
    assert figures["trtexec"]["trtexec_compute_p50_ms"] == 2.0
    assert figures["skipped"] == {}
    assert "2 streams / 1 stream, batch 1: median" in printed and "harness" in printed and "trtexec" in printed
    assert rt.live == set()  # every session closed, every stream destroyed
