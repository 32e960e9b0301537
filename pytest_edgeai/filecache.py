"""Files written whole or not at all, and files built once by whichever process gets there first.

Zoo models, converted and quantised variants, TensorRT engines and result records all go through here
(the caches under :func:`cache_dir`): the bytes go to a temporary file beside the target, are fsynced,
and an atomic rename publishes them, so a reader (or a crash) never sees half a file. Builds happen
under a lock next to the target, so concurrent pytest-xdist workers build each file once.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from filelock import FileLock


def cache_dir(kind: str = "models") -> Path:
    """Where built files of ``kind`` are cached ("models", "variants", "tflite", "tensorrt", ...).

    The zoo's models go to $EDGEAI_CACHE_DIR, else $XDG_CACHE_HOME/pytest-edgeai/models, else
    ~/.cache/pytest-edgeai/models; every other kind sits beside that folder."""
    if os.environ.get("EDGEAI_CACHE_DIR"):
        models = Path(os.environ["EDGEAI_CACHE_DIR"])
    else:
        models = Path(os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")) / "pytest-edgeai" / "models"
    return models if kind == "models" else models.parent / kind


def key(*parts: Any) -> str:
    """A stable hex digest of JSON-serialisable parts (sorted keys), for cache file names."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _publish(path: Path, produce: Callable[[Path], None]) -> None:
    """Run ``produce(tmp)``, make its bytes durable, then rename over ``path``."""
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        produce(tmp)
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write ``path`` so readers see the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)

    def produce(tmp: Path) -> None:
        with tmp.open("wb") as fh:
            write(fh)

    _publish(path, produce)


def build_once(path: Path, produce: Callable[[Path], None]) -> Path:
    """``path``, calling ``produce(tmp)`` to create it only if no process has published it yet."""
    if path.exists():  # published by rename, so existing means complete
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        if not path.exists():  # another process may have built it while we waited
            _publish(path, produce)
    return path
