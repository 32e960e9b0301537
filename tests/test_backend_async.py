"""The clock stops only after an asynchronous device finished: through measure and through drive.

The fakes complete their work on another thread 50 ms after the call that submitted it returned,
as a GPU or a request pool does; every timed sample must include that completion. This is a
check of synchronisation (a lower bound on each sample), not a timing benchmark.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from pytest_edgeai.backends.asynchronous import AsyncSession, drive
from pytest_edgeai.backends.base import TensorSpec
from pytest_edgeai.errors import MeasurementError
from pytest_edgeai.measure.asynchronous import measure_async
from pytest_edgeai.measure.profiles import Profile
from pytest_edgeai.measure.scenarios import measure

DELAY_S = 0.050
DELAY_NS = int(DELAY_S * 1e9)
PROFILE = Profile("test", warmup_count=1, warmup_s=0.0, min_duration_s=0.0, min_count=4, timeout_s=10)


class LateQueue:
    """A request pool whose requests complete DELAY_S after ``start`` returned, on a timer thread."""

    def __init__(self, size: int = 2):
        self.size = size
        self._slots = threading.Semaphore(size)
        self._timers: list[threading.Timer] = []
        self._callback = None

    def set_callback(self, callback):
        self._callback = callback

    def start(self, userdata):
        self._slots.acquire()

        def complete():
            self._callback(userdata, None)
            self._slots.release()

        timer = threading.Timer(DELAY_S, complete)
        self._timers.append(timer)
        timer.start()  # returns at once: the work is still running

    def wait_idle(self):
        self._slots.acquire()
        self._slots.release()

    def wait_all(self):
        for t in self._timers:
            t.join()


class LateSession:
    """A Session whose device finishes DELAY_S after submission; run() waits (the Session contract)."""

    inputs = [TensorSpec("x", (None, 2), "float32")]
    outputs = [TensorSpec("y", (None, 2), "float32")]

    def __init__(self):
        self.submitted = 0

    def _submit(self) -> threading.Event:
        done = threading.Event()
        threading.Timer(DELAY_S, done.set).start()
        self.submitted += 1
        return done

    def run(self, feeds):
        self._submit().wait()  # synchronise before returning, as every backend's run does
        return [feeds["x"]]

    def prefers_async(self):
        return True

    def run_async(self, feeds, min_count, min_duration_s, progress=None):
        return drive(LateQueue(), min_count, min_duration_s, progress)

    def settings(self):
        return {}

    def close(self):
        pass


FEEDS = {"x": np.zeros((1, 2), np.float32)}


def test_measure_includes_the_completion_of_late_work():
    result = measure(LateSession(), FEEDS, "offline", 1, PROFILE)
    assert len(result.samples_ns) >= PROFILE.min_count
    assert min(result.samples_ns) >= DELAY_NS
    assert result.first_inference_ns >= DELAY_NS


def test_drive_waits_for_every_request_before_stopping_the_clock():
    run = drive(LateQueue(size=3), min_count=7, min_duration_s=0.0)
    assert run.count == 7 and run.in_flight == 3
    assert min(run.latencies_ns) >= DELAY_NS
    # 7 requests, 3 at a time, each 50 ms: at least three waves complete inside the wall time
    assert run.wall_ns >= 3 * DELAY_NS


class ForgetfulQueue:
    """A pool whose wait_all returns at once; its requests complete only when the test says so.

    Completion is held back by the test, not by a timer, so the check cannot race the fake on a
    loaded machine.
    """

    size = 8

    def __init__(self):
        self._pending: list = []
        self._callback = None

    def set_callback(self, callback):
        self._callback = callback

    def start(self, userdata):
        self._pending.append(userdata)

    def wait_idle(self):
        pass

    def wait_all(self):
        pass

    def complete_all(self):
        for userdata in self._pending:
            self._callback(userdata, None)


def test_a_queue_that_does_not_wait_is_caught_not_measured():
    queue = ForgetfulQueue()
    with pytest.raises(MeasurementError, match="4 requests submitted but 0 completed.*did not wait"):
        drive(queue, min_count=4, min_duration_s=0.0)
    queue.complete_all()  # late completions after the check change nothing


def test_failed_requests_raise_with_the_first_error():
    class Failing(LateQueue):
        def start(self, userdata):
            self._callback(userdata, "device lost")

    with pytest.raises(MeasurementError, match="3 of 3 asynchronous requests failed; first: device lost"):
        drive(Failing(), min_count=3, min_duration_s=0.0)


def test_measure_async_gives_an_offline_measurement_whose_samples_include_completion():
    session = LateSession()
    assert isinstance(session, AsyncSession)
    result = measure_async(session, FEEDS, 4, PROFILE)
    assert result.scenario == "offline" and result.batch == 4
    assert len(result.samples_ns) >= PROFILE.min_count
    assert min(result.samples_ns) >= DELAY_NS
    assert result.first_inference_ns >= DELAY_NS
    assert result.throughput_ips == pytest.approx(len(result.samples_ns) * 4 / (result.wall_ns / 1e9))
    assert result.warmup_count >= PROFILE.warmup_count


class Slot:
    """A stream slot whose request takes ``work`` calls to complete (a stream runs its work in order)."""

    def __init__(self, log, fail_at=None):
        self.log, self.fail_at, self.count = log, fail_at, 0

    def submit(self, feeds):
        self.count += 1
        self.log.append(("submit", id(self), self.count))

    def complete(self):
        self.log.append(("complete", id(self), self.count))
        if self.count == self.fail_at:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return self.count


def test_oldest_first_queue_keeps_every_slot_busy_and_waits_for_all():
    from pytest_edgeai.backends.asynchronous import OldestFirstQueue

    log, done = [], []
    slots = [Slot(log), Slot(log)]
    run = drive(OldestFirstQueue(slots, done.append), min_count=5, min_duration_s=0.0)
    assert run.count == 5 and run.in_flight == 2 and len(done) == 5
    assert [e[0] for e in log[:3]] == ["submit", "submit", "complete"]  # both in flight before the first wait
    assert sum(e[0] == "submit" for e in log) == sum(e[0] == "complete" for e in log) == 5


def test_a_failing_request_is_reported_through_drive_not_lost():
    from pytest_edgeai.backends.asynchronous import OldestFirstQueue

    with pytest.raises(MeasurementError, match="1 of 4 asynchronous requests failed; first: RuntimeError: CUDA error"):
        drive(OldestFirstQueue([Slot([], fail_at=2), Slot([])]), min_count=4, min_duration_s=0.0)
