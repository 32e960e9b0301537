"""The README's "Writing your own suite" runs as written: the suite declares its claims with its marker,
devices.toml gives them thresholds under [devices.cpu.claims.mine], and the verdict carries its interval.
A claim the suite does not declare is one clear usage error; a suite with no claims says so."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import build_tiny_model

from pytest_edgeai.claims import CLAIMS

README = Path(__file__).resolve().parents[1] / "README.md"
QUICK = ("--edgeai-profile", "quick", "-p", "no:cacheprovider", "-p", "no:randomly")
DEVICE = '[devices.cpu]\nkind = "cpu"\nbackend = "onnxruntime"\n[devices.cpu.options]\nintra_op_num_threads = 1\n'


def readme_example() -> tuple[str, str]:
    """The python and toml blocks of the README's "Writing your own suite" section."""
    section = README.read_text().split("## Writing your own suite", 1)[1].split("\n## ", 1)[0]
    python = re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)
    toml = re.search(r"```toml\n(.*?)```", section, re.DOTALL).group(1)
    return python, toml


@pytest.fixture
def suite(pytester: pytest.Pytester):
    """The README's suite in a pytester dir; the suite it declares leaves the registry afterwards."""
    before = set(CLAIMS)
    build_tiny_model(pytester.mkdir("models") / "my_net.onnx")
    python, _ = readme_example()
    pytester.makepyfile(test_mine=python)
    yield pytester
    for name in set(CLAIMS) - before:
        del CLAIMS[name]


def claims_of(pytester: pytest.Pytester) -> list[dict]:
    run = (pytester.path / "reports" / "latest").resolve()
    records = [json.loads(p.read_text()) for p in (run / "records").glob("*.json")]
    return [c for r in records for c in r["claims"]]


def test_the_readme_example_runs_and_its_claim_is_judged_on_an_interval(suite):
    _, toml = readme_example()
    suite.makefile(".toml", devices=DEVICE + toml)
    result = suite.runpytest("--device", "cpu", *QUICK)
    result.assert_outcomes(passed=1)
    [claim] = claims_of(suite)
    assert claim["suite"] == "mine" and claim["name"] == "min_inferences_per_s" and claim["verdict"] == "met"
    low, high = claim["interval"]
    assert low <= claim["observed"] <= high and low >= 20
    result.stdout.fnmatch_lines(["*mine*cpu*my_net*min_inferences_per_s:met[[]*"])


def test_a_claim_the_suite_does_not_declare_is_a_usage_error(suite):
    suite.makefile(".toml", devices=DEVICE + "[devices.cpu.claims.mine]\nmin_inference_per_s = 20\n")
    result = suite.runpytest("--device", "cpu", *QUICK)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([("*devices.cpu.claims.mine.min_inference_per_s: suite 'mine' declares no claim "
                                  "'min_inference_per_s' (did you mean 'min_inferences_per_s'?)*")])
    assert "Traceback" not in result.stderr.str()


def test_a_suite_without_claims_for_the_device_says_so(suite):
    suite.makefile(".toml", devices=DEVICE)
    result = suite.runpytest("--device", "cpu", *QUICK)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*mine*cpu*my_net*no claims configured*"])
    run = (suite.path / "reports" / "latest").resolve()
    assert "no claims configured for cpu in suite mine" in (run / "report.html").read_text()
