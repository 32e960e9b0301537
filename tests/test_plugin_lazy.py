"""Loading the plugin costs nothing until edgeai is used (as Hypothesis's plugin does): a pytest run of a
project that does not use it imports no numpy, onnx or run state and reads no devices.toml; an edgeai option,
fixture or marker starts the run, and then a bad devices.toml is one clear usage error as before."""

from __future__ import annotations

import json

import pytest

HEAVY = ("numpy", "onnx", "onnxruntime", "pytest_edgeai.run", "pytest_edgeai.config", "pytest_edgeai.models",
         "pytest_edgeai.backends.onnxruntime", "pytest_edgeai.lab.runners")

# Writes what this pytest process imported, at the end of its session.
SPY = '''
import json, sys

def pytest_sessionfinish(session):
    with open("modules.json", "w") as fh:
        json.dump(sorted(sys.modules), fh)
'''

BROKEN_DEVICES = '[devices.cpu]\nkind = "cpu"\nbackend = "onnxruntime"\ntier = "edgy"\n'


def imported(pytester: pytest.Pytester) -> set[str]:
    return set(json.loads((pytester.path / "modules.json").read_text()))


def test_a_plain_run_with_the_plugin_loaded_imports_nothing_heavy(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(SPY)
    pytester.makepyfile("def test_plain():\n    assert 1 + 1 == 2\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    modules = imported(pytester)
    assert "pytest_edgeai.plugin" in modules  # loaded, through its entry point
    assert sorted(m for m in modules if m.split(".")[0] in {"numpy", "onnx", "onnxruntime"}
                  or m in HEAVY) == []
    assert not (pytester.path / "reports").exists()


def test_a_broken_devices_toml_of_a_project_that_does_not_use_edgeai_is_not_read(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", devices=BROKEN_DEVICES)  # some other tool's file of the same name
    pytester.makepyfile("def test_plain():\n    assert True\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "edgeai: devices" not in result.stdout.str()


@pytest.mark.parametrize("test", [
    "def test_uses_a_fixture(edgeai_device):\n    pass\n",
    "import pytest\n\n@pytest.mark.edgetpu\ndef test_marked():\n    pass\n",
], ids=["fixture", "marker"])
def test_a_fixture_or_a_marker_starts_the_run_and_a_bad_devices_toml_is_then_a_usage_error(
        pytester: pytest.Pytester, test: str) -> None:
    pytester.makefile(".toml", devices=BROKEN_DEVICES)
    pytester.makepyfile(test_plain="def test_plain():\n    assert True\n", test_edgeai=test)
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*devices.toml: devices.cpu.tier: 'edgy' is not allowed (did you mean 'edge'?)*"])
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


def test_a_run_started_by_a_fixture_shows_its_header_and_measures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_device(edgeai_device):\n    assert edgeai_device.name == 'cpu'\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["edgeai: devices cpu (cpu, onnxruntime *) from built-in (no devices.toml); "
                                 "profile standard"])


def test_an_ini_key_is_an_option_given(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", devices=BROKEN_DEVICES)
    pytester.makeini("[pytest]\nedgeai_profile = quick\n")
    pytester.makepyfile("def test_plain():\n    assert True\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*devices.cpu.tier: 'edgy' is not allowed*"])
