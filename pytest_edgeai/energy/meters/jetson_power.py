"""Jetson module power from its INA3221 monitors: sysfs (hwmon or the older iio layout), else tegrastats.

- hwmon (L4T 34+/JetPack 5+): ``in<N>_label`` names the rail; ``power<N>_input`` in uW where
  the driver has it, else ``in<N>_input`` (mV) x ``curr<N>_input`` (mA).
- iio (L4T 32, Nano/TX2/Xavier): ``rail_name_<N>``, ``in_power<N>_input`` in mW (else
  ``in_voltage<N>_input`` x ``in_current<N>_input``).
- tegrastats: lines such as ``VDD_IN 5021mW/5021mW`` or ``POM_5V_IN 3164/3164`` (now/average, mW).

The total is the module input rail: VDD_IN, else POM_5V_IN (configurable). It is measured on
the module, so it excludes the carrier board and whatever is plugged into it.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ...errors import ConfigError, MeterUnavailable, did_you_mean
from ...keys import Key
from ..lines import LineMeter, ProcessLines
from ..options import ROOT
from ..reading import SensorInfo
from ..sampling import SampledMeter, read_number, read_text, under

if TYPE_CHECKING:
    from ...devices import Device

TOTAL_RAILS = ("VDD_IN", "POM_5V_IN")
HWMON_GLOBS = ("sys/class/hwmon/hwmon*", "sys/bus/i2c/drivers/ina3221/*/hwmon/hwmon*")
IIO_GLOBS = ("sys/bus/iio/devices/iio:device*", "sys/bus/i2c/drivers/ina3221x/*/iio:device*")
TEGRASTATS_RAIL = re.compile(r"\b([A-Za-z][A-Za-z0-9_]*) (\d+)(?:mW)?/(\d+)(?:mW)?\b")
LAYOUTS = ("auto", "hwmon", "iio", "tegrastats")


@dataclass(frozen=True)
class Rail:
    """One INA3221 channel and how to read its power in watts."""

    name: str
    where: Path
    read: Callable[[], float]


def _product(volts_mv: Path, amps_ma: Path) -> Callable[[], float]:
    return lambda: read_number(volts_mv) * read_number(amps_ma) / 1e6


def _scaled(path: Path, scale: float) -> Callable[[], float]:
    return lambda: read_number(path) * scale


def _dirs(root: str, globs: tuple[str, ...]) -> list[Path]:
    seen: dict[Path, Path] = {}
    for pattern in globs:
        for d in sorted(Path(root).glob(pattern)):
            seen.setdefault(d.resolve(), d)
    return list(seen.values())


def hwmon_rails(root: str) -> list[Rail]:
    rails = []
    for d in _dirs(root, HWMON_GLOBS):
        if not (d / "name").exists() or not read_text(d / "name").startswith("ina3221"):
            continue
        for label in sorted(d.glob("in*_label")):
            n = label.name[2:-len("_label")]
            power = d / f"power{n}_input"
            read = _scaled(power, 1e-6) if power.exists() else _product(d / f"in{n}_input", d / f"curr{n}_input")
            rails.append(Rail(read_text(label), d, read))
    return rails


def iio_rails(root: str) -> list[Rail]:
    rails = []
    for d in _dirs(root, IIO_GLOBS):
        for label in sorted(d.glob("rail_name_*")):
            n = label.name[len("rail_name_"):]
            power = d / f"in_power{n}_input"
            read = (_scaled(power, 1e-3) if power.exists()
                    else _product(d / f"in_voltage{n}_input", d / f"in_current{n}_input"))
            rails.append(Rail(read_text(label), d, read))
    return rails


def tegrastats_power(line: str, rail: str) -> float | None:
    """Watts on ``rail`` in one tegrastats line ('auto': the module input rail), or None."""
    found = {m.group(1): float(m.group(2)) / 1e3 for m in TEGRASTATS_RAIL.finditer(line)}
    for name in (TOTAL_RAILS if rail == "auto" else (rail,)):
        if name in found:
            return found[name]
    return None


def covers(rail: str) -> str:
    scope = "module input power" if rail in TOTAL_RAILS else "one on-module rail, not the module total"
    return (f"Jetson {rail} module rail (INA3221 on the module: {scope}; excludes the carrier board "
            f"and what is plugged into it)")


def choose_rail(rails: list[Rail], wanted: str, where: str) -> Rail:
    by_name = {r.name: r for r in rails}
    if wanted != "auto":
        if wanted not in by_name:
            raise ConfigError([f"{where}.rail: no rail '{wanted}' here{did_you_mean(wanted, by_name)}; "
                               f"found: {', '.join(by_name)}"])
        return by_name[wanted]
    for name in TOTAL_RAILS:
        if name in by_name:
            return by_name[name]
    raise MeterUnavailable(f"none of the module input rails {', '.join(TOTAL_RAILS)} among the INA3221 "
                           f"rails found ({', '.join(by_name)}); set {where}.rail")


class JetsonRailMeter(SampledMeter):
    """A module rail read from sysfs at ``rate_hz``."""

    def __init__(self, rail: Rail, rate_hz: float, layout: str):
        super().__init__(rate_hz)
        self.rail = rail
        self.info = SensorInfo(source=f"jetson ina3221 {layout} ({rail.where})", covers=covers(rail.name),
                               update_period_s=None)

    def _read(self) -> float:
        return self.rail.read()


class TegrastatsMeter(LineMeter):
    """A module rail read from the lines tegrastats prints every ``1 / rate_hz`` seconds."""

    def __init__(self, program: str, rail: str, rate_hz: float, where: str):
        interval_ms = max(int(round(1000.0 / rate_hz)), 1) if rate_hz > 0 else 1000
        super().__init__(rate_hz, ProcessLines([program, "--interval", str(interval_ms)], where), polled=False,
                         what=f"a tegrastats line with {rail if rail != 'auto' else ' or '.join(TOTAL_RAILS)}",
                         parse=lambda line: tegrastats_power(line, rail))
        shown = rail if rail != "auto" else "/".join(TOTAL_RAILS)
        self.info = SensorInfo(source=f"tegrastats --interval {interval_ms}", covers=covers(shown),
                               update_period_s=interval_ms / 1e3)


def open_jetson(device: Device, rate_hz: float = 10.0, root: str = "/", rail: str = "auto",
                layout: str = "auto", tegrastats: str = "tegrastats") -> SampledMeter:
    """The first layout that has the rail: hwmon, iio, then tegrastats."""
    where = f"devices.{device.name}.meter"
    for name, finder in (("hwmon", hwmon_rails), ("iio", iio_rails)):
        if layout in ("auto", name):
            rails = finder(root)
            if rails:
                return JetsonRailMeter(choose_rail(rails, rail, where), rate_hz, name)
    if layout in ("auto", "tegrastats"):
        program = shutil.which(tegrastats) or shutil.which(str(under(root, "/usr/bin/tegrastats")))
        if program:
            return TegrastatsMeter(program, rail, rate_hz, where)
    raise MeterUnavailable(f"no Jetson INA3221 power monitor found (layout {layout}: looked for hwmon "
                           f"'ina3221' and iio 'rail_name_*' under {root}, and the tegrastats program)")


open_jetson.OPTIONS = (  # type: ignore[attr-defined]
    ROOT,
    Key("rail", "string", "auto", help=f"the rail to read (auto: {' then '.join(TOTAL_RAILS)})"),
    Key("layout", "string", "auto", choices=LAYOUTS, help="where to read the monitor"),
    Key("tegrastats", "string", "tegrastats", help="the tegrastats program, for the fallback"),
)
