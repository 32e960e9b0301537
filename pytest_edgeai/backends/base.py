"""The contract between the harness and a runtime.

A backend turns (model, device) into a Session and says, before anything is loaded, whether
the device is attached. Backend modules import their runtime lazily, inside ``probe`` and
``load``, so a missing runtime never breaks the plugin or another backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from .. import registry
from ..errors import ConfigError, did_you_mean

if TYPE_CHECKING:
    import numpy as np

    from ..devices import Device
    from ..models.model import Model

ENTRY_POINT_GROUP = registry.BACKENDS

# Built-in backends, imported only when a device names them.
BUILTIN: dict[str, str] = {
    "onnxruntime": "pytest_edgeai.backends.onnxruntime:OnnxRuntimeBackend",
    "openvino": "pytest_edgeai.backends.openvino:OpenVINOBackend",
    "litert": "pytest_edgeai.backends.litert:LiteRTBackend",
    "tensorrt": "pytest_edgeai.backends.tensorrt:TensorRTBackend",
    "torch": "pytest_edgeai.backends.torch:TorchBackend",
}


@dataclass(frozen=True)
class Availability:
    """Whether a device can run now; when not, why, in words a person can act on."""

    attached: bool
    reason: str = ""
    runtime: str = ""
    runtime_version: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of a loaded model. Symbolic dims are strings, unknown ones None."""

    name: str
    shape: tuple[int | str | None, ...]
    dtype: str


@runtime_checkable
class Session(Protocol):
    """A model loaded on a device, ready to run."""

    inputs: list[TensorSpec]
    outputs: list[TensorSpec]

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Run once and return when the outputs are ready on the host (synchronised)."""
        ...

    def settings(self) -> dict[str, Any]:
        """The runtime knobs as actually applied (providers, threads, streams), for the record."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class Backend(Protocol):
    """A runtime: says whether a device is attached and loads models onto it."""

    name: str

    def probe(self, device: Device) -> Availability: ...

    def load(self, model: Model, device: Device) -> Session: ...


def known_backends() -> list[str]:
    """Every backend name a devices.toml may use: built-in, added by a hook, installed plug-ins."""
    return registry.names(BUILTIN, ENTRY_POINT_GROUP)


_instances: dict[tuple[str, type], Backend] = {}  # by name and class: a later run may name another


def get_backend(name: str) -> Backend:
    """The backend registered under ``name``; a ConfigError with a did-you-mean otherwise."""
    cls = registry.load(name, BUILTIN, ENTRY_POINT_GROUP)
    if cls is None:
        raise ConfigError(
            [f"unknown backend '{name}'{did_you_mean(name, known_backends())}; "
             f"known: {', '.join(known_backends())}"]
        )
    if (name, cls) not in _instances:
        _instances[name, cls] = cls()
    return _instances[name, cls]


def probe(device: Device) -> Availability:
    """Ask the device's backend whether it is attached; never raises for a missing runtime."""
    try:
        return get_backend(device.backend).probe(device)
    except ConfigError as exc:
        return Availability(False, str(exc))
    except Exception as exc:  # a vendor runtime failing in its own probe
        return Availability(False, f"{device.backend} probe failed: {type(exc).__name__}: {exc}")


def refusal(device: Device, model: Model) -> str | None:
    """Why ``device``'s backend cannot run ``model``'s format here (suites skip on it), else None.

    A backend says so with an optional ``refuses(model, device)``; one without it is asked at load."""
    refuses = getattr(get_backend(device.backend), "refuses", None)
    return refuses(model, device) if refuses else None


def input_specs(model: Model, device: Device) -> list[TensorSpec]:
    """What a model takes on a device, read from a session loaded for this alone (the runtime's view,
    dynamic axes included)."""
    session = get_backend(device.backend).load(model, device)
    try:
        return list(session.inputs)
    finally:
        session.close()
