"""The run store: reports/<time>-<id>/ holding run.json and one file per record.

Every write goes to a temporary file, is fsynced, then renamed over the target, so a crash
at any moment leaves each record either whole or absent, never truncated.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import EdgeAIError
from ..filecache import atomic_write
from .record import SCHEMA, SCHEMA_VERSION, Record

RUN_FILE = "run.json"
RECORDS_DIR = "records"
LATEST = "latest"


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON so that readers see the old file or the new one, never half of one."""
    text = json.dumps(data, indent=1, sort_keys=True, allow_nan=True, default=str)
    atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))


@dataclass
class RunStore:
    """One run directory being written."""

    path: Path
    run_id: str

    @classmethod
    def create(cls, root: Path, meta: dict[str, Any]) -> RunStore:
        run_id = uuid.uuid4().hex[:8]
        path = Path(root) / f"{time.strftime('%Y%m%d-%H%M%S')}-{run_id}"
        (path / RECORDS_DIR).mkdir(parents=True)
        store = cls(path, run_id)
        store.write_meta({**meta, "run_id": run_id, "started": time.time(), "status": "running"})
        point_latest(Path(root), path)
        return store

    def write_meta(self, meta: dict[str, Any]) -> None:
        write_json_atomic(self.path / RUN_FILE, {"schema": "pytest-edgeai/run",
                                                 "schema_version": SCHEMA_VERSION, **meta})

    def update_meta(self, **changes: Any) -> None:
        meta = json.loads((self.path / RUN_FILE).read_text(encoding="utf-8"))
        meta.update(changes)
        write_json_atomic(self.path / RUN_FILE, meta)

    def write(self, record: Record) -> Path:
        """Write (or rewrite, after claims are judged) one record."""
        record.run_id = self.run_id
        target = self.path / RECORDS_DIR / f"{int(record.created * 1000):014d}-{record.id}.json"
        write_json_atomic(target, record.to_dict())
        return target

    def finish(self, status: str = "complete") -> None:
        self.update_meta(status=status, finished=time.time())


def point_latest(root: Path, path: Path) -> None:
    """Make reports/latest name the run at ``path`` (a symlink, or latest.txt where links are refused)."""
    link = root / LATEST
    tmp = root / f".{LATEST}.{uuid.uuid4().hex[:6]}"
    try:
        tmp.symlink_to(path.name, target_is_directory=True)
        os.replace(tmp, link)
    except OSError:  # no symlinks (some Windows setups): a text file naming the run instead
        tmp.unlink(missing_ok=True)
        (root / f"{LATEST}.txt").write_text(path.name + "\n", encoding="utf-8")


@dataclass
class Run:
    """A run read back: its metadata, its readable records, and what could not be read."""

    path: Path
    meta: dict[str, Any]
    records: list[Record] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.meta.get("status") == "complete"


def resolve_run(ref: str | Path, root: Path | None = None) -> Path:
    """A run directory from a path, or 'latest' under ``root``."""
    p = Path(ref)
    if str(ref) == LATEST and root is not None:
        p = root / LATEST
        if not p.exists() and (root / f"{LATEST}.txt").exists():
            p = root / (root / f"{LATEST}.txt").read_text().strip()
    if not (p / RUN_FILE).is_file() and not (p / RECORDS_DIR).is_dir():
        raise EdgeAIError(f"{p}: not a run directory (no {RUN_FILE} or {RECORDS_DIR}/ inside)")
    return p.resolve()


def load_run(ref: str | Path, root: Path | None = None) -> Run:
    """Read a run; a corrupt or foreign record is reported in ``problems``, the rest are used."""
    path = resolve_run(ref, root)
    problems: list[str] = []
    try:
        meta = json.loads((path / RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        meta = {"status": "unknown"}
        problems.append(f"{path / RUN_FILE}: unreadable ({exc}); run metadata missing")
    records = []
    for file in sorted((path / RECORDS_DIR).glob("*.json")):
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            problems.append(f"{file}: unreadable or truncated record, skipped ({exc})")
            continue
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            problems.append(f"{file}: not a pytest-edgeai result record, skipped")
            continue
        version = data.get("schema_version")
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            problems.append(f"{file}: record schema version {version!r} is newer than this "
                            f"pytest-edgeai reads ({SCHEMA_VERSION}): upgrade pytest-edgeai; skipped")
            continue
        records.append(Record.from_dict(data))
    return Run(path=path, meta=meta, records=records, problems=problems)


def list_runs(root: Path) -> list[Path]:
    """Run directories under ``root``, oldest first."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink() and (p / RUN_FILE).is_file())
