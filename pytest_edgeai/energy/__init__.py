"""Power meters and energy figures: RAPL, NVML, Jetson rails, external commands, serial meters, estimates.

The way in for everything else in the package: ``MeterWindow.for_device(device)`` is what a measurement
reads its energy through (``meter``), ``record_energy`` puts a reading into a record (``reading``).
Inside: ``meter`` (the Meter contract, which meter a device uses, the window around a measurement),
``reading`` (a reading, joules from samples, the record's figures), ``sampling`` and ``lines`` (how the
built-in meters read), ``meters/`` (one module per meter). Vendor libraries (pynvml, pyserial, psutil)
are imported only when a meter needs them.
"""

from ..errors import MeterError, MeterUnavailable
from .meter import (
    BUILTIN,
    ENTRY_POINT_GROUP,
    Meter,
    MeterWindow,
    check_meter,
    idle_seconds,
    known_sources,
    make_meter,
    measure_idle,
)
from .reading import EnergyReading, IdleBaseline, energy_metrics, record_energy

__all__ = ["BUILTIN", "ENTRY_POINT_GROUP", "EnergyReading", "IdleBaseline", "Meter", "MeterError",
           "MeterUnavailable", "MeterWindow", "check_meter", "energy_metrics", "idle_seconds", "known_sources",
           "make_meter", "measure_idle", "record_energy"]
