"""An estimate when nothing measures power: the device's TDP times the host's CPU utilisation.

Busy CPU time is a counter (``/proc/stat``, or psutil where installed), so the estimate is a
counter too: joules = TDP x busy CPU seconds / CPU count. Every reading is marked estimated and
says how far off a TDP estimate can be; a claim ignores it unless it allows estimates.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from ...errors import ConfigError, MeterUnavailable
from ..options import ROOT
from ..reading import SensorInfo
from ..sampling import SampledMeter, read_text, under

if TYPE_CHECKING:
    from ...devices import Device

WARNING = ("estimated, not measured: TDP x CPU utilisation; TDP-based estimates can be off by "
           "-60% to +190% of the real power")


def busy_seconds(root: str) -> tuple[float, int]:
    """(busy CPU seconds summed over CPUs since boot, CPU count) from ``<root>/proc/stat``."""
    path = under(root, "/proc/stat")
    lines = read_text(path).splitlines()
    total = next((ln.split() for ln in lines if ln.startswith("cpu ")), None)
    ncpu = sum(1 for ln in lines if ln.startswith("cpu") and ln[3:4].isdigit())
    if total is None or ncpu == 0 or len(total) < 5:
        raise ValueError(f"{path} has no aggregate 'cpu' line and per-CPU lines")
    ticks = [float(v) for v in total[1:9]]  # user nice system idle iowait irq softirq steal
    idle = ticks[3] + ticks[4]
    return (sum(ticks) - idle) / os.sysconf("SC_CLK_TCK"), ncpu


def psutil_busy_seconds() -> tuple[float, int]:
    import psutil

    times = psutil.cpu_times()
    idle = times.idle + getattr(times, "iowait", 0.0)
    return sum(times) - idle - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0), psutil.cpu_count()


class EstimateMeter(SampledMeter):
    """Cumulative estimated joules: TDP x busy CPU seconds / CPU count."""

    OPTIONS = (ROOT,)
    NEEDS = ("tdp_w",)  # devices.toml validation asks for it up front (energy.meter.meter_options)
    kind = "joules"

    def __init__(self, device: Device, rate_hz: float = 10.0, root: str = "/"):
        super().__init__(rate_hz)
        if device.tdp_w is None:
            raise ConfigError([f"devices.{device.name}.tdp_w: required by meter source 'estimate' "
                               f"(the estimate is TDP x CPU utilisation)"])
        self.tdp_w = device.tdp_w
        self._counter: Callable[[str], tuple[float, int]] = busy_seconds
        if root == "/":
            try:
                import psutil  # noqa: F401
                self._counter = lambda _root: psutil_busy_seconds()
            except ImportError:
                pass
        self.root = root
        try:
            self._counter(root)
        except (OSError, ValueError) as exc:
            raise MeterUnavailable(f"cannot read CPU utilisation for the estimate: {exc}") from exc
        self.info = SensorInfo(source=f"estimate (TDP {self.tdp_w:g} W x CPU utilisation)",
                               covers="the whole host's CPU utilisation (every process), scaled to the "
                                      "device's TDP", update_period_s=1.0 / os.sysconf("SC_CLK_TCK"),
                               estimated=True)

    def _read(self) -> float:
        busy, ncpu = self._counter(self.root)
        return self.tdp_w * busy / ncpu

    def _warnings(self) -> list[str]:
        return [WARNING]
