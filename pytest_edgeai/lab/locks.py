"""One measurement at a time per physical device, across processes (pytest-xdist workers, other runs).

The lock is an OS file lock (filelock: fcntl/flock on POSIX, msvcrt on Windows): the kernel drops it
when the holding process dies, so a lock left behind by a killed process never blocks the next one.

Devices that share hardware share the lock: a configured ``hardware_id`` names the physical device, and
without one every ``cpu`` device is the host's CPU, whatever runtime drives it.

A holder that outlived its session (a worker stuck in native code whose pytest was killed, where the
parent-death signal of lab.child could not be armed) would hold the lock for ever. So the holder writes
who it is beside the lock (``<key>.holder``: its pid, its start time, and the session it belongs to); a
process waiting for the lock reclaims it from a holder whose session is gone, killing the orphan, and says
so.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock, Timeout

from ..errors import DeviceUnavailable
from .child import PARENT_ENV

if TYPE_CHECKING:
    from ..devices import Device

LOCK_DIR_ENV = "EDGEAI_LOCK_DIR"
HOST_CPU_KINDS = ("cpu",)  # kinds that run on the host's own CPU
HOST_CPU_KEY = "host-cpu"
RECLAIM_CHECK_S = 1.0  # how often a waiting process looks at who holds the lock
RECLAIM_WAIT_S = 5.0  # how long a killed orphan may take to go

Tell = Callable[[str], None]


def default_lock_dir() -> Path:
    """Shared by every process on the host (the device is the host's), overridable for tests and labs."""
    return Path(os.environ.get(LOCK_DIR_ENV) or Path(tempfile.gettempdir()) / "pytest-edgeai-locks")


def device_key(device: Device) -> str:
    """The device as configured: its hardware_id when set (two entries may drive one device), else
    backend and name (a device lost mid-run is lost under this key)."""
    raw = device.hardware_id or f"{device.backend}-{device.name}"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", raw)


def lock_key(device: Device) -> str:
    """The hardware a measurement occupies: the configured hardware_id, else the host's CPU for a cpu kind
    (onnxruntime and OpenVINO on the CPU are one device), else the configured device."""
    if not device.hardware_id and device.kind in HOST_CPU_KINDS:
        return HOST_CPU_KEY
    return device_key(device)


def _proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, start time in clock ticks) of a live process from /proc; None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    return fields[0], int(fields[1]), int(fields[19])


def _write_holder(path: Path, device: Device) -> None:
    parent = os.environ.get(PARENT_ENV)
    stat = _proc_stat(os.getpid())
    holder = {"pid": os.getpid(), "started": stat[2] if stat else None, "device": device.name,
              "session": int(parent) if parent and parent.isdigit() else None}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(holder), encoding="utf-8")
    os.replace(tmp, path)


def _drop_holder(path: Path) -> None:
    try:
        if json.loads(path.read_text(encoding="utf-8")).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError, AttributeError):
        pass


def _orphaned_holder(path: Path) -> dict[str, Any] | None:
    """The holder written beside the lock when it is alive, is who it says it is, belongs to a session
    (a child of lab.child) and that session is gone; else None."""
    try:
        holder: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        pid, session, started = int(holder["pid"]), holder.get("session"), holder.get("started")
    except (OSError, ValueError, TypeError, KeyError):
        return None
    if session is None or started is None or pid == os.getpid():
        return None  # a session holding the lock itself, or a record that cannot be checked
    stat = _proc_stat(pid)
    if stat is None or stat[0] == "Z" or stat[2] != started:
        return None  # gone (the kernel drops its lock), or the pid now names another process
    if stat[1] == session and _proc_stat(session) is not None:
        return None  # its session is alive: a measurement, waited for
    return holder


def _reclaim(holder_path: Path, lock_path: Path, device: Device) -> str | None:
    """Kill an orphaned holder; the message saying so, or None when there was nothing to reclaim."""
    holder = _orphaned_holder(holder_path)
    if holder is None:
        return None
    pid = int(holder["pid"])
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + RECLAIM_WAIT_S
    while (stat := _proc_stat(pid)) is not None and stat[0] != "Z" and time.monotonic() < deadline:
        time.sleep(0.05)
    return (f"device {device.name}: its lock {lock_path} was held by pid {pid}, a worker whose session "
            f"(pid {holder['session']}) is gone; the orphan was killed and the lock reclaimed")


def _to_stderr(message: str) -> None:
    print(f"pytest-edgeai: {message}", file=sys.stderr, flush=True)


@contextmanager
def device_lock(device: Device, directory: Path | None = None, timeout_s: float = -1,
                tell: Tell = _to_stderr) -> Iterator[float]:
    """Hold the device's lock; yields the seconds spent waiting for it (a measurement elsewhere).
    ``tell`` gets the message when the lock was reclaimed from an orphaned holder."""
    directory = Path(directory) if directory else default_lock_dir()
    directory.mkdir(parents=True, exist_ok=True)
    key = lock_key(device)
    path, holder_path = directory / f"{key}.lock", directory / f"{key}.holder"
    lock = FileLock(str(path))
    t0 = time.monotonic()
    deadline = None if timeout_s < 0 else t0 + timeout_s
    while True:
        wait = RECLAIM_CHECK_S if deadline is None else max(0.0, min(RECLAIM_CHECK_S, deadline - time.monotonic()))
        try:
            lock.acquire(timeout=wait)
            break
        except Timeout:
            message = _reclaim(holder_path, path, device)
            if message is not None:
                tell(message)
            elif deadline is not None and time.monotonic() >= deadline:
                raise DeviceUnavailable(f"device {device.name}: its lock {path} is held by another measurement "
                                        f"(waited {timeout_s:.0f} s)") from None
    try:
        _write_holder(holder_path, device)
        yield time.monotonic() - t0
    finally:
        _drop_holder(holder_path)
        lock.release()


@contextmanager
def device_locks(devices: Iterable[Device], directory: Path | None = None, timeout_s: float = -1,
                 tell: Tell = _to_stderr) -> Iterator[float]:
    """Several devices' locks (a study spanning them), taken in one global order, by key, so two holders
    of overlapping sets cannot each wait for the other; yields the seconds spent waiting in all."""
    unique = {lock_key(d): d for d in devices}
    with ExitStack() as stack:
        yield sum(stack.enter_context(device_lock(unique[key], directory, timeout_s, tell)) for key in sorted(unique))
