"""The options every meter takes, and the check of a meter table (the keys are declared with
:class:`pytest_edgeai.keys.Key`, like a backend's, and checked when devices.toml is loaded)."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from ..keys import Key, check

# Every built-in meter takes these.
RATE = Key("rate_hz", "number", 10.0, minimum=0.0,
           help="how often the sampling thread reads the sensor (0: only at the window's edges)")
IDLE = Key("idle_s", "number", 0.0, minimum=0.0,
           help="seconds of idle baseline measured before the workload (0: none)")
COMMON = (RATE, IDLE)
ROOT = Key("root", "string", "/", help="where sysfs and procfs are mounted (tests point it at a fake tree)")


def validate(where: str, table: dict[str, Any], options: tuple[Key, ...]) -> dict[str, Any]:
    """Options with defaults filled in; ConfigError listing every problem otherwise."""
    values, problems = check(where, table, options, also=("source",))
    if problems:
        raise ConfigError(problems)
    return values
