"""What is installed: plug-in lookup shared by backends and meters, and the versions of distributions.

A name resolves, in order, to what a conftest or lab plugin added through the hooks of
:mod:`pytest_edgeai.hookspecs` (:func:`add`), a built-in given as "module:attr", or an installed entry
point. Built-ins are imported only when named, so a missing optional runtime costs nothing until a
devices.toml asks for it. A child process (an isolated worker, a tenant) gets the added ones with
:func:`added` and :func:`adopt`, since it loads no conftest of its own.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from importlib import metadata
from typing import Any

from .errors import ConfigError

BACKENDS = "pytest_edgeai.backends"  # entry-point groups, and the keys of what the hooks add
METERS = "pytest_edgeai.meters"

_added: dict[str, dict[str, str]] = {}  # group -> name -> "module:attr", for this run


def entry_points(group: str) -> dict[str, metadata.EntryPoint]:
    return {ep.name: ep for ep in metadata.entry_points(group=group)}


def importable_name(obj: Any, what: str) -> str:
    """``obj`` as "module:attr", the form a child process can import; a string is taken as it is."""
    if isinstance(obj, str) and ":" in obj:
        return obj
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", "")
    if not module or not qualname or "<" in qualname:
        raise ConfigError([f"{what}: {obj!r} is neither \"module:attr\" nor a class or function defined at "
                           f"module level (a child process must be able to import it)"])
    return f"{module}:{qualname}"


def add(group: str, found: Mapping[str, Any], where: str) -> None:
    """Names a hook returned for ``group``; the same name given twice with different targets is an error."""
    if not isinstance(found, Mapping):
        raise ConfigError([f"{where}: returned {found!r}; return a dict of name -> \"module:attr\""])
    targets = {name: importable_name(obj, f"{where} {name!r}") for name, obj in found.items()}
    here = _added.setdefault(group, {})
    for name, target in targets.items():
        if here.get(name, target) != target:
            raise ConfigError([f"{where}: {name!r} is added twice, as {here[name]} and as {target}"])
        here[name] = target


def added() -> dict[str, dict[str, str]]:
    """What the hooks added, as plain data for a child process."""
    return {group: dict(names) for group, names in _added.items()}


def adopt(snapshot: Mapping[str, Mapping[str, str]]) -> None:
    """In a child process: what the parent's hooks added (the child loads no conftest)."""
    clear()
    _added.update({group: dict(names) for group, names in snapshot.items()})


def clear() -> None:
    """Forget what the hooks added: a run's conftest does not outlive the run."""
    _added.clear()


def names(builtin: dict[str, str], group: str) -> list[str]:
    """Every registered name: added, built-in and installed plug-ins."""
    return sorted(set(_added.get(group, {})) | set(builtin) | set(entry_points(group)))


def load(name: str, builtin: dict[str, str], group: str) -> Any | None:
    """The object registered under ``name``, or None when nothing is."""
    target = _added.get(group, {}).get(name) or builtin.get(name)
    if target is not None:
        module_name, _, attr = target.partition(":")
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj
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
