"""CPU energy from RAPL through the Linux powercap interface (Intel, and AMD Zen on the same driver).

Each zone ``/sys/class/powercap/intel-rapl:N[:M]`` has ``name`` (package-0, core, uncore, dram,
psys), ``energy_uj`` (a counter in microjoules, updated about every millisecond) and
``max_energy_range_uj`` (where it wraps to 0). The default sums the top-level package zones;
``zones`` picks others by directory (``intel-rapl:0:2``) or name (``dram``). The counter is
sampled often enough to see every wrap; each zone is unwrapped on its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ...errors import ConfigError, MeterUnavailable, did_you_mean
from ...keys import Key
from ..options import ROOT
from ..reading import SensorInfo
from ..sampling import SampledMeter, read_number, read_text, under

if TYPE_CHECKING:
    from ...devices import Device

POWERCAP = "/sys/class/powercap"
ZONE_DIR = re.compile(r"^(intel|amd)-rapl:(\d+)(?::(\d+))?$")  # not intel-rapl-mmio: it duplicates package-N
UPDATE_PERIOD_S = 0.001
PERMISSION_HINT = ("energy_uj is readable only by root since Linux 5.10 (CVE-2020-8694, the PLATYPUS "
                   "power side channel): run as root, or let this user read it with "
                   "`sudo chmod o+r /sys/class/powercap/intel-rapl:*/energy_uj` (again after each boot)")


@dataclass
class Zone:
    """One RAPL zone and the state needed to unwrap its counter."""

    dir: Path
    name: str
    max_range_uj: float
    last_uj: float | None = None
    total_uj: float = 0.0
    wraps: int = field(default=0)

    @property
    def id(self) -> str:
        return self.dir.name

    @property
    def top_level(self) -> bool:
        match = ZONE_DIR.match(self.id)
        return match is not None and match.group(3) is None

    def advance(self, raw_uj: float) -> float:
        """Microjoules since the first read, counting a wrap when the counter fell."""
        if self.last_uj is not None:
            delta = raw_uj - self.last_uj
            if delta < 0:
                delta += self.max_range_uj
                self.wraps += 1
            self.total_uj += delta
        self.last_uj = raw_uj
        return self.total_uj


def discover(root: str) -> list[Zone]:
    """Every RAPL zone under root's powercap directory, in a stable order."""
    base = under(root, POWERCAP)
    if not base.is_dir():
        return []
    zones = []
    for d in sorted(base.iterdir(), key=lambda p: p.name):
        if ZONE_DIR.match(d.name) and (d / "energy_uj").exists():
            try:
                zones.append(Zone(d, read_text(d / "name"), read_number(d / "max_energy_range_uj")))
            except (OSError, ValueError) as exc:
                raise MeterUnavailable(f"RAPL zone {d} is unreadable: {exc}") from exc
    return zones


def choose(zones: list[Zone], wanted: list[str] | None, where: str) -> list[Zone]:
    """The zones to sum: those named in ``wanted``, or every top-level package zone."""
    if wanted is None:
        chosen = [z for z in zones if z.top_level and z.name.startswith("package")]
        if not chosen:
            raise MeterUnavailable(f"no RAPL package zone found (zones: "
                                   f"{', '.join(f'{z.id}={z.name}' for z in zones)}); set {where}.zones")
        return chosen
    chosen, problems = [], []
    for word in wanted:
        hits = [z for z in zones if word in (z.id, z.name)]
        if not hits:
            names = sorted({z.id for z in zones} | {z.name for z in zones})
            problems.append(f"{where}.zones: no RAPL zone '{word}' on this host{did_you_mean(word, names)}; "
                            f"found: {', '.join(f'{z.id} ({z.name})' for z in zones)}")
        chosen.extend(z for z in hits if z not in chosen)
    if problems:
        raise ConfigError(problems)
    return chosen


class RaplMeter(SampledMeter):
    """Cumulative joules summed over the chosen RAPL zones."""

    OPTIONS = (ROOT, Key("zones", "strings", None,
                            help="zone directories or names to sum (default: every package-N zone)"))
    kind = "joules"

    def __init__(self, device: Device, rate_hz: float = 10.0, root: str = "/",
                 zones: str | list[str] | None = None):
        super().__init__(rate_hz)
        found = discover(root)
        if not found:
            raise MeterUnavailable(f"no RAPL zones under {under(root, POWERCAP)} (not an Intel/AMD CPU "
                                   f"with the intel_rapl driver loaded, or inside a VM/container without it)")
        wanted = [zones] if isinstance(zones, str) else zones
        self.zones = choose(found, wanted, f"devices.{device.name}.meter")
        for zone in self.zones:
            try:
                read_number(zone.dir / "energy_uj")
            except PermissionError as exc:
                raise MeterUnavailable(f"cannot read {zone.dir / 'energy_uj'}: {PERMISSION_HINT}") from exc
            except (OSError, ValueError) as exc:
                raise MeterUnavailable(f"cannot read {zone.dir / 'energy_uj'}: {exc}") from exc
        names = ", ".join(f"{z.name} ({z.id})" for z in self.zones)
        self.info = SensorInfo(source="rapl", covers=f"CPU RAPL zones: {names}", update_period_s=UPDATE_PERIOD_S)

    def _read(self) -> float:
        return sum(z.advance(read_number(z.dir / "energy_uj")) for z in self.zones) / 1e6

    def _begin(self) -> None:
        for zone in self.zones:
            zone.last_uj, zone.total_uj, zone.wraps = None, 0.0, 0

    def _warnings(self) -> list[str]:
        return [f"RAPL zone {z.id} wrapped {z.wraps} time(s) at {z.max_range_uj:.0f} uJ; unwrapped"
                for z in self.zones if z.wraps]
