"""Which configured devices a run uses: --device values resolved against the inventory."""

from __future__ import annotations

from collections.abc import Callable

from .backends.base import Availability, probe
from .config import Config
from .devices import KINDS, Device
from .errors import ConfigError, did_you_mean


def select(config: Config, requested: list[str],
           probe_all: Callable[[list[Device]], dict[str, Availability]] | None = None) -> list[Device]:
    """Resolve --device values: names, kinds, 'all', or 'auto' (configured and attached, as ``probe_all``
    says: lab.runners.probe_isolated, so a probe that crashes cannot take the caller down; this process
    when it is None)."""
    chosen: dict[str, Device] = {}
    for word in requested:
        if word == "all":
            chosen.update(config.devices)
        elif word == "auto":
            candidates = list(config.devices.values())
            found = probe_all(candidates) if probe_all else {d.name: probe(d) for d in candidates}
            chosen.update({d.name: d for d in candidates if found[d.name].attached})
        elif word in config.devices:
            chosen[word] = config.devices[word]
        elif word in KINDS and any(d.kind == word for d in config.devices.values()):
            chosen.update({n: d for n, d in config.devices.items() if d.kind == word})
        else:
            where = f" in {config.path}" if config.path else " (no devices.toml: only the built-in 'cpu')"
            raise ConfigError([
                f"--device {word}: no such device{where}"
                f"{did_you_mean(word, list(config.devices) + list(KINDS))}; "
                f"configured: {', '.join(sorted(config.devices))}; also: all, auto"
            ])
    return list(chosen.values())
