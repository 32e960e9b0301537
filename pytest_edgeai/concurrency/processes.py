"""Tenants as processes (multiprocessing spawn): one session per process, as a runtime that
lets one process own a device (the EdgeTPU) or a lab's serving setup would have it.

Each child loads its model, runs it once, says it is ready, waits at the shared barrier and
sends back its latencies. A child that fails sends its reason; one that goes silent past the
timeout is killed and reported hung.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from typing import Any

from ..backends.base import BUILTIN, adopt_registry
from .tenants import (Feeder, Loader, LoadingRunner, TenantOutcome, TenantSpec, Window, describe_error, drive,
                      feeds_for)


def _tenant_main(spec: TenantSpec, loader: Loader, feeder: Feeder | None, conn, barrier, times,
                 registry: dict[str, str]) -> None:
    try:
        adopt_registry(registry)
        session = loader(spec.model, spec.device)
        feeds = feeds_for(session, spec, feeder)
        session.run(feeds)
        conn.send(("ready", session.settings()))
        barrier.wait()
        conn.send(("done", drive(session, feeds, times[0], times[1])))
        session.close()
    except Exception as exc:
        conn.send(("error", describe_error(exc)))


class ProcessRunner(LoadingRunner):
    """Runs every tenant in its own spawned process."""

    mode = "process"

    def run(self, tenants: list[TenantSpec], window: Window) -> list[TenantOutcome]:
        ctx = mp.get_context("spawn")
        barrier = ctx.Barrier(len(tenants) + 1)
        times = ctx.Array("q", 2)
        outcomes = [TenantOutcome(t.name, t.model.name) for t in tenants]
        pipes, procs = [], []
        try:
            for spec in tenants:
                parent, child = ctx.Pipe(duplex=False)
                proc = ctx.Process(target=_tenant_main, args=(spec, self.loader, self.feeder, child, barrier, times,
                                                                   dict(BUILTIN)),
                                   name=f"edgeai-{spec.name}", daemon=True)
                proc.start()
                child.close()
                pipes.append(parent)
                procs.append(proc)
            load_timeout = window.timeout_s
            for outcome, pipe in zip(outcomes, pipes):
                kind, payload = _receive(pipe, load_timeout, "loading")
                if kind != "ready":
                    outcome.error = f"load failed: {payload}"
                    barrier.abort()
                    for other in outcomes:
                        if other.ok and other is not outcome:
                            other.error = f"not run: {outcome.name} could not be loaded"
                    return outcomes
                outcome.settings = payload
            start = time.monotonic_ns() + int(window.warmup_s * 1e9)
            times[0], times[1] = start, start + int(window.duration_s * 1e9)
            barrier.wait(timeout=window.timeout_s)
            limit = window.warmup_s + window.duration_s + window.timeout_s
            for outcome, pipe in zip(outcomes, pipes):
                kind, payload = _receive(pipe, limit, "measuring")
                if kind == "done":
                    outcome.latencies_ns = list(payload)
                else:
                    outcome.error = payload if kind == "hung" else f"crashed: {payload}"
            return outcomes
        finally:
            for proc in procs:
                proc.join(timeout=1.0)
                if proc.is_alive():
                    proc.kill()
                    proc.join()


def _receive(pipe, timeout_s: float, doing: str) -> tuple[str, Any]:
    """The child's next message, or why there is none (it died, or it went silent)."""
    if not pipe.poll(timeout_s):
        return "hung", f"hung: no answer within {timeout_s:g} s while {doing}"
    try:
        return pipe.recv()
    except EOFError:
        return "error", f"the tenant process died while {doing}"
