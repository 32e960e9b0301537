"""Which configured devices a run uses: --device values resolved against the inventory."""

from __future__ import annotations

from .backends.base import probe
from .config import Config
from .devices import KINDS, Device
from .errors import ConfigError, did_you_mean


def select(config: Config, requested: list[str]) -> list[Device]:
    """Resolve --device values: names, kinds, 'all', or 'auto' (configured and attached)."""
    chosen: dict[str, Device] = {}
    for word in requested:
        if word == "all":
            chosen.update(config.devices)
        elif word == "auto":
            chosen.update({n: d for n, d in config.devices.items() if probe(d).attached})
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
