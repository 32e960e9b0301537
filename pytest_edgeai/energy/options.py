"""Meter options from devices.toml: declared per meter, checked before anything is opened.

Every problem is reported at once, each naming ``devices.<name>.meter.<key>``, what is wrong
and what is allowed, the way config.py reports the rest of the file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError, did_you_mean

REQUIRED = object()


@dataclass(frozen=True)
class Option:
    """One key a meter accepts: its type, default, allowed values and lower bound."""

    name: str
    kind: str  # "number", "integer", "string", "strings" (a string or an array of strings)
    default: Any = REQUIRED
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    above_minimum: bool = False  # True: strictly greater than minimum
    help: str = ""

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not acceptable, or None."""
        if self.kind in ("number", "integer"):
            ok = isinstance(value, int if self.kind == "integer" else (int, float))
            if not ok or isinstance(value, bool) or not math.isfinite(value):
                return f"{value!r} is not {'an integer' if self.kind == 'integer' else 'a finite number'}"
            if self.minimum is not None and (value < self.minimum or (self.above_minimum and value == self.minimum)):
                return f"{value!r} must be {'>' if self.above_minimum else '>='} {self.minimum:g}"
            return None
        if self.kind == "strings":
            if isinstance(value, str) or (isinstance(value, list) and value
                                          and all(isinstance(v, str) for v in value)):
                return None
            return f"{value!r} is not a string or a non-empty array of strings"
        if not isinstance(value, str):
            return f"{value!r} is not a string"
        if self.choices and value not in self.choices:
            return (f"{value!r} is not allowed{did_you_mean(value, self.choices)}; "
                    f"allowed: {', '.join(self.choices)}")
        return None


# Every built-in meter takes these.
RATE = Option("rate_hz", "number", 10.0, minimum=0.0,
              help="how often the sampling thread reads the sensor (0: only at the window's edges)")
IDLE = Option("idle_s", "number", 0.0, minimum=0.0,
              help="seconds of idle baseline measured before the workload (0: none)")
COMMON = (RATE, IDLE)
ROOT = Option("root", "string", "/", help="where sysfs and procfs are mounted (tests point it at a fake tree)")


def validate(where: str, table: dict[str, Any], options: tuple[Option, ...]) -> dict[str, Any]:
    """Options with defaults filled in; ConfigError listing every problem otherwise."""
    known = {o.name: o for o in options}
    problems = [f"{where}.{key}: unknown option{did_you_mean(key, known)}; allowed: source, {', '.join(known)}"
                for key in table if key not in known]
    values: dict[str, Any] = {}
    for opt in options:
        if opt.name not in table:
            if opt.default is REQUIRED:
                problems.append(f"{where}.{opt.name}: is required ({opt.help})")
            values[opt.name] = opt.default
            continue
        why = opt.problem(table[opt.name])
        if why:
            problems.append(f"{where}.{opt.name}: {why}")
        values[opt.name] = float(table[opt.name]) if opt.kind == "number" and not why else table[opt.name]
    if problems:
        raise ConfigError(problems)
    return values
