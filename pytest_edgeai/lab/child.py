"""The one way this package starts a child process: a fresh Python (``python -m pytest_edgeai.lab.child FD``)
that knows the parent's registries, dies with its parent, and talks to it over one socket.

Every child (an isolated worker, a tenant, a capacity probe, a split stage) starts through :func:`start`,
so what a child must carry that a fresh interpreter would not know (the backends and meters a conftest
registered) is decided in one place: :func:`registries`.

A child dies with its parent even when it is stuck in native code holding the GIL, where a thread watching
the parent never runs: on Linux the kernel sends it SIGKILL when the parent goes (``prctl(PR_SET_PDEATHSIG)``,
set before anything else, then a check that the parent did not go before it was set). The kernel ties the
signal to the parent's *thread*: start children from a thread that outlives them (the main thread).
Where prctl is missing a watching thread does what it can.
"""

from __future__ import annotations

import ctypes
import faulthandler
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from .. import registry

PARENT_ENV = "EDGEAI_PARENT_PID"  # the pid whose death makes this process an orphan (see locks)
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
PARENT_CHECK_S = 1.0
LOG_TAIL_LINES = 40
ORPHANED_EXIT = 3


def registries() -> dict[str, dict[str, str]]:
    """What a child must be told: the backends and meters a conftest or plug-in added through the hooks
    (a fresh interpreter knows only the built-in ones and installed entry points)."""
    return registry.added()


def adopt(found: dict[str, dict[str, str]]) -> None:
    """In the child: the parent's registries."""
    registry.adopt(found)


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"crashed with {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with status {returncode}"


class Child:
    """A started child: its process and the connection to it (``conn``), with ``multiprocessing.Process``'s
    names for what callers ask of a process."""

    def __init__(self, proc: subprocess.Popen[bytes], conn: Connection, log_path: Path | None):
        self.proc, self.conn, self.log_path = proc, conn, log_path

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def exitcode(self) -> int | None:
        return self.proc.poll()

    def is_alive(self) -> bool:
        return self.proc.poll() is None

    def join(self, timeout: float | None = None) -> int | None:
        """The exit code once it has exited, None if it is still running after ``timeout`` seconds."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def close(self) -> None:
        """Kill it if it still runs; drop the connection and the log."""
        self.kill()
        self.conn.close()
        if self.log_path is not None:
            self.log_path.unlink(missing_ok=True)

    def log_tail(self) -> str:
        """The child's last words: from faulthandler's 'Fatal Python error' line when there is one."""
        if self.log_path is None:
            return ""
        try:
            with self.log_path.open("r", encoding="utf-8", errors="replace") as fh:
                lines = list(deque(fh, LOG_TAIL_LINES))
        except OSError:
            return ""
        start = next((i for i, line in enumerate(lines) if line.startswith("Fatal Python error")), 0)
        return "".join(line for line in lines[start:] if not line.startswith("Extension modules:")).rstrip()


def start(target: Callable[..., Any], *args: Any, name: str, log: bool = False) -> Child:
    """Run ``target(conn, *args)`` in a child; ``conn`` is its end of the connection. ``target`` is a
    module-level function and ``args`` pickle. With ``log`` the child's stdout and stderr (faulthandler's
    report of a native crash included) go to a file :meth:`Child.log_tail` quotes; else they are ours."""
    ours, theirs = socket.socketpair()
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:64]  # a device's name is the user's: never a path as it is
    log_path = Path(tempfile.mkstemp(prefix=f"edgeai-{safe}-", suffix=".log")[1]) if log else None
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p), PARENT_ENV: str(os.getpid())}
    out = log_path.open("wb") if log_path is not None else None
    try:
        proc = subprocess.Popen([sys.executable, "-m", "pytest_edgeai.lab.child", str(theirs.fileno())],
                                pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                env=env)
    finally:
        theirs.close()
        if out is not None:
            out.close()
    child = Child(proc, Connection(ours.detach()), log_path)
    try:  # the registries first: unpickling the target may import what they name
        child.conn.send(registries())
        child.conn.send((target, args))
    except BaseException:
        child.close()
        raise
    return child


def die_with_parent(parent: int) -> None:
    """Make sure this process does not outlive ``parent``, even stuck in native code holding the GIL."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        armed = sys.platform.startswith("linux") and libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):
        armed = False
    if os.getppid() != parent:  # it went before the signal was armed
        os._exit(ORPHANED_EXIT)
    if not armed:
        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(PARENT_CHECK_S)
            os._exit(ORPHANED_EXIT)

        threading.Thread(target=watch, name="edgeai-parent-watch", daemon=True).start()


def main(argv: list[str]) -> int:
    die_with_parent(int(os.environ.get(PARENT_ENV, os.getppid())))
    faulthandler.enable(all_threads=False)
    conn = Connection(int(argv[1]))
    try:
        adopt(conn.recv())
        target, args = conn.recv()
    except EOFError:  # the parent went before saying what to run
        return ORPHANED_EXIT
    target(conn, *args)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
