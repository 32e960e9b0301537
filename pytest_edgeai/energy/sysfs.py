"""Reading sysfs and procfs under a configurable root, so tests point every reader at a fake tree."""

from __future__ import annotations

from pathlib import Path


def under(root: str, path: str) -> Path:
    """``path`` (absolute, as on the live system) inside ``root``."""
    return Path(root) / path.lstrip("/")


def read_text(path: Path) -> str:
    return path.read_text(encoding="ascii", errors="replace").strip()


def read_number(path: Path) -> float:
    """A sysfs file holding one number; ValueError naming the file when it holds something else."""
    text = read_text(path)
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{path} holds {text[:40]!r}, not a number") from None
