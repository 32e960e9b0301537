"""A USB power meter on a serial port, read with pyserial (imported lazily).

Many USB meters print one line per reading; ``pattern`` picks the number (watts by default;
``reports = "joules"`` for meters that print accumulated energy, ``scale`` for mW or mWh).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...errors import MeterUnavailable
from ...keys import Key
from ..lines import DEFAULT_PATTERN, LINE_OPTIONS, LineMeter, LineParser
from ..reading import SampleKind, SensorInfo

if TYPE_CHECKING:
    from ...devices import Device


def _pyserial() -> Any:
    try:
        import serial
    except ImportError as exc:
        raise MeterUnavailable("the serial meter needs pyserial: pip install pyserial") from exc
    return serial


class SerialLines:
    """Lines from a serial port; None when the read timeout passes without one."""

    def __init__(self, port: str, baudrate: int, timeout_s: float):
        self.port_name, self.baudrate, self.timeout_s = port, baudrate, timeout_s
        self._port: Any = None

    def open(self) -> None:
        serial = _pyserial()
        try:
            self._port = serial.Serial(self.port_name, self.baudrate, timeout=self.timeout_s)
        except (serial.SerialException, OSError) as exc:
            raise MeterUnavailable(f"cannot open serial port {self.port_name}: {exc}") from exc

    def readline(self) -> str | None:
        data = self._port.readline()
        return data.decode(errors="replace") if data else None

    def interrupt(self) -> None:
        """The read timeout bounds a pending read; nothing to do."""

    def close(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            port.close()


class SerialMeter(LineMeter):
    """Readings a USB meter prints on a serial port."""

    OPTIONS = (
        Key("port", "string", help="serial device, e.g. /dev/ttyUSB0"),
        Key("baudrate", "integer", 9600, minimum=1),
        Key("timeout_s", "number", 0.5, minimum=0.0, above_minimum=True,
               help="read timeout; bounds how long stopping can wait"),
        Key("covers", "string", "what the USB meter is wired to (not stated)"),
        *LINE_OPTIONS,
    )

    def __init__(self, device: Device, port: str, rate_hz: float = 10.0, baudrate: int = 9600,
                 timeout_s: float = 0.5, covers: str = "", reports: SampleKind = "watts",
                 pattern: str = DEFAULT_PATTERN,
                 scale: float = 1.0):
        _pyserial()
        if not Path(port).exists():
            raise MeterUnavailable(f"serial port {port} does not exist (meter unplugged?)")
        parser = LineParser(pattern, scale, f"devices.{device.name}.meter")
        super().__init__(rate_hz, SerialLines(port, baudrate, timeout_s), polled=False,
                         what=f"a number of {reports} matching {pattern!r}", parse=parser.parse)
        self.kind = reports
        self.info = SensorInfo(source=f"serial meter on {port}", covers=covers, update_period_s=None)
