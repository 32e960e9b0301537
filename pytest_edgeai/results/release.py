"""Which release a run measured, and finding a baseline run: a path, 'latest', or 'release:TAG'."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import EdgeAIError
from .store import LATEST, Run, list_runs, read_meta, resolve_run

RELEASE_PREFIX = "release:"


def run_release(meta: dict[str, Any]) -> str | None:
    """--edgeai-release, else the checkout's exact git tag, else None."""
    options = meta.get("options") or {}
    git = (meta.get("environment") or {}).get("git") or {}
    return meta.get("release") or options.get("edgeai_release") or git.get("tag") or None


def run_started(run: Run) -> float:
    started = run.meta.get("started")
    if isinstance(started, (int, float)):
        return float(started)
    return min((r.created for r in run.records), default=0.0)


def find_run(ref: str | Path, report_dir: Path, exclude: Path | None = None) -> Path:
    """A run directory from a path, 'latest' (excluding ``exclude``, the run in progress) or 'release:TAG'."""
    text = str(ref)
    excluded = exclude.resolve() if exclude else None
    if text.startswith(RELEASE_PREFIX):
        tag = text[len(RELEASE_PREFIX):]
        found = []
        for path in list_runs(report_dir):
            if path.resolve() == excluded:
                continue
            meta = _meta(path)
            if run_release(meta) == tag:
                found.append((float(meta.get("started") or 0.0), path.name, path))
        if not found:
            raise EdgeAIError(f"no run of release {tag!r} under {report_dir} "
                              f"(a run records its release from --edgeai-release or the checkout's git tag)")
        return max(found)[2].resolve()
    if text == LATEST:
        runs = [p for p in list_runs(report_dir) if p.resolve() != excluded]
        if not runs:
            raise EdgeAIError(f"no earlier run under {report_dir} to use as the baseline")
        return max(runs, key=lambda p: (float(_meta(p).get("started") or 0.0), p.name)).resolve()
    return resolve_run(text, report_dir)


def _meta(path: Path) -> dict[str, Any]:
    """run.json alone (not the records): enough to pick a run among hundreds."""
    return read_meta(path)[0]
