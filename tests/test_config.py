"""devices.toml validation: every problem reported once, with file, key path and what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import devices_toml

from pytest_edgeai import config
from pytest_edgeai.claims import ANY_MODEL
from pytest_edgeai.concurrency.studies import PLANS
from pytest_edgeai.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def load_text(tmp_path: Path, text: str) -> config.Config:
    path = tmp_path / "devices.toml"
    path.write_text(text)
    return config.load(path)


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_text(tmp_path, text)
    return info.value.problems


# a valid CPU device; each claims test adds the lines of its [devices.x.claims.throughput] table
THROUGHPUT_CLAIMS_OF_X = '[devices.x]\nkind = "cpu"\nbackend = "onnxruntime"\n[devices.x.claims.throughput]'


def test_shipped_devices_toml_holds_the_reference_devices():
    cfg = config.load(ROOT / "devices.toml")
    kinds = {d.kind for d in cfg.devices.values()}
    assert {"cpu", "edgetpu", "ncs2", "jetson", "gpu"} <= kinds
    assert {"cpu", "openvino_cpu", "edgetpu", "ncs2", "jetson_nano", "jetson_xavier_nx",
            "server_gpu"} <= set(cfg.devices)
    nx = cfg.devices["jetson_xavier_nx"].claim("throughput", "min_batching_speedup", "mobilenet_v2")
    assert nx is not None and nx.threshold == pytest.approx(2.4)
    assert cfg.links["device_cloud"].bandwidth_mbps == pytest.approx(1.6)
    # the tenant floor is set at the standard profile's budget: the default run probes what it always did
    tenants = cfg.devices["cpu"].claim("concurrency", "min_tenants", "mobilenet_v2")
    assert tenants is not None and tenants.extras["budget_mb"] == PLANS["standard"].capacity_budget_mb
    # the digits cascades' figures are the link's and the fixed inputs' on this CPU: marked so
    for name in ("min_cascade_latency_reduction", "max_cascade_accuracy_loss"):
        for workload in ("digits_uniform", "digits_skewed"):
            assert cfg.devices["cpu"].claim("compression", name, workload).device_independent


def test_builtin_config_has_one_cpu_device_on_onnxruntime():
    cfg = config.builtin()
    assert list(cfg.devices) == ["cpu"]
    assert cfg.devices["cpu"].backend == "onnxruntime"


def test_unknown_keys_are_rejected_with_did_you_mean(tmp_path):
    found = problems(tmp_path, '[devices.x]\nkind = "cpu"\nbackend = "onnxruntime"\nteir = "edge"\n')
    assert len(found) == 1
    assert "devices.toml: devices.x.teir: unknown key (did you mean 'tier'?)" in found[0]
    assert "allowed:" in found[0]


def test_bad_choice_names_the_allowed_values(tmp_path):
    found = problems(tmp_path, '[devices.x]\nkind = "tpu"\nbackend = "onnxrt"\ntier = "fog"\n')
    text = "\n".join(found)
    assert "devices.x.kind: 'tpu' is not allowed" in text and "edgetpu" in text
    assert "devices.x.backend: 'onnxrt' is not allowed (did you mean 'onnxruntime'?)" in text
    assert "devices.x.tier: 'fog' is not allowed; allowed: device, edge, cloud" in text
    assert len(found) == 3


def test_every_problem_is_reported_in_one_pass(tmp_path):
    found = problems(tmp_path, """
[devices.a]
kind = "cpu"
backend = "onnxruntime"
memory_mb = -1
[devices.b]
backend = "onnxruntime"
[links.l]
from = "device"
to = "cloud"
bandwidth_mbps = 0
rtt_ms = 10
""")
    text = "\n".join(found)
    assert "devices.a.memory_mb: -1 is not a finite number > 0" in text
    assert "devices.b.kind: is required" in text
    assert "links.l.bandwidth_mbps: 0 is not a finite number > 0" in text
    assert len(found) == 3


def test_invalid_toml_names_the_file(tmp_path):
    found = problems(tmp_path, "[devices.x\nkind = 1\n")
    assert len(found) == 1 and "devices.toml: not valid TOML" in found[0]


def test_missing_file_is_one_clear_problem(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        config.load(tmp_path / "nope.toml")


def test_claims_per_model_and_for_every_model(tmp_path):
    cfg = load_text(tmp_path, THROUGHPUT_CLAIMS_OF_X + """
min_inferences_per_s = { mobilenet_v2 = 20, "*" = 5 }
max_p90_latency_ms = 50
""")
    dev = cfg.devices["x"]
    assert dev.claim("throughput", "min_inferences_per_s", "mobilenet_v2").threshold == 20
    assert dev.claim("throughput", "min_inferences_per_s", "other").threshold == 5
    assert dev.claim("throughput", "max_p90_latency_ms", "any").model == ANY_MODEL
    assert dev.claim("throughput", "min_batching_speedup", "any") is None


def test_unknown_claims_and_suites_are_rejected(tmp_path):
    found = problems(tmp_path, THROUGHPUT_CLAIMS_OF_X + """
min_inference_per_s = 3
[devices.x.claims.througput]
max_p90_latency_ms = 3
""")
    text = "\n".join(found)
    assert "claims.throughput.min_inference_per_s: unknown claim (did you mean 'min_inferences_per_s'?)" in text
    assert "claims.througput: unknown suite (did you mean 'throughput'?)" in text


def test_claim_threshold_must_be_a_number(tmp_path):
    found = problems(tmp_path, THROUGHPUT_CLAIMS_OF_X + """
min_inferences_per_s = { mobilenet_v2 = "fast" }
""")
    assert len(found) == 1
    assert found[0].endswith("devices.toml: devices.x.claims.throughput.min_inferences_per_s.mobilenet_v2: "
                             "'fast' is not a finite number >= 0; allowed: a number >= 0")


def test_models_need_exactly_a_path_or_a_zoo_name(tmp_path):
    found = problems(tmp_path, '[models.m]\nparams = {}\n')
    assert "models.m: needs exactly one of 'path'" in found[0]


def test_meter_problems_are_reported_with_the_file(tmp_path):
    found = problems(tmp_path, devices_toml({"x": {"meter": {"source": "rapll"}}}, kind="cpu", backend="onnxruntime"))
    assert len(found) == 1
    assert "devices.toml: devices.x.meter.source: unknown meter 'rapll' (did you mean 'rapl'?)" in found[0]


def test_an_unknown_backend_is_rejected_with_did_you_mean(tmp_path):
    found = problems(tmp_path, '[devices.x]\nkind = "gpu"\nbackend = "tensorrtt"\n')
    assert "devices.x.backend: 'tensorrtt' is not allowed (did you mean 'tensorrt'?)" in found[0]
