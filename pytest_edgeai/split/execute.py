"""Split execution for real: each stage of a plan in its own process, tensors over shaped TCP.

The first stage runs in this process and feeds the inputs; every later stage is a child
process (lab.child) that receives its boundary tensors on 127.0.0.1, runs its segment with onnxruntime
and sends the next boundary over the next link (shaped by link.Channel). The last stage
reports when it finished, on the host's shared monotonic clock (CLOCK_MONOTONIC, one host),
so an inference's latency runs from feeding the first stage to the last stage's output:
what planner.Plan.latency_s predicts. Inferences run one at a time (no pipelining).

A stage that dies, refuses its model or stops answering gives a MeasurementError naming the
stage and its exit code; the latencies already measured stay on the executor (``latencies_s``)
and in the error (``partial``).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import onnx

from ..errors import EdgeAIError, MeasurementError, SplitExecutionError
from ..lab import child
from .cuts import GraphCuts, Segment
from .network import LinkProfile
from .planner import Plan

POLL_S = 0.05


@dataclass(frozen=True)
class StageSpec:
    """A tier and the graph positions [start, stop) it runs."""

    tier: str
    start: int
    stop: int


@dataclass
class SplitMeasurement:
    """Measured end-to-end latencies of a split plan, against the planner's prediction."""

    stages: tuple[StageSpec, ...]
    latencies_s: list[float]
    predicted_s: float | None = None
    max_abs_error: float = 0.0  # largest difference from the whole model's outputs
    extra: dict = field(default_factory=dict)

    @property
    def median_s(self) -> float:
        return statistics.median(self.latencies_s)

    @property
    def prediction_error(self) -> float | None:
        """|measured median - predicted| / measured median."""
        if self.predicted_s is None or not self.latencies_s:
            return None
        return abs(self.median_s - self.predicted_s) / self.median_s


def _segment_payload(seg: Segment) -> tuple:
    return (seg.model.SerializeToString(), seg.start, seg.stop, seg.inputs, seg.outputs, seg.passthrough)


def _stage_main(conn, payload: tuple, tier: str, upstream: str, downstream: str | None, next_port: int | None,
                link: LinkProfile | None, timeout_s: float, threads: int) -> None:
    """A later stage: receive, run, forward (or report the output and its finishing time)."""
    from .link import accept, connect, listen
    from .runner import SegmentSession

    try:
        model_bytes, start, stop, inputs, outputs, passthrough = payload
        seg = Segment(onnx.load_from_string(model_bytes), start, stop, inputs, outputs, passthrough)
        session = SegmentSession(seg, threads=threads)
        srv = listen(timeout_s)
        conn.send(("port", srv.getsockname()[1]))
        down = connect(next_port, downstream, timeout_s, link) if next_port is not None else None
        up = accept(srv, upstream, timeout_s)
        while (msg := up.receive_message()) is not None:
            seq, tensors = msg
            out = session.run(dict(zip(seg.inputs, tensors)))
            if down is None:
                conn.send(("done", seq, time.monotonic_ns(), out))
            else:
                down.send_message(seq, [out[n] for n in seg.outputs])
        if down is not None:
            down.send_close()
        conn.send(("closed",))
    except EdgeAIError as exc:
        conn.send(("error", f"stage '{tier}': {exc}"))
    except Exception as exc:  # report the stage's own failure to the parent in words
        conn.send(("error", f"stage '{tier}' failed: {type(exc).__name__}: {exc}"))


class SplitExecutor:
    """Start the stages of a plan as processes; measure inferences; stop them.

    ``stages``: consecutive graph ranges covering 0..n; ``links[i]`` carries stage i's output
    to stage i + 1.
    """

    def __init__(self, graph: GraphCuts, stages: Sequence[StageSpec], links: Sequence[LinkProfile],
                 timeout_s: float = 30.0, threads: int = 1):
        from .runner import SegmentSession

        if len(links) != len(stages) - 1 or len(stages) < 2:
            raise MeasurementError(f"{len(stages)} stages need {len(stages) - 1} links, got {len(links)}")
        if stages[0].start != 0 or stages[-1].stop != graph.size or any(
                a.stop != b.start for a, b in zip(stages, stages[1:])):
            raise MeasurementError(f"stages {[(s.start, s.stop) for s in stages]} do not cover "
                                   f"positions 0..{graph.size} in order")
        self.graph, self.stages, self.links, self.timeout_s = graph, tuple(stages), tuple(links), timeout_s
        self.latencies_s: list[float] = []
        self.processes: list[child.Child] = []
        self._pipes: list = []
        self._head = SegmentSession(graph.segment(stages[0].start, stages[0].stop), threads=threads)
        self._channel = None
        self._seq = 0
        next_port = None
        try:
            for i in range(len(stages) - 1, 0, -1):  # last stage first: its port feeds the one before
                downstream = stages[i + 1].tier if i + 1 < len(stages) else None
                proc = child.start(_stage_main, _segment_payload(graph.segment(stages[i].start, stages[i].stop)),
                                   stages[i].tier, stages[i - 1].tier, downstream, next_port,
                                   links[i] if downstream else None, timeout_s, threads,
                                   name=f"split-{stages[i].tier}")
                self.processes.insert(0, proc)
                self._pipes.insert(0, proc.conn)
                next_port = self._expect(0, "port")[1]
            from .link import connect

            self._channel = connect(next_port, stages[1].tier, timeout_s, links[0])
        except BaseException:
            self.close()
            raise

    def _expect(self, i: int, kind: str) -> tuple:
        """The next ``kind`` message from stage i+1, failing clearly if any stage fails, dies or stalls."""
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            for j, pipe in enumerate(self._pipes):
                try:
                    msg = pipe.recv() if pipe.poll(POLL_S if j == i else 0) else None
                except EOFError:
                    msg = None
                if msg and msg[0] == "error":
                    raise SplitExecutionError(msg[1], self.latencies_s)
                if msg and j == i and msg[0] == kind:
                    return msg
            dead = [(j, p) for j, p in enumerate(self.processes) if not p.is_alive()]
            if dead:
                j, proc = dead[0]
                proc.join(1.0)
                raise SplitExecutionError(
                    f"stage '{self.stages[j + 1].tier}' (pid {proc.pid}) died with exit code "
                    f"{proc.exitcode} while waiting for '{kind}'", self.latencies_s)
        raise SplitExecutionError(f"stage '{self.stages[i + 1].tier}' sent no '{kind}' within "
                                  f"{self.timeout_s:g} s", self.latencies_s)

    def infer(self, feed: Mapping[str, np.ndarray]) -> tuple[float, dict[str, np.ndarray]]:
        """One inference through every stage: (seconds, outputs at the last stage)."""
        t0 = time.monotonic_ns()
        mid = self._head.run(feed)
        self._seq += 1
        try:
            self._channel.send_message(self._seq, [mid[n] for n in self._head.segment.outputs])
        except MeasurementError as exc:
            proc = self.processes[0]
            proc.join(0.5)
            state = "alive" if proc.is_alive() else f"exit code {proc.exitcode}"
            raise SplitExecutionError(f"stage '{self.stages[1].tier}' ({state}): {exc}",
                                      self.latencies_s) from None
        msg = self._expect(len(self.processes) - 1, "done")
        if msg[1] != self._seq:
            raise SplitExecutionError(f"result for inference {msg[1]} arrived while waiting for {self._seq}",
                                      self.latencies_s)
        return (msg[2] - t0) / 1e9, msg[3]

    def measure(self, feeds: Iterable[Mapping[str, np.ndarray]], warmup: int = 1,
                reference: Sequence[Mapping[str, np.ndarray]] | None = None) -> SplitMeasurement:
        """Latency of each feed after ``warmup`` untimed ones; compared with ``reference`` outputs."""
        feeds = list(feeds)
        for feed in feeds[:1] * warmup:
            self.infer(feed)
        worst = 0.0
        for n, feed in enumerate(feeds):
            seconds, out = self.infer(feed)
            self.latencies_s.append(seconds)
            if reference is not None:
                worst = max(worst, *(float(np.max(np.abs(out[k] - v))) for k, v in reference[n].items()))
        return SplitMeasurement(self.stages, list(self.latencies_s), max_abs_error=worst)

    def close(self) -> None:
        """Tell the stages to stop, then make sure they have."""
        if self._channel is not None:
            try:
                self._channel.send_close()
            except MeasurementError:
                pass  # a stage already gone: nothing to tell
            self._channel.close()
            self._channel = None
        for proc in self.processes:
            proc.join(2.0)
            proc.close()

    def __enter__(self) -> SplitExecutor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def stages_for(plan: Plan, boundaries: Sequence[int],
               links: Mapping[tuple[str, str], LinkProfile]) -> tuple[list[StageSpec], list[LinkProfile]]:
    """A planner's plan (over blocks) as executor stages (over graph positions) and their links.

    ``boundaries[k]`` is the graph position of planner boundary k (0, the cuts, then n).
    A relay-only tier stays a stage: it receives and forwards without computing.
    """
    stages = [StageSpec(s.tier, boundaries[s.start], boundaries[s.stop]) for s in plan.stages]
    return stages, [links[(t.src, t.dst)] for t in plan.transfers]
