"""One measurement at a time per physical device, across processes (pytest-xdist workers, other runs).

The lock is an OS file lock (filelock: fcntl/flock on POSIX, msvcrt on Windows): the kernel drops it
when the holding process dies, so a lock left behind by a killed process never blocks the next one.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import DeviceUnavailable

if TYPE_CHECKING:
    from ..devices import Device

LOCK_DIR_ENV = "EDGEAI_LOCK_DIR"


def default_lock_dir() -> Path:
    """Shared by every process on the host (the device is the host's), overridable for tests and labs."""
    return Path(os.environ.get(LOCK_DIR_ENV) or Path(tempfile.gettempdir()) / "pytest-edgeai-locks")


def device_key(device: Device) -> str:
    """The physical device: its hardware_id when configured (two entries may drive one device), else
    backend and name."""
    raw = device.hardware_id or f"{device.backend}-{device.name}"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", raw)


@contextmanager
def device_lock(device: Device, directory: Path | None = None,
                timeout_s: float = -1) -> Iterator[float]:
    """Hold the device's lock; yields the seconds spent waiting for it (a measurement elsewhere)."""
    from filelock import FileLock, Timeout

    directory = Path(directory) if directory else default_lock_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{device_key(device)}.lock"
    lock = FileLock(str(path), timeout=timeout_s)
    t0 = time.monotonic()
    try:
        lock.acquire()
    except Timeout:
        raise DeviceUnavailable(f"device {device.name}: its lock {path} is held by another measurement "
                                f"(waited {timeout_s:.0f} s)") from None
    try:
        yield time.monotonic() - t0
    finally:
        lock.release()


@contextmanager
def device_locks(devices: Iterable[Device], directory: Path | None = None, timeout_s: float = -1) -> Iterator[float]:
    """Several devices' locks (a study spanning them), taken in one global order, by key, so two holders
    of overlapping sets cannot each wait for the other; yields the seconds spent waiting in all."""
    unique = {device_key(d): d for d in devices}
    with ExitStack() as stack:
        yield sum(stack.enter_context(device_lock(unique[key], directory, timeout_s)) for key in sorted(unique))
