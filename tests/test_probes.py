"""A probe that crashes the process asking it (#16 item 10): `pytest-edgeai devices` and `--device auto` ask in
an isolated worker, so a backend whose probe segfaults gives one line naming the device and the signal, and
the command goes on. Both run in this process: were the probe asked here, the test run itself would die."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ECHO_SESSION, backends_conftest, devices_toml

from pytest_edgeai import registry
from pytest_edgeai.cli import main

FAKE = '''
import os, signal
from pytest_edgeai.backends.base import Availability, TensorSpec

''' + ECHO_SESSION + '''


class CrashingProbe:
    name = "crashy"

    def probe(self, device):
        if device.options["mode"] == "segv":
            os.kill(os.getpid(), signal.SIGSEGV)
        return Availability(True, runtime="crashy", runtime_version="1.0")

    def load(self, model, device):
        return Session()
'''

DEVICES = devices_toml({mode: {"options": {"mode": mode}} for mode in ("segv", "fine")}, kind="npu", backend="crashy")


@pytest.fixture
def crashy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """The fake backend added as a hook adds it (the registry every worker is handed), importable by the
    worker (it inherits sys.path)."""
    (tmp_path / "crashyprobe.py").write_text(FAKE)
    (tmp_path / "devices.toml").write_text(DEVICES)
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.add(registry.BACKENDS, {"crashy": "crashyprobe:CrashingProbe"}, "test_probes")
    yield tmp_path
    registry.clear()


def test_devices_names_the_device_whose_probe_segfaulted_and_lists_the_rest(crashy, capsys):
    assert main(["devices", "--devices-file", str(crashy / "devices.toml")]) == 0
    out = capsys.readouterr().out
    [segv] = [line for line in out.splitlines() if line.startswith("segv ")]
    assert " no " in segv and "probing it in an isolated worker failed" in segv and "crashed with SIGSEGV" in segv
    [fine] = [line for line in out.splitlines() if line.startswith("fine ")]
    assert fine.split()[-1] == "yes" and "1.0" in fine
    assert "runtimes on this machine:" in out


TESTS = '''
def test_probe(edgeai_device):
    assert edgeai_device.name == "fine"
'''

CONFTEST = backends_conftest(crashy="crashyprobe:CrashingProbe")


def test_device_auto_leaves_out_the_device_whose_probe_segfaulted(crashy, pytester: pytest.Pytester):
    pytester.makepyfile(test_auto=TESTS, conftest=CONFTEST, crashyprobe=FAKE)
    pytester.makefile(".toml", devices=DEVICES)
    result = pytester.runpytest("--device", "auto", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["edgeai: devices fine (npu, crashy)*"])
