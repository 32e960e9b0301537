"""Errors a person can act on.

Everything the harness raises for bad input (a malformed devices.toml, a broken model file,
a runtime that refuses a device) is an :class:`EdgeAIError`. The plugin turns these into one
clear line instead of a traceback from our internals.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class EdgeAIError(Exception):
    """A problem with the user's input or environment, phrased for the user."""


class ConfigError(EdgeAIError):
    """devices.toml (or an option) is invalid; carries every problem found, one per line."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class ModelError(EdgeAIError):
    """A model file cannot be read, or its inputs cannot be fed."""


class BackendError(EdgeAIError):
    """A runtime refused to load or run a model on a device."""


class DeviceUnavailable(EdgeAIError):
    """A configured device is not attached, or its runtime is missing."""


class MeasurementError(EdgeAIError):
    """A measurement could not be completed (the runtime failed mid-run, for example)."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' when a close match exists, else ''."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
