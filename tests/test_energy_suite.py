"""The energy suite through pytester: measured, estimated-free claims against a deterministic
command meter, a ratio against a device measured earlier in the run, and devices whose meter is
missing or broken still recording their throughput and skipping the energy part with the reason."""

from __future__ import annotations

import json
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
    records = {r["device"]["name"]: r for r in (json.loads(p.read_text()) for p in (run / "records").glob("*.json"))}
    for name in ("bare", "broken"):
        assert records[name]["metrics"]["throughput_ips"]["value"] > 0
        assert records[name]["extra"]["energy"]["measured"] is False
        assert "joules_per_inference" not in records[name]["metrics"]
    edge = records["edge"]
    assert edge["metrics"]["mean_w"]["value"] == pytest.approx(2.0)
    assert edge["metrics"]["mean_w"]["method"] == "measured"
    ips = edge["metrics"]["throughput_ips"]["value"]
    assert edge["metrics"]["joules_per_inference"]["value"] == pytest.approx(2.0 / ips, rel=0.05)
    assert edge["extra"]["energy"]["covers"] == "test stand-in"
    verdicts = {c["name"]: c for c in edge["claims"]}
    assert verdicts["max_joules_per_inference"]["verdict"] == "pass"
    ratio = verdicts["min_ips_per_usd_ratio"]
    cloud_per_usd = records["cloud"]["metrics"]["inferences_per_s_per_usd"]["value"]
    assert ratio["observed"] == pytest.approx(edge["metrics"]["inferences_per_s_per_usd"]["value"] / cloud_per_usd)
    assert "against cloud" in ratio["message"]
