"""One run for a whole pytest-xdist session, local workers or remote ones over SSH.

The controller plans the run (a path and an id) and hands it to every worker in ``workerinput``. A worker
on the controller's host writes its records straight into that directory as it measures (atomic files
with unique names, so a worker that dies loses nothing written); a worker on another host writes into a
copy of the run under its own report directory. Either way every record also travels back to the
controller attached to the test's report (``user_properties``, which xdist serialises), and the
controller writes it into the run (the same file name, so a local record is simply rewritten).
The directory is created by whoever needs it first, so a session that measures nothing leaves no run.
"""

from __future__ import annotations

import json
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..results.record import Record
from ..results.store import RECORDS_DIR, RunStore, create_run_file, new_run_id, run_dir_name, run_meta

WORKERINPUT_KEY = "edgeai_run"
RECORD_PROPERTY = "edgeai_record"
ENVIRONMENT_OUTPUT_KEY = "edgeai_environment"


@dataclass(frozen=True)
class RunPlan:
    path: str
    run_id: str
    host: str
    same_filesystem: bool = True  # False for a worker on another machine (ssh=, socket=)


def plan_run(report_dir: Path) -> RunPlan:
    run_id = new_run_id()
    path = Path(report_dir).resolve() / run_dir_name(run_id)
    return RunPlan(str(path), run_id, socket.gethostname())


def for_worker(plan: RunPlan, popen_gateway: bool) -> dict[str, Any]:
    """What a worker gets in workerinput: only a local (popen) worker shares the controller's disk."""
    return asdict(RunPlan(plan.path, plan.run_id, plan.host, same_filesystem=popen_gateway))


def from_workerinput(workerinput: dict[str, Any] | None) -> RunPlan | None:
    data = (workerinput or {}).get(WORKERINPUT_KEY)
    return RunPlan(**data) if data else None


def local_path(plan: RunPlan, report_dir: Path) -> Path:
    """Where this process writes the run: the controller's directory, or its copy on this host."""
    if plan.same_filesystem:
        return Path(plan.path)
    return Path(report_dir).resolve() / Path(plan.path).name


def open_shared_run(path: Path, run_id: str, meta: dict[str, Any]) -> RunStore:
    """Join the run at ``path``, creating its run.json if nobody has yet ('latest' moves to it with its first
    record, which ``RunStore.write`` does)."""
    (path / RECORDS_DIR).mkdir(parents=True, exist_ok=True)
    create_run_file(path, run_meta(run_id, **meta, started=time.time(), status="running"))
    return RunStore(path, run_id)


def record_properties(records: list[Record]) -> list[tuple[str, str]]:
    """Records as report properties (JSON text: survives xdist's serialisation as it is)."""
    latest = {r.id: r for r in records}
    return [(RECORD_PROPERTY, json.dumps(r.to_dict(), default=str)) for r in latest.values()]


def take_records(user_properties: list[tuple[str, Any]]) -> list[Record]:
    """Remove the records from a report's properties (so junitxml never sees them) and return them."""
    records = [Record.from_dict(json.loads(value)) for name, value in user_properties if name == RECORD_PROPERTY]
    user_properties[:] = [p for p in user_properties if p[0] != RECORD_PROPERTY]
    return records
