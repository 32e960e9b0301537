"""Power meters and energy figures: RAPL, NVML, Jetson rails, external commands, serial meters, estimates.

``make_meter(device)`` opens the meter a device's ``[devices.<name>.meter]`` table names;
``measure_idle`` takes an idle baseline; ``energy_metrics`` turns a reading into record metrics.
Vendor libraries (pynvml, pyserial, psutil) are imported only when a meter needs them.
"""

from ..errors import MeterError, MeterUnavailable
from .base import EnergyReading, IdleBaseline, Meter, measure_idle
from .metrics import energy_metrics, record_energy
from .registry import BUILTIN, ENTRY_POINT_GROUP, check_meter, idle_seconds, known_sources, make_meter

__all__ = ["BUILTIN", "ENTRY_POINT_GROUP", "EnergyReading", "IdleBaseline", "Meter", "MeterError",
           "MeterUnavailable", "check_meter", "energy_metrics", "idle_seconds", "known_sources",
           "make_meter", "measure_idle", "record_energy"]
