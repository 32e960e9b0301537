"""Tenants as threads of this process: one session each, loaded here one after another.

Loading in order makes a device that refuses another session fail at that tenant, with the
runtime's reason. A tenant that raises ends with its error; one that is still running
``timeout_s`` after the window closed is reported hung (a thread cannot be killed; it is a
daemon, so it never keeps the session alive, and its session is left open rather than closed
under it).
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from .tenants import (LoadingRunner, TenantOutcome, TenantSpec, Window, describe_error, drive,
                      feeds_for)

if TYPE_CHECKING:
    from ..backends.base import Session


class ThreadRunner(LoadingRunner):
    """Runs every tenant in its own thread of this process."""

    mode = "thread"

    def run(self, tenants: list[TenantSpec], window: Window) -> list[TenantOutcome]:
        outcomes = [TenantOutcome(t.name, t.model.name) for t in tenants]
        sessions: list[Session] = []
        hung: set[int] = set()
        try:
            feeds = []
            for spec, outcome in zip(tenants, outcomes):
                try:
                    session = self.loader(spec.model, spec.device)
                    sessions.append(session)
                    outcome.settings = session.settings()
                    feed = feeds_for(session, spec, self.feeder)
                    session.run(feed)  # the first inference is excluded, as everywhere
                    feeds.append(feed)
                except Exception as exc:
                    outcome.error = f"load failed: {describe_error(exc)}"
                    for other in outcomes:
                        if other is not outcome and other.ok:
                            other.error = f"not run: {spec.name} could not be loaded"
                    return outcomes
            hung = self._run_threads(sessions, feeds, outcomes, window)
        finally:
            for i, session in enumerate(sessions):
                if i not in hung:
                    session.close()
        return outcomes

    def _run_threads(self, sessions, feeds, outcomes, window: Window) -> set[int]:
        times: list[int] = []

        def open_window() -> None:
            start = time.monotonic_ns() + int(window.warmup_s * 1e9)
            times.extend((start, start + int(window.duration_s * 1e9)))

        barrier = threading.Barrier(len(sessions) + 1, action=open_window)
        deadline_s = window.warmup_s + window.duration_s + window.timeout_s

        def tenant(i: int) -> None:
            try:
                barrier.wait(timeout=window.timeout_s)
                outcomes[i].latencies_ns = drive(sessions[i], feeds[i], times[0], times[1])
            except threading.BrokenBarrierError:
                outcomes[i].error = "the tenants never started together (barrier broken)"
            except Exception as exc:
                outcomes[i].error = f"crashed: {describe_error(exc)}"

        threads = [threading.Thread(target=tenant, args=(i,), name=f"edgeai-tenant-{i}", daemon=True)
                   for i in range(len(sessions))]
        for t in threads:
            t.start()
        barrier.wait(timeout=window.timeout_s)
        end = time.monotonic() + deadline_s
        hung: set[int] = set()
        for i, t in enumerate(threads):
            t.join(max(0.0, end - time.monotonic()))
            if t.is_alive():
                hung.add(i)
                outcomes[i].error = (f"hung: still running {window.timeout_s:g} s after the "
                                     f"measurement window closed")
                outcomes[i].latencies_ns = []
        return hung
