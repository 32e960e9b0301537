"""The isolated worker: a child process that owns one device's runtime and measures on request.

Requests are ``("measure", MeasureRequest, progress?)`` and ``("call", CallRequest, False)`` (a suite's
study, see ``execute.call``).

Started by ``isolation.Worker`` as ``python -m pytest_edgeai.lab.worker FD``; FD is its end of a socket
pair carrying pickled messages. A native crash here kills this process only; faulthandler writes the
Python stack of the crash to stderr (a log file the parent quotes). The worker exits when its parent
goes away, so a killed pytest leaves no process measuring behind it.
"""

from __future__ import annotations

import faulthandler
import os
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

PARENT_CHECK_S = 1.0


def _watch_parent(parent: int) -> None:
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_S)
        os._exit(3)

    threading.Thread(target=watch, name="edgeai-parent-watch", daemon=True).start()


def serve(conn: Connection) -> None:
    from ..backends import base
    from ..errors import EdgeAIError, to_wire
    from .execute import ModelCache, call, execute

    _, registry = conn.recv()
    base.adopt_registry(registry)
    conn.send(("ready", os.getpid()))
    cache = ModelCache()
    try:
        while True:
            try:
                message: Any = conn.recv()
            except EOFError:
                return
            if message[0] == "close":
                return
            kind, request, want_progress = message
            notify = lambda event, value: conn.send((event, value))  # noqa: E731
            try:
                if kind == "call":
                    result = call(request, cache, notify)
                else:
                    result = execute(request, cache, notify=notify,
                                     progress=(lambda p: conn.send(("progress", p))) if want_progress else None)
                conn.send(("done", result))
            except EdgeAIError as exc:
                conn.send(("error", *to_wire(exc)))
            except Exception as exc:  # e.g. a result that cannot be pickled: say so, keep serving
                conn.send(("error", "EdgeAIError", f"isolated worker: {type(exc).__name__}: {exc}", {}))
    finally:
        cache.close()


def main(argv: list[str]) -> int:
    faulthandler.enable(all_threads=False)
    _watch_parent(os.getppid())
    serve(Connection(int(argv[1])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
