"""The run store, and the one owner of its on-disk format: reports/<time>-<id>/ holding run.json and
records/<created-ms>-<id>.json.

Every write goes to a temporary file, is fsynced, then renamed over the target, so a crash at any
moment leaves each record either whole or absent, never truncated. Every read trusts nothing: a
file that is not a regular file, is too large, does not parse or does not have the record's shape
is named in ``Run.problems`` and skipped, and every other record is used.
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import stat
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ..errors import EdgeAIError
from ..filecache import atomic_write
from .record import SCHEMA, SCHEMA_VERSION, Record

RUN_FILE = "run.json"
RUN_SCHEMA = "pytest-edgeai/run"
RECORDS_DIR = "records"
LATEST = "latest"
MAX_FILE_BYTES = 256 * 1024 * 1024  # far above any record (a full-profile run keeps every sample)
MAX_DEPTH = 64  # records nest a few levels; deeper is not a record, and would exhaust the stack later

# Record fields a reader relies on, with the JSON types each may hold (version 1).
_DICT, _LIST, _STR, _NUMBER = (dict,), (list,), (str,), (int, float)
RECORD_FIELDS: dict[str, tuple[type, ...]] = {
    "suite": _STR, "test_id": _STR, "device": _DICT, "backend": _DICT, "model": _DICT, "scenario": _DICT,
    "id": _STR, "created": _NUMBER, "metrics": _DICT, "samples": _DICT, "claims": _LIST, "warnings": _LIST,
    "status": _STR, "error": (str, type(None)), "extra": _DICT, "run_id": _STR,
}
REQUIRED_FIELDS = ("suite", "test_id", "device", "backend", "model", "scenario", "id", "created")
# run.json keys readers use, with their types; a key of the wrong type is dropped with a problem.
RUN_FIELDS: dict[str, tuple[type, ...]] = {
    "run_id": _STR, "started": _NUMBER, "finished": _NUMBER, "status": _STR, "options": _DICT,
    "profile": (dict, str, type(None)), "devices": _LIST, "devices_file": (str, type(None)),
    "environment": _DICT, "release": (str, type(None)), "baseline": (str, type(None)), "sources": _LIST,
    "merge_problems": _LIST, "tests": _LIST,
}
RECORD_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")  # part of the record's file name (merge writes it)
MAX_CREATED_S = 1e12  # far past any real time; the other part of the file name, where 1e300 would be too long a name
OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")


def new_run_id() -> str:
    return uuid.uuid4().hex[:8]


def run_dir_name(run_id: str, started: float | None = None) -> str:
    """A run directory's name: local start time, then the id (sorts by time, unique by id)."""
    return f"{time.strftime('%Y%m%d-%H%M%S', time.localtime(started))}-{run_id}"


def record_file_name(record: Record) -> str:
    """A record's file name: creation time in ms, then its id (a rewrite lands on the same file)."""
    return f"{int(record.created * 1000):014d}-{record.id}.json"


def run_meta(run_id: str, **meta: Any) -> dict[str, Any]:
    """run.json's content: the schema and version, then what the writer knows about the run."""
    return {"schema": RUN_SCHEMA, "schema_version": SCHEMA_VERSION, **meta, "run_id": run_id}


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON so that readers see the old file or the new one, never half of one."""
    raw = json.dumps(data, indent=1, sort_keys=True, allow_nan=True, default=str).encode("utf-8")

    def write(fh: IO[bytes]) -> None:
        fh.write(raw)

    atomic_write(path, write)


def write_record(run_dir: Path, record: Record) -> Path:
    """Write (or rewrite) one record into a run directory."""
    target = Path(run_dir) / RECORDS_DIR / record_file_name(record)
    write_json_atomic(target, record.to_dict())
    return target


def create_run_file(run_dir: Path, meta: dict[str, Any]) -> bool:
    """Write run.json unless it exists (atomic create-if-absent); True if this call created it."""
    target = Path(run_dir) / RUN_FILE
    if target.exists():
        return False
    draft = Path(run_dir) / f".{RUN_FILE}.{uuid.uuid4().hex[:6]}"
    write_json_atomic(draft, meta)
    try:
        os.link(draft, target)  # exactly one process creates the run
        return True
    except FileExistsError:
        return False
    finally:
        draft.unlink(missing_ok=True)


@dataclass
class TestOutcome:
    """How one test of the run ended and why (a skip's or xfail's reason, a failure's message):
    run.json's ``tests``, so a report says what was skipped and what errored, not only what was measured."""

    __test__ = False  # not a pytest test class

    test_id: str
    suite: str
    outcome: str  # one of OUTCOMES
    reason: str = ""

    @classmethod
    def from_dict(cls, data: Any) -> TestOutcome | None:
        """The outcome in a run.json entry, or None when the entry does not have its shape."""
        if not (isinstance(data, dict) and data.get("outcome") in OUTCOMES and isinstance(data.get("test_id"), str)
                and all(isinstance(data.get(k, ""), str) for k in ("suite", "reason"))):
            return None
        return cls(data["test_id"], data.get("suite", ""), data["outcome"], data.get("reason", ""))


@dataclass
class RunStore:
    """One run directory being written."""

    path: Path
    run_id: str

    @classmethod
    def create(cls, root: Path, meta: dict[str, Any]) -> RunStore:
        run_id = new_run_id()
        path = Path(root) / run_dir_name(run_id)
        (path / RECORDS_DIR).mkdir(parents=True)
        store = cls(path, run_id)
        store.write_meta({**meta, "started": time.time(), "status": "running"})
        return store

    def write_meta(self, meta: dict[str, Any]) -> None:
        write_json_atomic(self.path / RUN_FILE, run_meta(self.run_id, **meta))

    def update_meta(self, **changes: Any) -> None:
        meta, _ = read_meta(self.path)
        meta.update(changes)
        write_json_atomic(self.path / RUN_FILE, meta)

    def write(self, record: Record) -> Path:
        """Write (or rewrite, after claims are judged) one record."""
        record.run_id = self.run_id
        target = write_record(self.path, record)
        point_latest(self.path.parent, self.path)
        return target

    def finish(self, status: str = "complete") -> None:
        self.update_meta(status=status, finished=time.time())


def report_dir_problem(root: Path) -> str | None:
    """Why runs cannot be written under ``root`` (checked before anything is measured), or None."""
    path = Path(root)
    try:
        while not path.exists() and not path.is_symlink() and path != path.parent:
            path = path.parent
        if not path.is_dir():
            return f"{path} is {'a dangling link' if path.is_symlink() and not path.exists() else 'not a directory'}"
    except OSError as exc:  # a symlink loop, a name too long
        return f"{path}: {exc.strerror or exc}"
    if not os.access(path, os.W_OK | os.X_OK):
        return f"{path} is not writable"
    return None


def point_latest(root: Path, path: Path) -> None:
    """Make ``root/latest`` name the run at ``path`` (a symlink, else latest.txt) once it holds a record:
    a run that measured nothing (every test skipped, a device that was not there) never becomes latest,
    so ``latest`` and ``compare latest ...`` keep the last run that measured something."""
    link = root / LATEST
    if not has_records(path) or (link.is_symlink() and os.readlink(link) == path.name):
        return
    tmp = root / f".{LATEST}.{uuid.uuid4().hex[:6]}"
    try:
        tmp.symlink_to(path.name, target_is_directory=True)
        os.replace(tmp, link)
    except OSError:  # no symlinks (some Windows setups): a text file naming the run instead
        tmp.unlink(missing_ok=True)
        (root / f"{LATEST}.txt").write_text(path.name + "\n", encoding="utf-8")


def has_records(path: Path) -> bool:
    """Whether a run directory holds at least one record file (looks no further than the first)."""
    try:
        with os.scandir(path / RECORDS_DIR) as entries:
            return any(e.name.endswith(".json") and not e.name.startswith(".") for e in entries)
    except OSError:
        return False


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

    @property
    def outcomes(self) -> list[TestOutcome]:
        """The tests' outcomes, as read_meta kept them (none for a run written before they were recorded)."""
        return [o for o in map(TestOutcome.from_dict, self.meta.get("tests", [])) if o is not None]


def resolve_run(ref: str | Path, root: Path | None = None) -> Path:
    """A run directory from a path, or 'latest' under ``root``."""
    p = Path(ref)
    if str(ref) == LATEST and root is not None:
        p = root / LATEST
        if not p.exists() and (root / f"{LATEST}.txt").exists():
            p = root / (root / f"{LATEST}.txt").read_text().strip()
    try:
        found = (p / RUN_FILE).is_file() or (p / RECORDS_DIR).exists() or (p / RECORDS_DIR).is_symlink()
    except OSError as exc:  # a symlink loop, a name too long
        raise EdgeAIError(f"{p}: cannot be read as a run directory ({exc.strerror or exc})") from None
    if not found:
        raise EdgeAIError(f"{p}: not a run directory (no {RUN_FILE} or {RECORDS_DIR}/ inside)")
    return p.resolve()


def read_json(path: Path, limit: int = MAX_FILE_BYTES) -> tuple[Any, str | None]:
    """(data, None), or (None, why not): only a regular file of at most ``limit`` bytes is read, so a
    FIFO cannot hang the reader and a link to /dev/zero cannot exhaust memory."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        return None, f"cannot be opened ({exc.strerror or exc})"
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None, "not a regular file"
        if info.st_size > limit:
            return None, f"{info.st_size} bytes, larger than the {limit} a reader accepts"
        with os.fdopen(fd, "rb", closefd=False) as fh:
            raw = fh.read(limit + 1)
    except OSError as exc:
        return None, f"cannot be read ({exc.strerror or exc})"
    finally:
        os.close(fd)
    if len(raw) > limit:
        return None, f"larger than the {limit} bytes a reader accepts"
    if _nesting_exceeds(raw, MAX_DEPTH):  # before json's C parser, whose stack a raised recursion limit lets overflow
        return None, "nested too deeply to be a record"
    try:
        return json.loads(raw.decode("utf-8")), None
    except RecursionError:
        return None, "nested too deeply to be a record"
    except (UnicodeDecodeError, ValueError) as exc:
        return None, f"unreadable or truncated record ({exc})"


def read_meta(run_dir: Path) -> tuple[dict[str, Any], list[str]]:
    """run.json as a dict whose known keys have their documented types, and the problems found."""
    path = Path(run_dir) / RUN_FILE
    data, why = read_json(path)
    if why is not None:
        return {"status": "unknown"}, [f"{path}: {why}; run metadata missing"]
    if not isinstance(data, dict):
        return {"status": "unknown"}, [f"{path}: is {_kind(data)}, not an object; run metadata missing"]
    problems = []
    if _too_deep(data):
        return {"status": "unknown"}, [f"{path}: nested deeper than {MAX_DEPTH} levels; run metadata missing"]
    for key, types in RUN_FIELDS.items():
        if key in data and not _is(data[key], types):
            problems.append(f"{path}: {key} is {_kind(data[key])}, not {_names(types)}; ignored")
            del data[key]
    bad = [t for t in data.get("tests", []) if TestOutcome.from_dict(t) is None]
    if bad:
        problems.append(f"{path}: {len(bad)} test outcome(s) without a test_id and a known outcome; ignored")
    return data, problems


def check_record(data: Any) -> str | None:
    """Why ``data`` is not a record this version reads, or None (numbers normalised in place)."""
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        return "not a pytest-edgeai result record"
    version = data.get("schema_version")
    if "schema_version" not in data or version is None:
        return "has no schema_version"
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        return f"schema_version {version!r} is not a version (a whole number from 1)"
    if version > SCHEMA_VERSION:
        return (f"record schema version {version} is newer than this pytest-edgeai reads "
                f"({SCHEMA_VERSION}): upgrade pytest-edgeai")
    if _too_deep(data):
        return f"nested deeper than {MAX_DEPTH} levels"
    missing = [k for k in REQUIRED_FIELDS if k not in data]
    if missing:
        return f"missing {', '.join(missing)}"
    for key, types in RECORD_FIELDS.items():
        if key in data and not _is(data[key], types):
            return f"{key} is {_kind(data[key])}, not {_names(types)}"
    if not RECORD_ID.fullmatch(data["id"]):
        return f"id {_short(data['id'])} is not a record id (letters, digits, '_' and '-': it names the record's file)"
    if not _finite(data["created"]) or abs(data["created"]) >= MAX_CREATED_S:
        return f"created {data['created']!r} is not a time (seconds since 1970)"
    for name, entry in data.get("metrics", {}).items():
        if not isinstance(entry, dict):
            return f"metric {name!r} is {_kind(entry)}, not an object with value and unit"
        value = entry.get("value")
        if value is not None and not _number(value):
            return f"metric {name!r} has value {_short(value)}, not a number"
        if isinstance(value, int) and abs(value) >= 2**63:  # no C integer holds it: numpy would choke
            entry["value"] = float(value)
        ci = entry.get("ci95")
        if ci is not None and not (isinstance(ci, list) and len(ci) == 2 and all(_number(v) for v in ci)):
            return f"metric {name!r} has ci95 {_short(ci)}, not a pair of numbers"
        windows = entry.get("windows")
        if windows is not None and not (isinstance(windows, list) and all(_number(v) for v in windows)):
            return f"metric {name!r} has windows {_short(windows)}, not an array of numbers"
        rounds = entry.get("rounds")
        if rounds is not None and (isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 0):
            return f"metric {name!r} has rounds {_short(rounds)}, not a count of rounds"
    for name, values in data.get("samples", {}).items():
        if not isinstance(values, list) or not all(_number(v) for v in values):
            return f"samples {name!r} are not an array of numbers"
        data["samples"][name] = [float(v) for v in values]
    if not all(isinstance(c, dict) for c in data.get("claims", [])):
        return "claims holds something that is not an object"
    if not all(isinstance(w, str) for w in data.get("warnings", [])):
        return "warnings holds something that is not a string"
    return None


def load_run(ref: str | Path, root: Path | None = None) -> Run:
    """Read a run; a corrupt, foreign or hostile record is reported in ``problems``, the rest are used."""
    path = resolve_run(ref, root)
    meta, problems = read_meta(path)
    records = []
    for file in _record_files(path, problems):
        data, why = read_json(file)
        if why is None:
            why = check_record(data)
        if why is not None:
            problems.append(f"{file}: {why}; skipped")
            continue
        records.append(Record.from_dict(data))
    return Run(path=path, meta=meta, records=records, problems=problems)


def _record_files(run_dir: Path, problems: list[str]) -> list[Path]:
    """The record files of a run: ``*.json`` under records/, not the temporary files of a write in
    progress (dotfiles); a records/ that is not a directory is a problem, not an empty run."""
    directory = run_dir / RECORDS_DIR
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        if directory.is_symlink():
            problems.append(f"{directory}: a symlink to nothing; no records read")
        return []
    except OSError as exc:
        why = {errno.ENOTDIR: "is a file, not a directory", errno.ELOOP: "is a symlink loop"}.get(
            exc.errno or 0, f"cannot be listed ({exc.strerror or exc})")
        problems.append(f"{directory}: {why}; no records read")
        return []
    return [directory / n for n in sorted(names) if n.endswith(".json") and not n.startswith(".")]


def list_runs(root: Path) -> list[Path]:
    """Run directories under ``root``, oldest first."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink() and (p / RUN_FILE).is_file())


def _is(value: Any, types: tuple[type, ...]) -> bool:
    if isinstance(value, bool):
        return bool in types
    return isinstance(value, types)


def _number(value: Any) -> bool:
    """A JSON number a float can hold (NaN and infinities included: records may say 'not measured')."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        float(value)
    except OverflowError:
        return False
    return True


def _finite(value: Any) -> bool:
    return _number(value) and math.isfinite(float(value))


_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def _nesting_exceeds(raw: bytes, limit: int) -> bool:
    """Whether JSON text nests arrays and objects deeper than ``limit`` (strings skipped; counted
    only when there are enough brackets to matter, so a normal record costs two byte counts)."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    depth = 0
    for token in _TOKENS.finditer(raw):
        char = token.group()[:1]
        if char in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        elif char in (b"]", b"}"):
            depth -= 1
    return False


def _too_deep(data: Any) -> bool:
    """Deeper than MAX_DEPTH (walked without recursion, so the check itself cannot overflow)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values() if isinstance(v, (dict, list)))
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value if isinstance(v, (dict, list)))
    return False


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def _names(types: tuple[type, ...]) -> str:
    return " or ".join(dict.fromkeys({dict: "an object", list: "an array", str: "a string", int: "a number",
                                      float: "a number", type(None): "null"}[t] for t in types))


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
