"""A file produced once per key and shared by concurrent processes (pytest-xdist workers).

The producer writes into a temporary path in the cache directory under a file lock; an atomic
rename publishes it, so an existing path is always complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from filelock import FileLock


def key(*parts: Any) -> str:
    """A stable hex digest of JSON-serialisable parts (sorted keys)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def cached_file(path: Path, produce: Callable[[Path], None]) -> Path:
    """``path``, calling ``produce(tmp)`` to create it the first time."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        if path.exists():
            return path
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
        os.close(fd)
        try:
            produce(Path(tmp))
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
    return path
