"""The energy suite through pytester: measured, estimated-free claims against a deterministic
command meter, a ratio against a device measured earlier in the run, and devices whose meter is
missing or broken still recording their throughput and skipping the energy part with the reason."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

SUITE = Path(__file__).resolve().parents[1] / "suites" / "test_energy.py"
DEVICES = """
[devices.bare]
kind = "cpu"
backend = "onnxruntime"

[devices.broken]
kind = "cpu"
backend = "onnxruntime"
meter = { source = "command", command = "sh -c 'exit 7'" }

[devices.cloud]
kind = "cpu"
backend = "onnxruntime"
price_usd = 3000
meter = { source = "command", command = "echo 100", rate_hz = 2, covers = "test stand-in" }

[devices.edge]
kind = "cpu"
backend = "onnxruntime"
price_usd = 100
meter = { source = "command", command = "echo 2", rate_hz = 2, covers = "test stand-in" }

[devices.edge.claims.energy]
min_inferences_per_s_per_w = 0.001
max_joules_per_inference = 1000.0
min_ips_per_usd_ratio = { threshold = 3, against = "cloud" }
"""


def test_energy_suite_records_throughput_always_and_energy_where_metered(pytester: pytest.Pytester, tiny_model):
    pytester.makefile(".toml", devices=DEVICES)
    pytester.makepyfile(test_energy=SUITE.read_text())
    result = pytester.runpytest_subprocess(
        "--edgeai-profile", "quick", "-p", "no:cacheprovider", "--device", "all",
        f"--edgeai-model={tiny_model}", "-k", "tiny", "-rs")  # '=': a bare path would move the rootdir
    result.assert_outcomes(passed=2, skipped=2)
    out = result.stdout.str()
    assert "energy not measured on bare: device 'bare' has no power meter configured" in out
    assert "energy not measured: the meter failed to start" in out and "exited with status 7" in out
    run = (pytester.path / "reports" / "latest").resolve()
    records = [json.loads(p.read_text()) for p in (run / "records").glob("*.json")]
    rounds = {name: [r for r in records if r["device"]["name"] == name and "round" in r["scenario"]]
              for name in ("bare", "broken", "cloud", "edge")}
    pooled = {r["device"]["name"]: r for r in records if r["scenario"]["name"] == "energy_rounds"}
    for name in ("bare", "broken"):
        # no energy in the first round: the other rounds would only repeat the throughput suite's figure
        assert len(rounds[name]) == 1
        for record in rounds[name]:
            assert record["metrics"]["throughput_ips"]["value"] > 0
            assert record["extra"]["energy"]["measured"] is False
            assert "joules_per_inference" not in record["metrics"]
    assert len(rounds["edge"]) >= 3  # metered: the profile's rounds, each a window of its own
    for record in rounds["edge"]:
        assert record["scenario"]["profile"]["min_duration_s"] == 1.0  # a 2 Hz meter: every round a full window
        assert record["metrics"]["mean_w"]["value"] == pytest.approx(2.0)
        assert record["metrics"]["mean_w"]["method"] == "measured"
        reading = record["extra"]["energy"]  # the meter's window around the timed loop: 2 W over its duration
        assert reading["joules"] == pytest.approx(2.0 * reading["duration_s"])
        queries = len(record["samples"]["latency_ns"])
        assert record["metrics"]["joules_per_inference"]["value"] == pytest.approx(reading["joules"] / queries)
        assert record["extra"]["energy"]["covers"] == "test stand-in"
    edge = pooled["edge"]
    per_round = [r["metrics"]["joules_per_inference"]["value"] for r in rounds["edge"]]
    assert edge["metrics"]["joules_per_inference"]["value"] == pytest.approx(
        math.prod(per_round) ** (1 / len(per_round)))
    assert edge["metrics"]["joules_per_inference"]["rounds"] == len(per_round)
    verdicts = {c["name"]: c for c in edge["claims"]}
    assert verdicts["max_joules_per_inference"]["verdict"] == "met"
    assert verdicts["max_joules_per_inference"]["interval"] == edge["metrics"]["joules_per_inference"]["ci95"]
    ratio = verdicts["min_ips_per_usd_ratio"]
    # edge and cloud are both attached here: measured side by side, per-round ratios of per-dollar throughput
    assert "interleaved rounds" in ratio["basis"] and "side by side" in ratio["basis"]
    low, high = ratio["interval"]
    assert low <= ratio["observed"] <= high
    cloud_rounds = [r for r in records if r["device"]["name"] == "cloud" and r["test_id"].endswith("[edge-tiny]")]
    assert len(cloud_rounds) == len(rounds["edge"])  # cloud measured in every round of the edge test too
