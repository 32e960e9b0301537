"""Build-once files shared by parallel workers: converted models, compiled engines.

A file is produced under a lock next to it and published with an atomic rename, so a reader
sees a complete file or none, and concurrent pytest-xdist workers build it once.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock


def build_once(path: Path, build: Callable[[], bytes]) -> Path:
    """``path``, calling ``build`` for its bytes only if no process has written it yet."""
    if path.exists():  # written by os.replace, so existing means complete
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        if not path.exists():
            data = build()
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
    return path
