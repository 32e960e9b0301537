"""Tenants as processes (started by lab.child): one session per process, as a runtime that
lets one process own a device (the EdgeTPU) or a lab's serving setup would have it.

Each child loads its model, runs it once, says it is ready, waits for the shared window (sent to
every child once all are ready) and sends back its latencies. A child that fails sends its reason;
one that goes silent past the timeout is killed and reported hung.
"""

from __future__ import annotations

import time
from multiprocessing.connection import Connection
from typing import Any

from ..lab import child
from .tenants import (Feeder, Loader, LoadingRunner, TenantOutcome, TenantSpec, Window, describe_error, drive,
                      feeds_for)


def _tenant_main(conn: Connection, spec: TenantSpec, loader: Loader, feeder: Feeder | None) -> None:
    try:
        session = loader(spec.model, spec.device)
        feeds = feeds_for(session, spec, feeder)
        session.run(feeds)
        conn.send(("ready", session.settings()))
        order = conn.recv()  # ("go", start_ns, end_ns) on the host's monotonic clock, or ("stop",)
        if order[0] == "go":
            conn.send(("done", drive(session, feeds, order[1], order[2])))
        session.close()
    except Exception as exc:
        conn.send(("error", describe_error(exc)))


class ProcessRunner(LoadingRunner):
    """Runs every tenant in its own spawned process."""

    mode = "process"

    def run(self, tenants: list[TenantSpec], window: Window) -> list[TenantOutcome]:
        outcomes = [TenantOutcome(t.name, t.model.name) for t in tenants]
        procs: list[child.Child] = []
        try:
            for spec in tenants:
                procs.append(child.start(_tenant_main, spec, self.loader, self.feeder, name=f"tenant-{spec.name}"))
            load_timeout = window.timeout_s
            for outcome, proc in zip(outcomes, procs):
                kind, payload = _receive(proc.conn, load_timeout, "loading")
                if kind != "ready":
                    outcome.error = f"load failed: {payload}"
                    for other in outcomes:
                        if other.ok and other is not outcome:
                            other.error = f"not run: {outcome.name} could not be loaded"
                    return outcomes
                outcome.settings = payload
            start = time.monotonic_ns() + int(window.warmup_s * 1e9)
            for proc in procs:
                proc.conn.send(("go", start, start + int(window.duration_s * 1e9)))
            limit = window.warmup_s + window.duration_s + window.timeout_s
            for outcome, proc in zip(outcomes, procs):
                kind, payload = _receive(proc.conn, limit, "measuring")
                if kind == "done":
                    outcome.latencies_ns = list(payload)
                else:
                    outcome.error = payload if kind == "hung" else f"crashed: {payload}"
            return outcomes
        finally:
            for proc in procs:
                if proc.is_alive():
                    try:
                        proc.conn.send(("stop",))
                    except OSError:
                        pass  # it is going anyway
                proc.join(timeout=1.0)
                proc.close()


def _receive(pipe: Connection, timeout_s: float, doing: str) -> tuple[str, Any]:
    """The child's next message, or why there is none (it died, or it went silent)."""
    if not pipe.poll(timeout_s):
        return "hung", f"hung: no answer within {timeout_s:g} s while {doing}"
    try:
        return pipe.recv()
    except EOFError:
        return "error", f"the tenant process died while {doing}"
