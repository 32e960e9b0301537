"""A claim devices.toml states is judged, or skipped with the reason: never silently left out.

The audit of issue 12 found stated claims that no verdict ever mentioned, so a run looked green on claims
nothing had checked: a compression claim naming a method no variant is built with, a claim for a model the
concurrency studies never run, a tenant count that is not one, a batch sweep without batch 1, an EdgeTPU
compiler claim on another kind of device, a tenant-latency claim whose N tenants could not run. devices.toml
refuses what it can know is wrong; the suites say why for the rest.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import backends_conftest, build_tiny_model, copy_suite

from pytest_edgeai import config as config_mod
from pytest_edgeai.claims import NO_CLAIMS, ClaimChecker, ClaimSpec, Found, judge, judge_ratio, latest_metric
from pytest_edgeai.devices import Device
from pytest_edgeai.errors import ConfigError
from pytest_edgeai.measure.rounds import Estimate
from pytest_edgeai.results.record import Record

QUICK = ("--edgeai-profile", "quick", "-p", "no:cacheprovider", "-p", "no:randomly", "-rs")


def parse(claims: dict) -> config_mod.Config:
    return config_mod.parse({"devices": {"cpu": {"kind": "cpu", "backend": "onnxruntime", "claims": claims}}})


def test_a_method_no_variant_is_built_with_is_refused_with_did_you_mean():
    with pytest.raises(ConfigError, match=r"method = 'int8_statc' names no quantisation method \(did you mean "
                                          r"'int8_static'\?\), so no variant would be judged"):
        parse({"compression": {"min_top1_agreement": {"*": {"threshold": 0.9, "method": "int8_statc"}}}})
    ok = parse({"compression": {"min_int8_speedup": {"mobilenet_v2": {"threshold": 1.1, "method": "int8_static"}}}})
    assert ok.devices["cpu"].claims[0].extras["method"] == "int8_static"


@pytest.mark.parametrize("at", ["two", 1, 2.5, True])
def test_a_tenant_count_must_be_several_tenants(at):
    with pytest.raises(ConfigError, match=r"at_tenants = .* must be a whole number of tenants >= 2"):
        parse({"concurrency": {"min_aggregate_speedup": {"mobilenet_v2": {"threshold": 1.2, "at_tenants": at}}}})


def test_a_concurrency_claim_for_a_model_the_studies_never_run_is_refused():
    with pytest.raises(ConfigError, match=r"the concurrency suite measures min_tenants only for mobilenet_v2, "
                                          r"so a claim for 'inception_v4' would never be checked"):
        parse({"concurrency": {"min_tenants": {"inception_v4": 3}}})
    with pytest.raises(ConfigError, match=r"max_tenant_p90_latency_ms only for mobilenet_v2, cnn_trad_fpool3 "
                                          r"\(did you mean 'mobilenet_v2'\?\)"):
        parse({"concurrency": {"max_tenant_p90_latency_ms": {"mobilenet_v3": 50}}})
    ok = parse({"concurrency": {"min_tenants": {"*": {"threshold": 2, "budget_mb": 256},
                                                "mobilenet_v2": {"threshold": 3, "budget_mb": 512}}}})
    assert {s.model for s in ok.devices["cpu"].claims} == {"*", "mobilenet_v2"}


def test_a_tenant_count_without_its_memory_budget_is_refused_saying_what_to_write():
    """The profiles probe different budgets (256 MiB quick, 512 standard): a count set at one and judged at
    the other claimed nothing (7 tenants at quick became a floor of 6 met by 17 at standard)."""
    with pytest.raises(ConfigError, match=r"min_tenants needs budget_mb: a tenant count means something only "
                                          r"with the memory it must fit in.*allowed: \{ threshold = N, budget_mb "
                                          r"= MiB \}"):
        parse({"concurrency": {"min_tenants": {"mobilenet_v2": 15}}})
    ok = parse({"concurrency": {"min_tenants": {"mobilenet_v2": {"threshold": 15, "budget_mb": 512}}}})
    assert ok.devices["cpu"].claim("concurrency", "min_tenants", "mobilenet_v2").extras["budget_mb"] == 512


@pytest.mark.parametrize("budget", [0, -256, "512", True, float("inf")])
def test_a_memory_budget_must_be_a_positive_number_of_mib(budget):
    with pytest.raises(ConfigError, match=r"budget_mb = .* must be a number of MiB above 0"):
        parse({"concurrency": {"min_tenants": {"mobilenet_v2": {"threshold": 15, "budget_mb": budget}}}})


def test_no_claims_configured_names_what_this_test_asked_for_when_the_suite_has_claims_for_others():
    saved: list = []
    device = Device("cpu", "cpu", "onnxruntime", claims=(ClaimSpec("throughput", "min_inferences_per_s", 5.0,
                                                                   model="mobilenet_v2"),))

    def stop(msg):
        raise AssertionError(msg)

    checker = ClaimChecker(device, "throughput", save=saved.append, fail=stop, skip=stop)
    rec = Record("throughput", "t", {}, {}, {"name": "mine"}, {})
    assert checker.check("max_p90_latency_ms", 3.0, "mine", rec) is None
    checker.assert_met()
    note = rec.extra["claims_note"]
    assert note == f"{NO_CLAIMS} for cpu in suite throughput for mine: none of max_p90_latency_ms" and saved == [rec]


def _run(pytester: pytest.Pytester, shared_cache: Path, devices: str, suite: str, *args: str):
    pytester.makefile(".toml", devices=devices)
    copy_suite(suite, pytester.path)
    return pytester.runpytest_subprocess(f"--edgeai-cache-dir={shared_cache}", *QUICK, *args)


THROUGHPUT = """
[devices.cpu]
kind = "cpu"
backend = "onnxruntime"
[devices.cpu.options]
intra_op_num_threads = 1
[devices.cpu.claims.throughput]
min_inferences_per_s = { "*" = 1.0 }
min_batching_speedup = { "*" = 0.5 }
min_edgetpu_op_fraction = { "*" = 0.5 }
"""


@pytest.mark.parametrize(("batches", "why"), [
    ("1", "min_batching_speedup for tiny on cpu: not checkable: only batch 1 was asked for (--edgeai-batches)"),
    ("2", "min_inferences_per_s for tiny on cpu: not checkable: batch 1 was not asked for (--edgeai-batches)"),
])
def test_a_sweep_that_cannot_answer_a_batch_claim_skips_it_with_the_reason(pytester, shared_cache, batches, why):
    build_tiny_model(pytester.path / "tiny.onnx")
    result = _run(pytester, shared_cache, THROUGHPUT, "throughput", f"--edgeai-model={pytester.path / 'tiny.onnx'}",
                  "--edgeai-batches", batches, "-k", "tiny and (batch_sweep or single_stream)")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines([f"*{why}*",
                                 "*min_edgetpu_op_fraction for tiny on cpu: not checkable: cpu is a cpu, not an "
                                 "EdgeTPU*"])


def test_a_claim_on_a_variant_that_was_not_built_skips_with_the_reason(pytester, shared_cache):
    pytest.importorskip("onnxruntime.quantization")
    build_tiny_model(pytester.path / "tiny.onnx")
    devices = ('[devices.cpu]\nkind = "cpu"\nbackend = "onnxruntime"\n[devices.cpu.claims.compression]\n'
               'min_top1_agreement = { "*" = { threshold = 0.5, method = "nncf_int8" } }\n')
    result = _run(pytester, shared_cache, devices, "compression", f"--edgeai-model={pytester.path / 'tiny.onnx'}",
                  "-k", "quantised_variants and tiny")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*min_top1_agreement for tiny on cpu: not checkable: the nncf_int8 variant was not "
                                 "built: *"])


SOLO = '''
from pytest_edgeai.backends.base import Availability, TensorSpec


class Session:
    """Runs while it is the only session alive: a second tenant makes every query fail."""

    alive = 0
    inputs = [TensorSpec("x", ("N", 4), "float32")]
    outputs = [TensorSpec("y", ("N", 4), "float32")]

    def __init__(self):
        Session.alive += 1

    def run(self, feeds):
        if Session.alive > 1:
            raise RuntimeError("this device runs one model at a time")
        return [feeds["x"]]

    def settings(self):
        return {}

    def close(self):
        Session.alive -= 1


class Backend:
    name = "solo"

    def probe(self, device):
        return Availability(True, runtime="solo", runtime_version="0")

    def load(self, model, device):
        return Session()
'''


def test_a_latency_claim_at_n_tenants_that_could_not_run_is_missed(pytester, shared_cache, monkeypatch, tmp_path):
    monkeypatch.setenv("EDGEAI_LOCK_DIR", str(tmp_path / "locks"))
    pytester.makepyfile(solo=SOLO, conftest=backends_conftest(solo="solo:Backend"))
    devices = ('[devices.solo]\nkind = "cpu"\nbackend = "solo"\n[devices.solo.claims.concurrency]\n'
               'max_tenant_p90_latency_ms = { mobilenet_v2 = { threshold = 100.0, at_tenants = 2 } }\n')
    result = _run(pytester, shared_cache, devices, "concurrency", "--device", "solo",
                  "-k", "tenant_sweep and mobilenet_v2 and thread")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*max_tenant_p90_latency_ms for mobilenet_v2 on solo at 2 tenants: 2 tenants did not "
                                 "run (*"])
    run = (pytester.path / "reports" / "latest").resolve()
    [summary] = [r for r in (json.loads(p.read_text()) for p in (run / "records").glob("*.json"))
                 if r["scenario"]["name"] == "tenant_sweep"]
    assert [c["verdict"] for c in summary["claims"]] == ["missed"]


def test_a_verdict_on_a_figure_the_device_cannot_change_says_so():
    size = ClaimSpec("compression", "min_size_reduction", 1.8, extras={"device_independent": True})
    result = judge(size, "edgetpu", "m", 3.9)
    assert result.device_independent and "the same on any device" in result.message
    speed = judge(ClaimSpec("throughput", "min_inferences_per_s", 1.0), "cpu", "m", 3.9)
    assert not speed.device_independent and "any device" not in speed.message


def test_a_device_comparison_against_a_misspelt_device_or_itself_is_refused():
    def devices(against: object) -> dict:
        return {"devices": {
            "tpu": {"kind": "edgetpu", "backend": "onnxruntime", "claims": {"energy": {"min_ips_per_usd_ratio": {
                "*": {"threshold": 10.0, "against": against}}}}},
            "cloud_cpu": {"kind": "cpu", "backend": "onnxruntime"}}}

    with pytest.raises(ConfigError, match=r"min_ips_per_usd_ratio: against = 'cloud_cpuu' names no device in this "
                                          r"file \(did you mean 'cloud_cpu'\?\)"):
        config_mod.parse(devices("cloud_cpuu"))
    with pytest.raises(ConfigError, match=r"against = 'tpu' is the device itself"):
        config_mod.parse(devices("tpu"))
    with pytest.raises(ConfigError, match=r"needs against = \"<device name>\", not 3"):
        config_mod.parse(devices(3))
    # a device of another bench, known only from the run store, is allowed
    assert config_mod.parse(devices("lab2_xeon")).devices["tpu"].claims[0].extras["against"] == "lab2_xeon"
    assert config_mod.parse(devices("cloud_cpu")).devices["tpu"].claims[0].extras["against"] == "cloud_cpu"


def test_a_saving_depth_claim_is_missed_when_no_cut_saves(pytester, shared_cache):
    build_tiny_model(pytester.path / "tiny.onnx")  # 16 inputs, 32 hidden: no cut sends less than the input
    devices = ('[devices.cpu]\nkind = "cpu"\nbackend = "onnxruntime"\n[devices.cpu.claims.split]\n'
               'max_saving_depth_layers = { "*" = { threshold = 4, encoding = "lossless", '
               'device_independent = true } }\n')
    result = _run(pytester, shared_cache, devices, "split", f"--edgeai-model={pytester.path / 'tiny.onnx'}",
                  "-k", "bytes_per_cut and tiny")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*max_saving_depth_layers for tiny: no cut sends fewer bytes than the compressed "
                                 "input (lossless)*"])


def test_a_verdict_on_an_allowed_estimate_says_it_is_one():
    allowed = ClaimSpec("energy", "max_joules_per_inference", 1.0, extras={"allow_estimate": True})
    result = judge(allowed, "cpu", "m", Estimate(0.5, 0.4, 0.6, "rounds", 3), estimated=True)
    assert result.verdict == "met" and "(an estimate: allow_estimate = true)" in result.message
    assert "estimate" not in judge(allowed, "cpu", "m", Estimate(0.5, 0.4, 0.6, "rounds", 3)).message


@pytest.mark.parametrize("flag", ["allow_estimate", "device_independent"])
@pytest.mark.parametrize("value", ["false", "true", 1, 0])
def test_a_flag_that_is_not_true_or_false_is_refused(flag, value):
    """allow_estimate = "false" is a string, and truthy: read as a yes it let an estimate be judged and met."""
    with pytest.raises(ConfigError, match=rf"{flag} = {value!r} must be true or false; allowed: true, false"):
        parse({"energy": {"max_joules_per_inference": {"*": {"threshold": 1.0, flag: value}}}})


def test_only_a_boolean_true_lets_an_estimate_be_judged():
    quoted = ClaimSpec("energy", "max_joules_per_inference", 1.0, extras={"allow_estimate": "false"})
    result = judge(quoted, "cpu", "m", Estimate(0.5, 0.4, 0.6, "rounds", 3), estimated=True)
    assert result.verdict == "skip" and "does not allow estimates" in result.message


def test_a_ratio_against_another_device_on_an_estimate_passes_only_where_allowed():
    spec = ClaimSpec("energy", "min_ips_per_w_ratio", 10.0, extras={"against": "cloud"})
    cloud = Found(Estimate(1.0, 0.9, 1.1, "t", 3), "abc", "this run")
    mine = Estimate(50.0, 45.0, 55.0, "t", 3)
    assert judge_ratio(spec, "tpu", "m", mine, cloud, "inferences_per_s_per_w").verdict == "met"
    assert judge_ratio(spec, "tpu", "m", mine, cloud, "inferences_per_s_per_w", estimated=True).verdict == "skip"
    rec = Record("energy", "t", {"name": "cloud"}, {}, {"name": "m"}, {"name": "offline"})
    rec.metrics["inferences_per_s_per_w"] = {"value": 1.0, "unit": "inferences/s/W", "method": "estimated",
                                             "ci95": [0.9, 1.1], "rounds": 3}
    found = latest_metric([rec], "cloud", "m", "inferences_per_s_per_w")
    assert found.estimated
    assert judge_ratio(spec, "tpu", "m", mine, found, "inferences_per_s_per_w").verdict == "skip"
    allowed = ClaimSpec("energy", "min_ips_per_w_ratio", 10.0, extras={"against": "cloud", "allow_estimate": True})
    assert judge_ratio(allowed, "tpu", "m", mine, found, "inferences_per_s_per_w").verdict == "met"


def test_a_re_measurement_that_fails_leaves_the_verdict_so_far_on_the_record():
    saved: list = []

    def stop(msg):
        raise AssertionError(msg)

    checker = ClaimChecker(Device("cpu", "cpu", "onnxruntime", claims=(ClaimSpec("throughput", "min_inferences_per_s",
                                                                                 100.0),)),
                           "throughput", save=saved.append, fail=stop, skip=stop, max_rounds=5)
    rec = Record("throughput", "t", {}, {}, {"name": "m"}, {})

    def more():
        raise RuntimeError("the device fell off the bus")

    with pytest.raises(RuntimeError, match="fell off"):
        checker.check("min_inferences_per_s", Estimate(105.0, 90.0, 120.0, "rounds", 3), "m", rec, more=more)
    assert saved == [rec] and rec.claims[0]["verdict"] == "inconclusive"
    assert "re-measuring failed: RuntimeError" in rec.claims[0]["message"]


@pytest.mark.parametrize("value", [["int8_static"], {"a": 1}, 1.5, ""])
def test_hostile_option_values_get_one_clear_message(value):
    speedup = {"mobilenet_v2": {"threshold": 1.2, "at_tenants": value}}
    for claims in ({"compression": {"min_top1_agreement": {"*": {"threshold": 0.9, "method": value}}}},
                   {"concurrency": {"min_aggregate_speedup": speedup}}):
        with pytest.raises(ConfigError, match=r"(method = .* names no quantisation method|at_tenants = .* must be)"):
            parse(claims)
    devices = {"devices": {"tpu": {"kind": "edgetpu", "backend": "onnxruntime", "claims": {"energy": {
        "min_ips_per_w_ratio": {"*": {"threshold": 10.0, "against": value}}}}}}}
    with pytest.raises(ConfigError, match=r"needs against = "):
        config_mod.parse(devices)


@pytest.mark.parametrize("extras, problem", [
    ({"threshold": 7.0, "device_independent": True}, r"min_cut_saving needs at = "),
    ({"threshold": 7.0, "at": 11, "device_independent": True}, r"min_cut_saving needs at = .* not 11"),
])
def test_a_cut_saving_claim_names_the_block_it_judges(extras, problem):
    """Without a block name the suite judged nothing and skipped saying 'nothing was measured'."""
    with pytest.raises(ConfigError, match=problem):
        parse({"split": {"min_cut_saving": {"mobilenet_v2_imagenet": extras}}})


@pytest.mark.parametrize("depth", ["two", 2.5, -1, True])
def test_a_cut_depth_must_be_a_count_of_layers(depth):
    """``int("two")`` in the split suite was a ValueError traceback from its internals."""
    with pytest.raises(ConfigError, match=r"before_last_layers = .* must be a whole number of network layers"):
        parse({"split": {"min_best_cut_saving": {"*": {"threshold": 1.0, "before_last_layers": depth,
                                                        "device_independent": True}}}})
    ok = parse({"split": {"min_best_cut_saving": {"*": {"threshold": 1.0, "before_last_layers": 4,
                                                         "device_independent": True}}}})
    assert ok.devices["cpu"].claims[0].extras["before_last_layers"] == 4
