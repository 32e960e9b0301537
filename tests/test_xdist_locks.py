"""The device lock across processes, and the pieces of a run shared between xdist workers."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from pytest_edgeai.devices import Device
from pytest_edgeai.errors import DeviceUnavailable
from pytest_edgeai.lab.locks import HOST_CPU_KEY, device_key, device_lock, lock_key
from pytest_edgeai.lab.runshare import open_shared_run, record_properties, take_records
from pytest_edgeai.results.record import Record
from pytest_edgeai.results.store import load_run

TPU = Device(name="coral", kind="edgetpu", backend="litert", hardware_id="usb:0")

HOLDER = """
import sys, time
from pathlib import Path
from pytest_edgeai.devices import Device
from pytest_edgeai.lab.locks import device_lock

with device_lock(Device(name="coral", kind="edgetpu", backend="litert", hardware_id="usb:0"), Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(600)
"""


def test_a_lock_held_elsewhere_blocks_and_one_left_by_a_killed_process_does_not(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(HOLDER), str(tmp_path)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(DeviceUnavailable, match=r"coral: its lock .*usb_0\.lock is held by another measurement"):
            with device_lock(TPU, tmp_path, timeout_s=0.2):
                pass
    finally:
        holder.kill()  # SIGKILL: no chance to release anything itself
        holder.wait()
    assert (tmp_path / "usb_0.lock").exists()  # the file stays behind; the kernel's lock did not
    with device_lock(TPU, tmp_path, timeout_s=5) as waited:
        assert waited < 5


def test_the_lock_is_the_physical_device():
    same_tpu = Device(name="coral_via_other_runtime", kind="edgetpu", backend="onnxruntime", hardware_id="usb:0")
    assert device_key(same_tpu) == device_key(TPU) == "usb_0"
    assert device_key(Device(name="cpu a", kind="cpu", backend="onnxruntime")) == "onnxruntime-cpu_a"
    # the host's CPU is one device whatever runtime drives it; a user's hardware_id still wins
    ort, ov = (Device(name="cpu", kind="cpu", backend="onnxruntime"),
               Device(name="openvino_cpu", kind="cpu", backend="openvino"))
    assert lock_key(ort) == lock_key(ov) == HOST_CPU_KEY
    assert lock_key(Device(name="socket1", kind="cpu", backend="openvino", hardware_id="cpu:1")) == "cpu_1"
    assert lock_key(TPU) == device_key(TPU) and lock_key(Device(name="gpu0", kind="gpu", backend="tensorrt")) == \
        "tensorrt-gpu0"


def test_workers_joining_a_run_create_it_once(tmp_path):
    path = tmp_path / "reports" / "20260101-000000-abcd1234"
    first = open_shared_run(path, "abcd1234", {"who": "gw0"})
    second = open_shared_run(path, "abcd1234", {"who": "gw1"})
    assert json.loads((path / "run.json").read_text())["who"] == "gw0"  # the second joined, did not overwrite
    latest = tmp_path / "reports" / "latest"
    assert not latest.exists()  # a run that has measured nothing is not latest
    record = Record(suite="s", test_id="t", device={"name": "cpu"}, backend={}, model={}, scenario={})
    first.write(record)
    assert latest.resolve() == path.resolve()
    second.write(record)  # the same record from controller and worker: one file
    run = load_run(path)
    assert [r.id for r in run.records] == [record.id] and run.meta["status"] == "running"


def test_records_ride_on_report_properties_and_leave_none_behind():
    record = Record(suite="s", test_id="t", device={"name": "cpu"}, backend={}, model={}, scenario={},
                    samples={"latency_ns": [1, 2, 3]})
    older = Record.from_dict({**record.to_dict(), "claims": []})
    record.claims.append({"name": "min_inferences_per_s", "verdict": "pass"})
    properties = [("owner", "lab"), *record_properties([older, record])]
    assert len(properties) == 2  # one record, its latest version
    [back] = take_records(properties)
    assert properties == [("owner", "lab")]
    assert back.to_dict() == record.to_dict()


def test_a_suite_timing_work_of_its_own_holds_the_device(tmp_path):
    """Bench.exclusive() takes the same lock as a measurement, so nothing on the device overlaps it."""
    from pytest_edgeai.bench import Bench
    from pytest_edgeai.devices import builtin_cpu
    from pytest_edgeai.measure.profiles import get_profile

    bench = Bench(builtin_cpu(), "concurrency", "t", get_profile("quick"), save=lambda r: None)
    with bench.exclusive() as waited:
        assert waited >= 0
        with pytest.raises(DeviceUnavailable, match="held by another measurement"):
            with device_lock(builtin_cpu(), None, 0.2):
                pass
    with device_lock(builtin_cpu(), None, 0.2):  # released on leaving
        pass


def test_a_study_spanning_devices_holds_every_lock_taken_in_one_order(tmp_path, monkeypatch):
    """Placement times work on several devices: all their locks, taken sorted by key (two such studies
    over overlapping devices then cannot each hold one lock and wait for the other), released after."""
    from pytest_edgeai.bench import Bench
    from pytest_edgeai.devices import builtin_cpu
    from pytest_edgeai.lab import locks
    from pytest_edgeai.measure.profiles import get_profile

    monkeypatch.setenv("EDGEAI_LOCK_DIR", str(tmp_path))
    taken = []
    real_lock = locks.device_lock

    def recording_lock(device, directory=None, timeout_s=-1, tell=print):
        taken.append(lock_key(device))
        return real_lock(device, directory, timeout_s, tell)

    monkeypatch.setattr(locks, "device_lock", recording_lock)
    cpu = builtin_cpu()

    def study():
        for device in (cpu, TPU):
            with pytest.raises(DeviceUnavailable, match="held by another measurement"):
                with real_lock(device, None, 0.1):
                    pass
        return "both held"

    bench = Bench(TPU, "concurrency", "t", get_profile("quick"), save=lambda r: None)
    try:
        assert bench.call(study, also_lock=[cpu, TPU]) == "both held"
    finally:
        bench.close()
    assert taken == [lock_key(cpu), lock_key(TPU)]  # sorted, not the bench's own device first
    with real_lock(TPU, None, 0.1), real_lock(cpu, None, 0.1):  # both released
        pass
