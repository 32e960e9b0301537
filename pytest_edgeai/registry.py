"""What is installed: plug-in lookup shared by backends and meters (built-ins by "module:attr", others
by entry point), and the versions of installed distributions.

Built-ins are imported only when named, so a missing optional runtime costs nothing until a
devices.toml asks for it.
"""

from __future__ import annotations

import importlib
from importlib import metadata
from typing import Any


def entry_points(group: str) -> dict[str, metadata.EntryPoint]:
    return {ep.name: ep for ep in metadata.entry_points(group=group)}


def names(builtin: dict[str, str], group: str) -> list[str]:
    """Every registered name: built-in and installed plug-ins."""
    return sorted(set(builtin) | set(entry_points(group)))


def load(name: str, builtin: dict[str, str], group: str) -> Any | None:
    """The object registered under ``name``, or None when nothing is."""
    if name in builtin:
        module_name, _, attr = builtin[name].partition(":")
        return getattr(importlib.import_module(module_name), attr)
    eps = entry_points(group)
    return eps[name].load() if name in eps else None


def distribution_version(*names: str) -> str | None:
    """The installed version of the first distribution found among ``names``."""
    for dist in names:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None
