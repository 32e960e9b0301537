"""Remote benches: ``pytest -d --tx ssh=...`` against a real OpenSSH server started on 127.0.0.1.

The worker runs in another directory as if on another host (its run is a copy under its own report
dir), so the records in the controller's run can only have come back over execnet's channel.
Needs Debian's openssh-server (``apt-get install -y openssh-server``); skips with the reason without it.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import devices_toml
from execnet import XSpec

from pytest_edgeai.lab.xdist import bound_restarts, harden_ssh

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

QUICK = ("--edgeai-profile", "quick", "-p", "no:cacheprovider", "-p", "no:randomly",
         "-W", "ignore::DeprecationWarning")  # xdist 3 deprecates --rsyncdir (still works)

SUITE = '''
def test_offline(edgeai_device, edgeai_model, edgeai_bench):
    model = edgeai_model("cnn_trad_fpool3")
    edgeai_bench.offline(model, batch=1)
    edgeai_bench.single_stream(model)
'''
DEVICES = devices_toml({"bench_cpu": {"options": {"intra_op_num_threads": 1}}}, kind="cpu", backend="onnxruntime")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tool(name: str) -> str:
    found = shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.path.exists(p)),
                                       None)
    if found is None:
        pytest.skip(f"{name} not found: install openssh-server and openssh-client (apt-get install -y openssh-server)")
    return found


def ssh_options(key: Path, port: int) -> str:
    return f"-p {port} -i {key} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"


@pytest.fixture
def sshd(tmp_path: Path):
    """An OpenSSH server on 127.0.0.1 accepting a freshly generated key; yields (key, port)."""
    sshd_bin, keygen = tool("sshd"), tool("ssh-keygen")
    tool("ssh")
    keys = tmp_path / "ssh"
    keys.mkdir()
    for name in ("host", "user"):
        subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(keys / name)], check=True)
    shutil.copy(keys / "user.pub", keys / "authorized_keys")
    (keys / "sshd_config").write_text(
        f"ListenAddress 127.0.0.1\nHostKey {keys / 'host'}\nAuthorizedKeysFile {keys / 'authorized_keys'}\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
        "PermitRootLogin prohibit-password\nPidFile none\n")
    try:
        os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege separation directory
    except OSError as exc:
        pytest.skip(f"sshd cannot start here: /run/sshd: {exc}")
    port = free_port()
    proc = subprocess.Popen([sshd_bin, "-D", "-e", "-f", str(keys / "sshd_config"), "-p", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 10
    while True:
        if proc.poll() is not None:
            pytest.skip(f"sshd cannot start here: {proc.stdout.read().strip()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                pytest.skip("sshd did not listen within 10 s")
            time.sleep(0.05)
    yield keys / "user", port
    proc.terminate()
    proc.wait(5)


def tx(key: Path, port: int, chdir: Path, lock_dir: Path) -> str:
    return (f"ssh={ssh_options(key, port)} {getpass.getuser()}@127.0.0.1//python={sys.executable}"
            f"//chdir={chdir}//env:EDGEAI_LOCK_DIR={lock_dir}//env:EDGEAI_NO_CANARY=1")  # ssh passes no env


def test_records_of_a_remote_bench_come_back_into_the_controllers_run(pytester, sshd, tmp_path):
    key, port = sshd
    pytester.makeini("[pytest]\n")
    pytester.makefile(".toml", devices=DEVICES)
    pytester.makepyfile(test_remote_suite=SUITE)
    bench = tmp_path / "bench"
    result = pytester.runpytest("-d", "--tx", tx(key, port, bench, tmp_path / "locks"),
                                "--rsyncdir", str(pytester.path), str(pytester.path),
                                "--device", "bench_cpu", *QUICK)
    result.assert_outcomes(passed=1)
    [run] = [p for p in (pytester.path / "reports").iterdir() if not p.is_symlink()]
    meta = json.loads((run / "run.json").read_text())
    assert meta["status"] == "complete" and list(meta["workers"]) == ["gw0"]
    records = {p.name: json.loads(p.read_text()) for p in (run / "records").glob("*.json")}
    assert sorted(r["scenario"]["name"] for r in records.values()) == ["offline", "single_stream"]
    assert all(r["status"] == "ok" and r["samples"]["latency_ns"] and r["extra"]["worker"]["id"] == "gw0"
               for r in records.values())
    # the bench kept its own copy of the run, under its own report dir, with the same records
    mirror = bench / pytester.path.name / "reports" / run.name / "records"
    assert sorted(p.name for p in mirror.glob("*.json")) == sorted(records)
    assert (run / "report.html").is_file() and not (mirror.parent / "report.html").exists()


def test_an_unreachable_bench_is_one_clear_line(pytester, tmp_path):
    tool("ssh")
    pytester.makepyfile(test_remote_suite=SUITE)
    spec = f"ssh={ssh_options(tmp_path / 'no-key', free_port())} nobody@127.0.0.1//python={sys.executable}"
    result = pytester.runpytest("-d", "--tx", spec, "--device", "cpu", *QUICK)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*pytest-edgeai: the remote bench did not answer (ssh *nobody@127.0.0.1)*"])
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


def test_ssh_gateways_fail_fast_and_crashing_remote_workers_are_not_restarted_forever():
    spec = XSpec("ssh=-o ConnectTimeout=3 -p 22 user@host//python=python3")
    harden_ssh(spec)
    assert spec.ssh == "-o BatchMode=yes -o ConnectTimeout=3 -p 22 user@host"
    popen = XSpec("popen")
    harden_ssh(popen)
    assert popen.ssh is None

    class Option:
        tx, maxworkerrestart, numprocesses = ["ssh=a//python=p", "ssh=b//python=p"], None, None

    config = type("Config", (), {"option": Option()})()
    bound_restarts(config)
    assert config.option.maxworkerrestart == "8"
