"""The compression suite driven through pytester: a cascade threshold outside [0, 1] is one clear
message, and the measurements and the threshold sweep are on disk before it is raised."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("skl2onnx")

SUITE = Path(__file__).resolve().parents[1] / "suites" / "test_compression.py"
DEVICES = """
[devices.cpu]
kind = "cpu"
backend = "onnxruntime"

[devices.cpu.claims.compression]
min_cascade_latency_reduction = { digits_uniform = { threshold = 2.0, at_threshold = 1.5, device_independent = true } }

[links.device_cloud]
from = "device"
to = "cloud"
bandwidth_mbps = 1.6
rtt_ms = 100.0
"""


def test_a_threshold_outside_the_unit_interval_fails_clearly_after_recording(pytester: pytest.Pytester,
                                                                              shared_cache):
    pytester.makefile(".toml", devices=DEVICES)
    pytester.makepyfile(test_compression=SUITE.read_text())
    result = pytester.runpytest_subprocess(
        "--edgeai-profile", "quick", "-p", "no:cacheprovider",
        f"--edgeai-cache-dir={shared_cache}", "-k", "test_cascade and uniform")  # '=': a bare path moves the rootdir
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*CascadeError: cascade threshold 1.5 is not a confidence in [[]0, 1[]]*"])
    assert "Traceback" not in result.stdout.str()
    run = (pytester.path / "reports" / "latest").resolve()
    records = [json.loads(p.read_text()) for p in (run / "records").glob("*.json")]
    by_scenario = {r["scenario"]["name"]: r for r in records}
    assert by_scenario["single_stream"]["status"] == "ok"
    cascade = by_scenario["cascade"]
    assert cascade["scenario"]["threshold"] == 0.9  # the default headline: the claim's is invalid
    assert len(cascade["extra"]["sweep"]) >= 10 and cascade["metrics"]["latency_reduction"]["value"] > 1
    assert cascade["extra"]["large_compute_stand_in"] is True
