"""Dynamic placement as one study: load the model on every device, warm each, then compare the
shortest-queue dispatcher over all of them with each alone (dispatch.compare_placement)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .dispatch import PlacementResult, Worker, compare_placement
from .tenants import backend_load, default_feeds

if TYPE_CHECKING:
    from ..devices import Device
    from ..models.model import Model


def measure_placement(model: Model, devices: list[Device], duration_s: float, timeout_s: float) -> PlacementResult:
    """Each device alone, then all together; every session is closed at the end, whatever happened."""
    sessions = []
    try:
        workers = []
        for device in devices:
            session = backend_load(model, device)
            sessions.append(session)
            feeds = default_feeds(session, model)
            session.run(feeds)  # first inference (lazy initialisation) outside the timed runs
            workers.append(Worker(device.name, session, feeds))
        return compare_placement(workers, duration_s, timeout_s=timeout_s)
    finally:
        for session in sessions:
            session.close()
