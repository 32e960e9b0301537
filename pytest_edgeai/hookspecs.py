"""Hooks a conftest.py or a lab's pytest plugin implements to extend pytest-edgeai.

Like pytest-xdist's ``newhooks.py`` and pytest-benchmark's ``hookspec.py``: the plugin registers these
specifications, and any plugin or conftest may implement them. What they return is collected once per
run, when the run first needs a backend or a meter, and handed to every isolated worker (and every child
a study spawns), so a device on a conftest's backend, or with a conftest's meter, measures there too.

A value names an importable object as ``"package.module:Attr"`` (a child process imports it by that
name, so the module must be importable there: the worker's ``sys.path`` is the parent's), or is the
class or factory itself when it is defined at module level.

    # conftest.py
    def pytest_edgeai_backends():
        return {"mybackend": "mylab.backends:MyBackend"}

    def pytest_edgeai_meters():
        return {"shunt": "mylab.meters:ShuntMeter"}
"""

from __future__ import annotations

from typing import Any

import pytest


@pytest.hookspec
def pytest_edgeai_backends() -> dict[str, Any] | None:
    """Backends to add, by name: ``{"name": "module:Class"}``. ``Class()`` must implement
    :class:`pytest_edgeai.backends.base.Backend`. A name here replaces a built-in one of the same name.
    None adds nothing."""


@pytest.hookspec
def pytest_edgeai_meters() -> dict[str, Any] | None:
    """Power meters to add, by the ``source`` a devices.toml names: ``{"name": "module:Factory"}``.
    ``Factory(device, **options)`` returns a :class:`pytest_edgeai.energy.base.Meter` (see
    ``energy.registry`` for its optional ``OPTIONS`` and ``DEFAULT_RATE_HZ``)."""
