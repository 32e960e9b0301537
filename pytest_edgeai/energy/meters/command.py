"""An external meter driven by a command: a lab's script that prints watts or cumulative joules.

``mode = "poll"`` runs the command every ``1 / rate_hz`` seconds and takes the number on its
last output line; ``mode = "stream"`` starts it once and reads every line it prints (a logger
that writes one value a line). ``reports`` says whether the numbers are watts or joules.
"""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

from ...errors import MeterUnavailable
from ...keys import Key
from ..lines import DEFAULT_PATTERN, LINE_OPTIONS, CommandOnce, LineMeter, LineParser, ProcessLines, argv_of
from ..reading import SampleKind, SensorInfo

if TYPE_CHECKING:
    from ...devices import Device


class CommandMeter(LineMeter):
    """Values printed by a configured command."""

    OPTIONS = (
        Key("command", "strings", help="the command line, a string or an array of arguments"),
        Key("mode", "string", "poll", choices=("poll", "stream"),
               help="run once per sample, or read lines from one long-running process"),
        Key("timeout_s", "number", 5.0, minimum=0.0, above_minimum=True,
               help="how long one polled run may take"),
        Key("covers", "string", "what the external meter is wired to (not stated)",
               help="what the meter measures, for the record"),
        *LINE_OPTIONS,
    )

    def __init__(self, device: Device, command: str | list[str], rate_hz: float = 10.0, mode: str = "poll",
                 timeout_s: float = 5.0, covers: str = "", reports: SampleKind = "watts",
                 pattern: str = DEFAULT_PATTERN,
                 scale: float = 1.0):
        where = f"devices.{device.name}.meter"
        argv = argv_of(command)
        if not argv or shutil.which(argv[0]) is None:
            raise MeterUnavailable(f"{where}.command: {argv[0] if argv else '(empty)'!r} is not an "
                                   f"executable found on PATH")
        parser = LineParser(pattern, scale, where)
        lines = CommandOnce(argv, timeout_s, where) if mode == "poll" else ProcessLines(argv, where)
        super().__init__(rate_hz, lines, polled=mode == "poll",
                         what=f"a number of {reports} matching {pattern!r}", parse=parser.parse)
        self.kind = reports
        self.info = SensorInfo(source=f"command ({mode}): {' '.join(argv)}", covers=covers,
                               update_period_s=1.0 / rate_hz if mode == "poll" else None)
