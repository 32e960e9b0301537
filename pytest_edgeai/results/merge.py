"""Merge runs from several benches (or several nights) into one run, e.g. for one report.

Records keep their ids and their original run_id; run.json lists the sources it came from.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..errors import EdgeAIError
from .compare import run_release, run_started
from .store import RECORDS_DIR, RUN_FILE, load_run, new_run_id, run_meta, write_json_atomic, write_record


def merge_runs(sources: list[str | Path], output: Path, root: Path | None = None) -> tuple[Path, list[str]]:
    """Write the merged run to ``output`` (which must not exist); return it and the problems seen."""
    output = Path(output)
    if output.exists() and any(output.iterdir()):
        raise EdgeAIError(f"{output}: already exists and is not empty; merge writes a new run directory")
    runs = [load_run(s, root) for s in sources]
    problems: list[str] = [p for r in runs for p in r.problems]
    seen: set[str] = set()
    described: list[dict[str, Any]] = []
    for run in runs:
        kept = 0
        for record in run.records:
            if record.id in seen:
                problems.append(f"{run.path}: record {record.id} is already in the merge (same record in two "
                                f"sources?); kept once")
                continue
            seen.add(record.id)
            write_record(output, record)
            kept += 1
        env = run.meta.get("environment") or {}
        described.append({"path": str(run.path), "run_id": run.meta.get("run_id") or run.path.name,
                          "status": run.meta.get("status"), "host": env.get("host"), "records": kept,
                          "release": run_release(run.meta), "started": run_started(run),
                          "environment": env})
    (output / RECORDS_DIR).mkdir(parents=True, exist_ok=True)
    releases = {d["release"] for d in described}
    incomplete = [d["run_id"] for d in described if d["status"] != "complete"]
    write_json_atomic(output / RUN_FILE, run_meta(
        new_run_id(), started=min(d["started"] for d in described), finished=time.time(),
        status="complete" if not incomplete else f"incomplete sources: {', '.join(incomplete)}",
        release=releases.pop() if len(releases) == 1 else None,
        environment=described[0]["environment"] if described else {},
        profile=runs[0].meta.get("profile") if runs else None,
        sources=[{k: v for k, v in d.items() if k != "environment"} for d in described],
        tests=[asdict(o) for run in runs for o in run.outcomes],  # each source's tests, so skips stay said
        merge_problems=problems))
    return output, problems
