"""Validation of a device's ``options`` table, and lazy runtime imports, shared by every backend.

Each backend names the keys it understands; a typo gets one line naming the key path in
devices.toml and the closest allowed key, instead of being silently ignored.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from types import ModuleType
from typing import TYPE_CHECKING, Any

from ..errors import BackendError, ConfigError, did_you_mean

if TYPE_CHECKING:
    from ..devices import Device


def check_keys(device: Device, allowed: Iterable[str], runtime: str) -> dict[str, Any]:
    """The device's options, or ConfigError listing every unknown key."""
    allowed = tuple(allowed)
    unknown = [k for k in device.options if k not in allowed]
    if unknown:
        raise ConfigError([f"devices.{device.name}.options.{k}: unknown {runtime} option"
                           f"{did_you_mean(k, allowed)}; allowed: {', '.join(allowed)}" for k in unknown])
    return dict(device.options)


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
