"""How a devices.toml key is declared and checked: one ``Key`` type for the options every backend and
every meter takes, checked by one function, so config.py validates each table the same way when the
file is loaded and every problem is one line naming its key path, what is wrong and what is allowed.

A leaf (it imports only errors.py): backends and meters declare their keys with it, config.py checks them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .errors import did_you_mean

REQUIRED = object()
KINDS = ("number", "integer", "string", "strings", "list", "bool", "table")


def is_number(value: Any) -> bool:
    """A finite int or float (not a bool); a 400-digit integer is not one (no float holds it)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


@dataclass(frozen=True)
class Key:
    """One key a table accepts: its type, default, allowed values and lower bound.

    ``kind``: number, integer, string, strings (a string or a non-empty array of strings), list (an
    array of strings), bool, table. ``words``: strings accepted instead of a number ("AUTO").
    """

    name: str
    kind: str
    default: Any = REQUIRED
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    above_minimum: bool = False  # True: strictly greater than minimum
    words: tuple[str, ...] = ()
    ignore_case: bool = False
    help: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"key {self.name}: kind {self.kind!r} is not one of {', '.join(KINDS)}")

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not acceptable, or None."""
        if self.words and isinstance(value, str):
            if value.upper() in (w.upper() for w in self.words):
                return None
            return f"{value!r} is not allowed; allowed: a number or {', '.join(self.words)}"
        if self.kind in ("number", "integer"):
            whole = self.kind == "integer"
            if not is_number(value) or (whole and not isinstance(value, int)):
                return f"{_short(value)} is not {'an integer' if whole else 'a finite number'}"
            if self.minimum is not None and (value < self.minimum or (self.above_minimum and value == self.minimum)):
                return f"{value!r} must be {'>' if self.above_minimum else '>='} {self.minimum:g}"
            return None
        if self.kind == "bool":
            return None if isinstance(value, bool) else f"{_short(value)} must be true or false"
        if self.kind == "table":
            return None if isinstance(value, dict) else f"{_short(value)} is not a table"
        if self.kind == "list":
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return None
            return f"{_short(value)} is not an array of strings (write [{_short(value)}] for one)"
        if self.kind == "strings":
            if isinstance(value, str) or (isinstance(value, list) and value
                                          and all(isinstance(v, str) for v in value)):
                return None
            return f"{_short(value)} is not a string or a non-empty array of strings"
        if not isinstance(value, str):
            return f"{_short(value)} is not a string"
        if self.choices and not _among(value, self.choices, self.ignore_case):
            return (f"{value!r} is not allowed{did_you_mean(value, self.choices)}; "
                    f"allowed: {', '.join(self.choices)}")
        return None


def check(where: str, table: dict[str, Any], keys: Iterable[Key], *, also: tuple[str, ...] = (),
          what: str = "option") -> tuple[dict[str, Any], list[str]]:
    """The table's values with defaults filled in, and every problem (unknown keys with a did-you-mean,
    wrong types, missing required keys); ``also``: further keys the caller handles itself."""
    known = {k.name: k for k in keys}
    allowed = (*also, *known)
    problems = [f"{where}.{shown(key)}: unknown {what}{did_you_mean(key, allowed)}; allowed: {', '.join(allowed)}"
                for key in table if key not in known and key not in also]
    values: dict[str, Any] = {}
    for key in known.values():
        if key.name not in table:
            if key.default is REQUIRED:
                problems.append(f"{where}.{key.name}: is required ({key.help})" if key.help
                                else f"{where}.{key.name}: is required")
            values[key.name] = key.default
            continue
        value = table[key.name]
        why = key.problem(value)
        if why:
            problems.append(f"{where}.{key.name}: {why}")
        values[key.name] = float(value) if key.kind == "number" and not why and not isinstance(value, str) else value
    return values, problems


def shown(key: str) -> str:
    """A key as a problem line shows it: as written, or quoted when it holds a line break or a control
    character (one problem stays one line)."""
    return key if key.isprintable() and key.strip() == key and key else repr(key)


def _among(value: str, choices: tuple[str, ...], ignore_case: bool) -> bool:
    return value.upper() in (c.upper() for c in choices) if ignore_case else value in choices


def _short(value: Any) -> str:
    try:
        text = repr(value)
    except ValueError:  # an int too long to print (sys.int_info.str_digits_check_threshold)
        text = f"an integer of {value.bit_length()} bits" if isinstance(value, int) else "a value"
    return text if len(text) <= 60 else f"{text[:57]}..."
