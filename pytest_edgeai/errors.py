"""Errors a person can act on: every exception class of the package lives here.

Everything the harness raises for bad input (a malformed devices.toml, a broken model file,
a runtime that refuses a device) is an :class:`EdgeAIError`. The plugin turns these into one
clear line instead of a traceback from our internals. One module holds them all so that an
isolated worker can send any of them to the parent by name and the test sees the same type
(:func:`to_wire`, :func:`from_wire`).
"""

from __future__ import annotations

import difflib
import pickle
import sys
from collections.abc import Iterable
from typing import Any


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



class DeviceLost(DeviceUnavailable):
    """The device stopped answering: a measurement outlived its time limit."""


class RuntimeFailure(EdgeAIError):
    """The runtime raised something that is not ours (a vendor exception) while loading or measuring."""

    def __init__(self, detail: str):
        self.detail = detail
        super().__init__(detail)


class RuntimeCrashed(MeasurementError):
    """The runtime took its worker process down (a signal, or an exit in native code)."""


class MeterUnavailable(EdgeAIError):
    """The configured meter cannot read here; the message is the skip reason."""


class MeterError(MeasurementError):
    """A meter failed while measuring (its command died, it printed garbage, a read failed)."""


class UnknownModelError(ValueError):
    """A model name that is not in the zoo; the message suggests the closest names."""


class QuantizationError(ModelError):
    """A model the quantiser cannot handle, or a method that failed on it."""


class CalibrationError(QuantizationError):
    """Calibration data that does not fit the model (missing inputs, wrong shape or dtype)."""


class MethodUnavailable(EdgeAIError):
    """A quantisation method whose package is not installed here."""


class CascadeError(EdgeAIError):
    """A cascade that cannot be evaluated: a threshold outside [0, 1], mismatched arrays."""


class PlanError(EdgeAIError):
    """No plan satisfies the problem; the message names what made it infeasible."""


class FrameError(MeasurementError):
    """A peer sent something that is not a valid frame; nothing was allocated for it."""


class PeerClosed(MeasurementError):
    """The peer closed the connection (or died) in the middle of a message."""


class SplitExecutionError(MeasurementError):
    """Split execution stopped; ``partial`` holds the latencies measured before it did."""

    def __init__(self, message: str, partial: list[float]):
        super().__init__(message)
        self.partial = list(partial)


Wire = tuple[str, str, dict[str, Any]]


def to_wire(exc: EdgeAIError) -> Wire:
    """(type name, message, attributes) of ``exc``, for another process to rebuild.

    The name is that of the nearest class defined here (a plug-in's subclass of DeviceUnavailable
    arrives as a DeviceUnavailable); attributes that do not pickle are left out."""
    here = sys.modules[__name__]
    cls = next(c for c in type(exc).__mro__ if getattr(here, c.__name__, None) is c)
    state = {}
    for key, value in vars(exc).items():
        try:
            pickle.dumps(value)
        except Exception:  # noqa: BLE001 - whatever pickling raises, the attribute stays behind
            continue
        state[key] = value
    return cls.__name__, str(exc), state


def from_wire(type_name: str, message: str, state: dict[str, Any]) -> EdgeAIError:
    """The exception :func:`to_wire` described, as the same type with the same message and attributes."""
    cls = getattr(sys.modules[__name__], type_name, None)
    if not (isinstance(cls, type) and issubclass(cls, EdgeAIError)):
        cls = EdgeAIError
    exc = cls.__new__(cls)
    Exception.__init__(exc, message)
    vars(exc).update(state)
    return exc


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' when a close match exists, else ''."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
