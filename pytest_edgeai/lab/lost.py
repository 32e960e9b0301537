"""Devices that stopped answering during a run: their remaining tests skip with the reason.

Marks live in memory and, once a run is open, as files in the run directory, so every pytest-xdist
worker writing into that run sees a device another worker lost.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ..results.store import write_json_atomic
from .locks import device_key

if TYPE_CHECKING:
    from ..devices import Device

LOST_DIR = "lost"


class LostDevices:
    def __init__(self) -> None:
        self._reasons: dict[str, str] = {}
        self.directory: Path | None = None

    def attach(self, run_dir: Path) -> None:
        self.directory = Path(run_dir) / LOST_DIR
        for key, reason in self._reasons.items():
            write_json_atomic(self.directory / f"{key}.json", {"reason": reason, "at": time.time()})

    def mark(self, device: Device, reason: str) -> None:
        key = device_key(device)
        self._reasons[key] = reason
        if self.directory is not None:
            write_json_atomic(self.directory / f"{key}.json",
                              {"device": device.name, "reason": reason, "at": time.time()})

    def reason(self, device: Device) -> str | None:
        key = device_key(device)
        if key in self._reasons:
            return self._reasons[key]
        if self.directory is not None:
            try:
                data = json.loads((self.directory / f"{key}.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return None
            self._reasons[key] = str(data.get("reason", "lost"))
            return self._reasons[key]
        return None
