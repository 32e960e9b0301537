"""Validation of a device's ``options`` table, and lazy runtime imports, shared by every backend.

Each backend declares the keys it understands (``OPTIONS``, a tuple of :class:`~pytest_edgeai.keys.Key`);
config.py checks them when devices.toml is loaded, so a typo or a wrong type is one line naming the
key path and what is allowed, not a device that reads as "not attached".
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .. import registry
from ..errors import BackendError, ConfigError, did_you_mean
from ..keys import Key, check
from .base import BUILTIN, ENTRY_POINT_GROUP

if TYPE_CHECKING:
    from ..devices import Device


def option_problems(device: Device, keys: Iterable[Key], runtime: str) -> list[str]:
    """Every unknown key and wrong type in the device's options, one line each."""
    return check(f"devices.{device.name}.options", dict(device.options), keys, what=f"{runtime} option")[1]


def check_keys(device: Device, keys: Iterable[Key], runtime: str) -> dict[str, Any]:
    """The device's options, or ConfigError listing every unknown key and wrong type."""
    problems = option_problems(device, keys, runtime)
    if problems:
        raise ConfigError(problems)
    return dict(device.options)


def declared_options(backend: str) -> tuple[Key, ...] | None:
    """The keys a backend declares (its class's ``OPTIONS``); None for a plug-in that checks its own."""
    cls = registry.load(backend, BUILTIN, ENTRY_POINT_GROUP)
    declared = getattr(cls, "OPTIONS", None)
    return tuple(declared) if declared is not None else None


def choice(device: Device, key: str, default: str, allowed: Iterable[str]) -> str:
    """An option that must be one of ``allowed`` (compared case-insensitively, returned canonical)."""
    allowed = tuple(allowed)
    value = str(device.options.get(key, default))
    canonical = {a.upper(): a for a in allowed}
    if value.upper() not in canonical:
        raise ConfigError([f"devices.{device.name}.options.{key}: {value!r} is not allowed"
                           f"{did_you_mean(value.upper(), canonical)}; allowed: {', '.join(allowed)}"])
    return canonical[value.upper()]


def positive_int(device: Device, key: str, default: int | None = None) -> int | None:
    """An option that must be a whole number >= 1 (or absent, giving ``default``)."""
    value = device.options.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError([f"devices.{device.name}.options.{key}: {value!r} must be a whole number >= 1"])
    return value


def flag(device: Device, key: str, default: bool = False) -> bool:
    """An option that must be true or false."""
    value = device.options.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError([f"devices.{device.name}.options.{key}: {value!r} must be true or false"])
    return value


def require(module: str, install: str) -> ModuleType:
    """Import a runtime lazily; a BackendError saying how to install it when it is missing."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise BackendError(f"{module} is not importable ({exc}): {install}") from None
