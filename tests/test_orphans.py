"""No process or lock outlives its session (#16 item 1).

A worker stuck in native code while holding the GIL (a catastrophic-backtracking regex: ``re`` never lets
the GIL go) cannot run a thread that watches its parent. It must still die with a SIGKILLed pytest (the
kernel's parent-death signal, armed by lab.child), so the next run gets the device's lock; and a lock held by
an orphan that escaped that (no prctl on the platform) is reclaimed, with a message, by whoever waits for it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import backends_conftest, devices_toml
from test_crash import wait_for

from pytest_edgeai.devices import Device
from pytest_edgeai.errors import DeviceUnavailable
from pytest_edgeai.lab.child import ORPHANED_EXIT, PARENT_ENV
from pytest_edgeai.lab.locks import device_lock

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc and prctl (Linux)")

SPIN = 're.match(r"(a+)+$", "a" * 64 + "b")'  # 2**64 steps of backtracking inside re, holding the GIL

FAKE_BACKEND = f'''
import os, re, time
from pathlib import Path
from pytest_edgeai.backends.base import Availability, TensorSpec

SPINNING = Path(__file__).parent / "spinning.txt"


class Session:
    inputs = [TensorSpec("x", ("N", 4), "float32")]
    outputs = [TensorSpec("y", ("N", 4), "float32")]

    def __init__(self, mode):
        self.mode = mode

    def run(self, feeds):
        if self.mode == "spin":
            SPINNING.write_text(str(os.getpid()))
            {SPIN}
        time.sleep(0.002)  # a device's pace, not a million samples a second
        return [feeds["x"]]

    def settings(self):
        return {{}}

    def close(self):
        pass


class SpinBackend:
    name = "spin"

    def probe(self, device):
        return Availability(True, runtime="spin", runtime_version="0")

    def load(self, model, device):
        return Session(device.options["mode"])
'''

CONFTEST = backends_conftest(spin="spinbackend:SpinBackend")

DEVICES = devices_toml({mode: {"options": {"mode": mode}} for mode in ("spin", "ok")},
                       kind="edgetpu", backend="spin", hardware_id="bench-1")

TESTS = '''
def test_offline(edgeai_device, edgeai_model, edgeai_bench):
    edgeai_bench.offline(edgeai_model("tiny.onnx"))
'''


def gone(pid: int) -> bool:
    """Exited (a zombie nobody reaped has exited too: its locks are dropped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"



def test_a_worker_spinning_in_native_code_dies_with_its_killed_pytest_and_the_next_run_gets_the_lock(
        pytester: pytest.Pytester):
    pytester.makepyfile(spinbackend=FAKE_BACKEND, conftest=CONFTEST, test_spin=TESTS)
    pytester.makefile(".toml", devices=DEVICES)
    (pytester.path / "tiny.onnx").write_bytes(b"not read by the fake backend")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(pytester.path), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.Popen([sys.executable, "-m", "pytest", "--device", "spin", "--edgeai-profile", "quick",
                            "-p", "no:cacheprovider", "-q"], cwd=pytester.path, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    spinning = pytester.path / "spinning.txt"
    try:
        worker = int(wait_for(lambda: spinning.is_file() and spinning.read_text(), 120, "the worker never spun"))
        assert worker != run.pid
        time.sleep(0.5)  # well inside the regex by now
    finally:
        run.send_signal(signal.SIGKILL)
        run.wait()
    wait_for(lambda: gone(worker), 10, "the worker spinning in native code outlived its SIGKILLed pytest")

    again = pytester.runpytest_subprocess("--device", "ok", "--edgeai-profile", "quick", "-p", "no:cacheprovider")
    again.assert_outcomes(passed=1)
    [record] = [json.loads(p.read_text()) for p in (pytester.path / "reports" / "latest" / "records").glob("*.json")]
    assert record["device"]["name"] == "ok" and record["extra"]["lock_wait_s"] < 5  # nobody held the lock


SESSION = """
import os, subprocess, sys
holder = subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2]], stdout=subprocess.PIPE, text=True,
                          stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          env={**os.environ, %(env)r: str(os.getpid())})
assert holder.stdout.readline().strip() == "held"
print(holder.pid, flush=True)
os._exit(0)  # the session dies; its worker, which holds the lock, does not
"""

HOLDER = f"""
import re, sys
from pathlib import Path
from pytest_edgeai.devices import Device
from pytest_edgeai.lab.locks import device_lock

with device_lock(Device(name="coral", kind="edgetpu", backend="litert", hardware_id="usb:9"), Path(sys.argv[1])):
    print("held", flush=True)
    {SPIN}
"""

TPU = Device(name="coral", kind="edgetpu", backend="litert", hardware_id="usb:9")


def test_a_lock_held_by_an_orphan_whose_session_is_gone_is_reclaimed_with_a_message(tmp_path: Path):
    session = subprocess.run([sys.executable, "-c", SESSION % {"env": PARENT_ENV}, textwrap.dedent(HOLDER),
                              str(tmp_path)], capture_output=True, text=True, timeout=60)
    orphan = int(session.stdout.strip())
    try:
        told: list[str] = []
        with device_lock(TPU, tmp_path, timeout_s=30, tell=told.append) as waited:
            assert gone(orphan)
        assert waited < 30
        [message] = told
        assert f"held by pid {orphan}" in message and "is gone" in message and "reclaimed" in message
    finally:
        if not gone(orphan):
            os.kill(orphan, signal.SIGKILL)


def test_a_holder_whose_session_is_alive_is_waited_for_not_killed(tmp_path: Path):
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(HOLDER), str(tmp_path)], stdout=subprocess.PIPE,
                              text=True, env={**os.environ, PARENT_ENV: str(os.getpid())})
    try:
        assert holder.stdout.readline().strip() == "held"
        told: list[str] = []
        with pytest.raises(DeviceUnavailable, match="held by another measurement"):
            with device_lock(TPU, tmp_path, timeout_s=1.5, tell=told.append):
                pass
        assert told == [] and holder.poll() is None
    finally:
        holder.kill()
        holder.wait()


def test_a_child_whose_parent_went_before_the_signal_was_armed_exits_at_once():
    script = "from pytest_edgeai.lab.child import die_with_parent; die_with_parent(1); print('survived')"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == ORPHANED_EXIT and "survived" not in done.stdout
