"""Split execution for real: each stage of a plan in its own process, tensors over TCP.

The first stage runs in this process and feeds the inputs; every later stage is a child process
(lab.child, as are the delay relays and load generators) that receives its boundary tensors,
runs its segment through the backend registry and sends the next boundary over the next link.
Tensors travel in each link's encoding (the one the plan priced: ``raw+none``, ``fp16+zstd``,
``int8+lz4``...), decoded on the far side. The last stage reports when it finished, on the
host's shared monotonic clock (CLOCK_MONOTONIC, one host), so an inference's latency runs from
feeding the first stage to the last stage's output: what planner.Plan.latency_s predicts.

The link is either ``user`` (loopback TCP through a relay process that serialises the bytes at the
goodput and holds them for RTT/2 in a delay line: the predictor's own model, netns.relay_main) or
``kernel`` (each stage in its own network namespace joined by veth pairs shaped by tbf, and netem or
a user-space delay relay: netns.py). ``shaping`` says, per link, which parts were kernel-shaped and
which emulated. Every connection opens with a per-run token; a stage serves no one else.

``measure`` runs inferences one at a time (the latency objective); ``measure_pipelined`` keeps
several in flight, each stage working on a different one, for the throughput objective.

Every stage stamps each message (received and decoded, computed, sent: CLOCK_MONOTONIC), so a
latency splits exactly into each stage's compute, its message CPU (decode; encode and send) and
each link's time. ``calibrate`` runs a few inferences before the measured ones and takes those
medians: the stages' message CPU and what each link took beyond its model (RTT/2 + wire bytes /
rate, a kernel-shaped link's segment headers included), a Calibration the prediction of this plan
on this link then includes (as measured).

A stage that dies, refuses its model or stops answering gives a SplitExecutionError naming
the stage and its exit code; the latencies already measured stay on the executor
(``latencies_s``) and in the error (``partial``).
"""

from __future__ import annotations

import itertools
import math
import os
import statistics
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from typing import Any

import numpy as np
import onnx

from ..errors import ConfigError, EdgeAIError, MeasurementError, SplitExecutionError
from ..lab import child
from ..measure.rounds import Estimate
from ..measure.stats import median_ci
from . import netns
from .cuts import GraphCuts, Segment
from .link import DEFAULT_MAX_MESSAGE, Channel, accept, connect, listen, new_token
from .network import LinkProfile
from .planner import Plan, SplitProblem, evaluate
from .runner import SegmentSession
from .wire import parse_key

POLL_S = 0.05
NETWORKS = ("user", "kernel")


@dataclass(frozen=True)
class StageSpec:
    """A tier and the graph positions [start, stop) it runs."""

    tier: str
    start: int
    stop: int


@dataclass
class SplitMeasurement:
    """Measured end-to-end latencies (or pipelined completions) of a split plan, against its prediction."""

    stages: tuple[StageSpec, ...]
    latencies_s: list[float]
    predicted_s: float | None = None
    max_abs_error: float = 0.0   # largest difference from the whole model's outputs
    top1_agreement: float | None = None  # fraction of inputs whose argmax matches the whole model's
    shaping: list[dict[str, Any]] = field(default_factory=list)
    wire_bytes: list[float] = field(default_factory=list)  # mean bytes per message on each link
    throughput_per_s: float | None = None   # pipelined: completions per second in steady state
    predicted_throughput_per_s: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # medians over the measured inferences, seconds: per stage compute and message CPU, per link its time
    terms: dict[str, list[float]] = field(default_factory=dict)

    @property
    def median_s(self) -> float:
        return statistics.median(self.latencies_s)

    @property
    def prediction_error(self) -> float | None:
        """|measured median - predicted| / measured median."""
        if self.predicted_s is None or not self.latencies_s:
            return None
        return abs(self.median_s - self.predicted_s) / self.median_s

    def prediction_error_estimate(self) -> Estimate:
        """The prediction error over the median's distribution-free 95% interval: |m - predicted| / m is
        monotone on each side of the prediction, so its range is at the interval's ends, or 0 inside. An
        end the runs are too few to bound (5 or fewer: ``median_ci``) is carried through as its limit: a
        median unbounded above gives an error tending to 1, one unbounded below (towards 0) an infinite
        one, so too few runs read inconclusive, never met."""
        error = self.prediction_error
        if error is None or self.predicted_s is None:
            return Estimate(math.nan, math.nan, math.nan, "no prediction, or no run measured", 0)
        predicted = self.predicted_s
        lo, hi = median_ci(np.asarray(self.latencies_s))

        def at(m: float) -> float:
            return math.inf if m <= 0 else 1.0 if math.isinf(m) else abs(m - predicted) / m

        ends = (at(lo), at(hi))
        return Estimate(error, 0.0 if lo <= predicted <= hi else min(ends), max(ends),
                        f"95% interval of the median of {len(self.latencies_s)} split runs, carried through "
                        f"|measured - predicted| / measured")

    @property
    def throughput_error(self) -> float | None:
        """|measured - predicted throughput| / measured throughput."""
        if self.throughput_per_s is None or self.predicted_throughput_per_s is None:
            return None
        return abs(self.throughput_per_s - self.predicted_throughput_per_s) / self.throughput_per_s

    @property
    def independent(self) -> bool:
        """Whether some part of every link was realised by the kernel, not by the predictor's model."""
        return bool(self.shaping) and all(s["kernel_shaped"] for s in self.shaping)

    def link_method(self) -> str:
        """In words, for the prediction-error metric: what the measured link was made of."""
        if not self.shaping:
            return "no link description"
        described = []
        for s in self.shaping:
            emulated = [p for p in ("rate", "delay", "jitter", "loss")
                        if s[p] != "none" and p not in s["kernel_shaped"]]
            described.append(f"{s['link']}: kernel-shaped {', '.join(s['kernel_shaped']) or 'nothing'}; "
                             f"emulated in user space {', '.join(emulated) or 'nothing'}")
        if not self.independent:
            return ("NOT an independent check of the predictor: a link is entirely its own user-space model ("
                    + "; ".join(described) + ")")
        return "; ".join(described)


@dataclass(frozen=True)
class StageConfig:
    """What one later stage needs to know to run (pickled into its process)."""

    tier: str
    upstream: str
    downstream: str | None
    namespace: str | None
    listen_host: str
    next_host: str
    next_port: int | None
    encoding: str
    timeout_s: float
    threads: int
    token: bytes
    cpus: frozenset[int] | None
    max_message_bytes: int
    slowdown: float = 1.0


@dataclass(frozen=True)
class Stamp:
    """One message through one stage (monotonic ns; decode in seconds): what a breakdown is made of."""

    received_ns: int   # decoded (the first stage: when it was fed)
    computed_ns: int
    sent_ns: int       # its output handed to the socket (the last stage: computed_ns)
    decode_s: float
    nbytes: int        # bytes it put on its outgoing link (0 for the last stage)


@dataclass(frozen=True)
class Calibration:
    """Per-message costs measured on a plan's own stages and links (medians of ``queries`` inferences).

    ``message_s``: tier -> (receive, send) CPU seconds per message (decoding; encoding and handing to
    the socket); ``link_overhead_s``: per link, its measured time (from the sender's socket call
    returning to the receiver starting to decode) beyond RTT/2 + wire bytes / rate of the link as the
    executor realised it (``shaped``: a kernel-shaped link's TCP segment headers modelled, netns.Hop.link);
    ``compute_s``: per stage, its compute as measured in the stage."""

    queries: int
    message_s: dict[str, tuple[float, float]]
    link_overhead_s: list[float]
    compute_s: list[float]
    shaped: list[LinkProfile]

    def links(self) -> list[LinkProfile]:
        """The plan's links as realised, with their measured per-message overhead."""
        return [replace(lk, message_overhead_s=o) for lk, o in zip(self.shaped, self.link_overhead_s)]

    def reprice(self, problem: SplitProblem, chosen: Plan, compute_as_run: bool = False) -> Plan:
        """``chosen`` (the plan this calibration ran) priced with the measured per-message costs; with
        ``compute_as_run`` each stage's blocks also scaled to the compute the stage measured in these runs (what a
        profile taken apart from the execution misses: e.g. a busy-looping profile's fair CPU share under a load,
        where a stage that waits between queries gets more)."""
        links = {**problem.links, **{(lk.src, lk.dst): lk for lk in self.links()}}
        if compute_as_run:
            latency = {t: list(v) for t, v in problem.latency_s.items()}
            for stage, ran in zip(chosen.stages, self.compute_s):
                blocks = latency[stage.tier][stage.start:stage.stop]
                if sum(blocks) > 0:
                    latency[stage.tier][stage.start:stage.stop] = [b * ran / sum(blocks) for b in blocks]
            problem = replace(problem, latency_s=latency)
        return evaluate(replace(problem, links=links, message_s=self.message_s),
                        [(s.tier, s.start, s.stop) for s in chosen.stages], chosen.objective)

    def to_dict(self) -> dict[str, Any]:
        return {"queries": self.queries, "message_s": {t: list(v) for t, v in self.message_s.items()},
                "link_overhead_s": self.link_overhead_s, "compute_s": self.compute_s,
                "segments": [{"payload_bytes": lk.segment_payload_bytes, "header_bytes": lk.segment_header_bytes}
                             for lk in self.shaped],
                "method": "measured: median over calibration inferences run before the measured ones, "
                          "on the same stages and links"}


def pace(started_ns: int, slowdown: float) -> int:
    """End a compute that began at ``started_ns`` as a tier ``slowdown`` times slower than this host would: sleep
    (slowdown - 1) x the compute (the CPU stays free, as another machine's would); the end (monotonic ns)."""
    now = time.monotonic_ns()
    if slowdown > 1.0:
        time.sleep((slowdown - 1.0) * (now - started_ns) / 1e9)
        now = time.monotonic_ns()
    return now


def _segment_payload(seg: Segment) -> tuple[Any, ...]:
    return (seg.model.SerializeToString(), seg.start, seg.stop, seg.inputs, seg.outputs, seg.passthrough)


def _stage_main(conn: Connection, payload: tuple[Any, ...], cfg: StageConfig) -> None:
    """A later stage: receive, run, forward (or report the output and its finishing time)."""
    try:
        if cfg.namespace:
            netns.enter(cfg.namespace)
        if cfg.cpus:
            os.sched_setaffinity(0, cfg.cpus)
        model_bytes, start, stop, inputs, outputs, passthrough = payload
        seg = Segment(onnx.load_from_string(model_bytes), start, stop, inputs, outputs, passthrough)
        session = SegmentSession(seg, threads=cfg.threads)
        srv = listen(cfg.timeout_s, cfg.listen_host)
        conn.send(("port", srv.getsockname()[1]))
        down = None
        if cfg.next_port is not None and cfg.downstream is not None:
            down = connect(cfg.next_host, cfg.next_port, cfg.downstream, cfg.timeout_s, cfg.token, cfg.encoding)
        up = accept(srv, cfg.upstream, cfg.timeout_s, cfg.token, cfg.max_message_bytes)
        srv.close()
        while (msg := up.receive_message()) is not None:
            received = time.monotonic_ns()
            seq, tensors = msg
            out = session.run(dict(zip(seg.inputs, tensors)))
            computed = pace(received, cfg.slowdown)
            if down is None:
                conn.send(("done", seq, computed, out, Stamp(received, computed, computed, up.last_decode_s, 0)))
            else:
                nbytes = down.send_message(seq, [out[n] for n in seg.outputs])
                conn.send(("sent", seq, Stamp(received, computed, time.monotonic_ns(), up.last_decode_s, nbytes)))
        if down is not None:
            down.send_close()
        conn.send(("closed",))
    except EdgeAIError as exc:
        conn.send(("error", f"stage '{cfg.tier}': {exc}"))
    except Exception as exc:  # noqa: BLE001 - report the stage's own failure to the parent in words
        conn.send(("error", f"stage '{cfg.tier}' failed: {type(exc).__name__}: {exc}"))


class SplitExecutor:
    """Start the stages of a plan as processes; measure inferences; stop them.

    ``stages``: consecutive graph ranges covering 0..n; ``links[i]`` carries stage i's output
    to stage i + 1 in ``encodings[i]`` (raw by default). ``network``: ``user`` or ``kernel``.
    ``cpus``: tier -> the CPUs its stage (and a load generator for it) may use. ``slowdown``: tier -> how many
    times slower than this host the tier is emulated (``pace``; 1: this host's speed).
    """

    def __init__(self, graph: GraphCuts, stages: Sequence[StageSpec], links: Sequence[LinkProfile],
                 timeout_s: float = 30.0, threads: int = 1, network: str = "user",
                 encodings: Sequence[str] | None = None, cpus: Mapping[str, Iterable[int]] | None = None,
                 max_message_bytes: int = DEFAULT_MAX_MESSAGE, slowdown: Mapping[str, float] | None = None):
        if len(links) != len(stages) - 1 or len(stages) < 2:
            raise MeasurementError(f"{len(stages)} stages need {len(stages) - 1} links, got {len(links)}")
        if stages[0].start != 0 or stages[-1].stop != graph.size or any(
                a.stop != b.start for a, b in itertools.pairwise(stages)):
            raise MeasurementError(f"stages {[(s.start, s.stop) for s in stages]} do not cover "
                                   f"positions 0..{graph.size} in order")
        if network not in NETWORKS:
            raise ConfigError([f"split network '{network}' is not one of {', '.join(NETWORKS)}"])
        encodings = list(encodings or ["raw+none"] * len(links))
        if len(encodings) != len(links):
            raise MeasurementError(f"{len(links)} links need {len(links)} encodings, got {len(encodings)}")
        for key in encodings:
            parse_key(key)
        self.slowdown = dict(slowdown or {})
        bad = [f"{t}: {f!r}" for t, f in self.slowdown.items() if not (math.isfinite(f) and f >= 1.0)]
        if bad:
            raise ConfigError([f"a tier's slowdown must be a finite factor >= 1 ({', '.join(bad)})"])
        self.graph, self.stages, self.links, self.timeout_s = graph, tuple(stages), tuple(links), timeout_s
        self.encodings, self.network = tuple(encodings), network
        self.cpus = {t: frozenset(c) for t, c in (cpus or {}).items()}
        self.latencies_s: list[float] = []
        self.processes: list[child.Child] = []
        self.helpers: list[child.Child] = []  # delay relays and load generators
        self._pipes: list[Connection] = []
        self._helper_pipes: list[Connection] = []
        self._inbox: list[deque[tuple[Any, ...]]] = []
        self._stamps: list[dict[int, Stamp]] = [{} for _ in stages]  # per stage: sequence -> its stamp
        self._head = SegmentSession(graph.segment(stages[0].start, stages[0].stop), threads=threads)
        self._channel: Channel | None = None
        self._seq = 0
        self._token = new_token()
        self.lab: netns.Lab | None = None
        try:
            if network == "kernel":
                self.lab = netns.Lab(links)
                self.links = tuple(h.link for h in self.lab.hops)  # TCP's segment headers modelled, as read
                self.shaping = [h.shaping.to_dict() for h in self.lab.hops]
            else:  # the relay serialises payload bytes: no headers in the model it enforces
                self.links = tuple(replace(lk, segment_payload_bytes=0, segment_header_bytes=0) for lk in links)
                self.shaping = [netns.user_space(lk).to_dict() for lk in self.links]
            self._start(threads, max_message_bytes)
        except BaseException:
            self.close()
            raise

    def _namespace(self, i: int) -> str | None:
        return self.lab.names[i] if self.lab else None

    def _start(self, threads: int, max_message_bytes: int) -> None:
        stages, links, lab = self.stages, self.links, self.lab
        next_port: int | None = None
        next_host = "127.0.0.1"
        self._inbox = [deque() for _ in stages[1:]]
        for i in range(len(stages) - 1, 0, -1):  # last stage first: its port feeds the one before
            hop = lab.hops[i - 1] if lab else None
            downstream = stages[i + 1].tier if i + 1 < len(stages) else None
            cfg = StageConfig(
                tier=stages[i].tier, upstream=stages[i - 1].tier, downstream=downstream,
                namespace=self._namespace(i),
                listen_host=hop.address if hop and not hop.relay else "127.0.0.1",
                next_host=next_host, next_port=next_port,
                encoding=self.encodings[i] if downstream else "raw+none", timeout_s=self.timeout_s,
                threads=threads, token=self._token, cpus=self.cpus.get(stages[i].tier),
                max_message_bytes=max_message_bytes, slowdown=self.slowdown.get(stages[i].tier, 1.0))
            proc = child.start(_stage_main, _segment_payload(self.graph.segment(stages[i].start, stages[i].stop)),
                               cfg, name=f"split-{stages[i].tier}")
            self.processes.insert(0, proc)
            self._pipes.insert(0, proc.conn)
            next_port = self._expect(0, "port")[1]
            next_host = hop.address if hop else "127.0.0.1"
            if hop is None:  # the user-space link: a relay serialises at the goodput and holds for the delay
                next_port = self._relay(i, None, "127.0.0.1", next_port, links[i - 1].goodput_bytes_per_s)
            elif hop.relay:  # the kernel's rate, the relay's delay
                next_port = self._relay(i, hop.receiver_ns, hop.address, next_port, 0.0)
        head_ns = self._namespace(0)
        assert next_port is not None  # there is at least one later stage
        if head_ns:
            with netns.inside(head_ns):
                self._channel = connect(next_host, next_port, stages[1].tier, self.timeout_s, self._token,
                                        self.encodings[0])
        else:
            self._channel = connect(next_host, next_port, stages[1].tier, self.timeout_s, self._token,
                                    self.encodings[0])

    def _relay(self, i: int, ns: str | None, host: str, target_port: int, rate_bytes_per_s: float) -> int:
        """Start the delay line in front of stage i (in namespace ``ns``); the port its upstream connects to."""
        link = self.links[i - 1]
        proc = child.start(netns.relay_main, ns, host, target_port, link.one_way_s, link.jitter_ms / 1e3, i,
                           self.timeout_s, rate_bytes_per_s, name=f"relay-{link.dst}")
        self.helpers.append(proc)
        parent = proc.conn
        self._helper_pipes.append(parent)
        if not parent.poll(self.timeout_s):
            raise SplitExecutionError(f"the delay relay into '{link.dst}' sent no port within "
                                      f"{self.timeout_s:g} s", self.latencies_s)
        msg = parent.recv()
        if msg[0] != "port":
            raise SplitExecutionError(msg[1], self.latencies_s)
        return int(msg[1])

    def load(self, tier: str, duty: float, seconds: float, workers: int = 1) -> None:
        """A bounded CPU load (``duty`` of each 10 ms, ``workers`` processes) in ``tier``'s namespace and CPUs."""
        if not 0.0 < duty <= 1.0:
            raise ConfigError([f"a CPU load's duty must be in (0, 1], not {duty!r}"])
        k = [s.tier for s in self.stages].index(tier)
        ns = self._namespace(k)
        if ns is None:
            raise ConfigError(["a load generator runs in a tier's namespace: it needs network='kernel'"])
        cpus = sorted(self.cpus.get(tier) or os.sched_getaffinity(0))
        for _ in range(workers):
            self.helpers.append(child.start(netns.load_main, ns, cpus, duty, 0.01, seconds, name=f"load-{tier}"))

    def _drain(self) -> None:
        """Read every stage's pending messages: errors raise, byte counts are kept, the rest queued."""
        for j, pipe in enumerate(self._pipes):
            while True:
                try:
                    msg = pipe.recv() if pipe.poll(0) else None
                except EOFError:
                    msg = None
                if msg is None:
                    break
                if msg[0] == "error":
                    raise SplitExecutionError(msg[1], self.latencies_s)
                if msg[0] == "sent":
                    self._stamps[j + 1][msg[1]] = msg[2]
                else:
                    self._inbox[j].append(msg)
        for pipe in self._helper_pipes:
            if pipe.poll(0):
                try:
                    msg = pipe.recv()
                except EOFError:
                    continue
                if msg[0] == "error":
                    raise SplitExecutionError(msg[1], self.latencies_s)

    def _expect(self, i: int, kind: str) -> tuple[Any, ...]:
        """The next ``kind`` message from stage i+1, failing clearly if any stage fails, dies or stalls."""
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            self._drain()
            inbox = self._inbox[i]
            while inbox:
                msg = inbox.popleft()
                if msg[0] == kind:
                    return msg
            dead = [(j, p) for j, p in enumerate(self.processes) if not p.is_alive()]
            if dead:
                self._drain()  # its last words (an error) first
                j, proc = dead[0]
                proc.join(1.0)
                raise SplitExecutionError(
                    f"stage '{self.stages[j + 1].tier}' (pid {proc.pid}) died with exit code "
                    f"{proc.exitcode} while waiting for '{kind}'", self.latencies_s)
            self._pipes[i].poll(POLL_S)
        raise SplitExecutionError(f"stage '{self.stages[i + 1].tier}' sent no '{kind}' within "
                                  f"{self.timeout_s:g} s", self.latencies_s)

    def _send(self, feed: Mapping[str, np.ndarray]) -> int:
        """Run the head on ``feed`` and send its boundary; its start (ns)."""
        assert self._channel is not None
        t0 = time.monotonic_ns()
        mid = self._head.run(feed)
        computed = pace(t0, self.slowdown.get(self.stages[0].tier, 1.0))
        self._seq += 1
        try:
            nbytes = self._channel.send_message(self._seq, [mid[n] for n in self._head.segment.outputs])
            self._stamps[0][self._seq] = Stamp(t0, computed, time.monotonic_ns(), 0.0, nbytes)
        except MeasurementError as exc:
            proc = self.processes[0]
            proc.join(0.5)
            state = "alive" if proc.is_alive() else f"exit code {proc.exitcode}"
            raise SplitExecutionError(f"stage '{self.stages[1].tier}' ({state}): {exc}",
                                      self.latencies_s) from None
        return t0

    def infer(self, feed: Mapping[str, np.ndarray]) -> tuple[float, dict[str, np.ndarray]]:
        """One inference through every stage: (seconds, outputs at the last stage)."""
        t0 = self._send(feed)
        msg = self._done(self._expect(len(self.processes) - 1, "done"))
        if msg[1] != self._seq:
            raise SplitExecutionError(f"result for inference {msg[1]} arrived while waiting for {self._seq}",
                                      self.latencies_s)
        return (msg[2] - t0) / 1e9, msg[3]

    def _done(self, msg: tuple[Any, ...]) -> tuple[Any, ...]:
        self._stamps[-1][msg[1]] = msg[4]
        return msg

    def _breakdown(self, seqs: Sequence[int]) -> dict[str, list[list[float]]]:
        """Per inference in ``seqs``: each stage's compute, receive and send CPU, each link's time and bytes."""
        self._drain()
        rows: dict[str, list[list[float]]] = {k: [] for k in ("compute_s", "receive_s", "send_s", "link_s",
                                                               "link_bytes")}
        for seq in seqs:
            stamps = [s.get(seq) for s in self._stamps]
            if any(st is None for st in stamps):
                continue  # a stage's stamp still in its pipe: that inference is left out, not guessed
            st = [s for s in stamps if s is not None]
            rows["compute_s"].append([(s.computed_ns - s.received_ns) / 1e9 for s in st])
            rows["receive_s"].append([s.decode_s for s in st])
            rows["send_s"].append([(s.sent_ns - s.computed_ns) / 1e9 for s in st])
            rows["link_s"].append([(b.received_ns - a.sent_ns) / 1e9 - b.decode_s for a, b in itertools.pairwise(st)])
            rows["link_bytes"].append([float(a.nbytes) for a in st[:-1]])
        return rows

    def calibrate(self, feeds: Iterable[Mapping[str, np.ndarray]], warmup: int = 1) -> Calibration:
        """Run ``feeds`` (after ``warmup`` untimed) one at a time, not counted as measurements, and
        measure what each message costs on these stages and links."""
        feeds = list(feeds)
        for feed in feeds[:1] * warmup:
            self.infer(feed)
        first = self._seq + 1
        for feed in feeds:
            self.infer(feed)
        rows = self._breakdown(range(first, self._seq + 1))
        if not rows["compute_s"]:
            raise MeasurementError("calibration: no inference came back with every stage's stamps")
        med = {k: [statistics.median(col) for col in zip(*v)] for k, v in rows.items()}
        message_s = {s.tier: (med["receive_s"][k] if k else 0.0, med["send_s"][k] if k + 1 < len(self.stages) else 0.0)
                     for k, s in enumerate(self.stages)}
        overhead = [statistics.median(t - self.links[k].one_way_s - self.links[k].serialise_s(n)
                                      for t, n in zip((r[k] for r in rows["link_s"]),
                                                      (r[k] for r in rows["link_bytes"])))
                    for k in range(len(self.links))]
        return Calibration(len(rows["compute_s"]), message_s, overhead, med["compute_s"], list(self.links))

    def measure(self, feeds: Iterable[Mapping[str, np.ndarray]], warmup: int = 1,
                reference: Sequence[Mapping[str, np.ndarray]] | None = None) -> SplitMeasurement:
        """Latency of each feed after ``warmup`` untimed ones; compared with ``reference`` outputs."""
        feeds = list(feeds)
        for feed in feeds[:1] * warmup:
            self.infer(feed)
        first = self._seq + 1
        outputs = []
        for feed in feeds:
            seconds, out = self.infer(feed)
            self.latencies_s.append(seconds)
            outputs.append(out)
        return self._result(outputs, reference, range(first, self._seq + 1))

    def measure_pipelined(self, feeds: Iterable[Mapping[str, np.ndarray]], warmup: int = 1,
                          reference: Sequence[Mapping[str, np.ndarray]] | None = None,
                          window: int | None = None) -> SplitMeasurement:
        """Feeds pushed with up to ``window`` in flight (default: one per stage and link), every stage
        busy on a different one; throughput = (completions - 1) / (last - first completion)."""
        feeds = list(feeds)
        if len(feeds) < 2:
            raise ConfigError(["a pipelined measurement needs at least two feeds"])
        for feed in feeds[:1] * warmup:
            self.infer(feed)
        first = self._seq + 1
        window = window or 2 * len(self.stages) - 1
        last = len(self.processes) - 1
        starts: dict[int, int] = {}
        done: list[tuple[Any, ...]] = []
        slots = threading.Semaphore(window)
        failure: list[BaseException] = []

        def collect() -> None:
            try:
                for _ in feeds:
                    done.append(self._done(self._expect(last, "done")))
                    slots.release()
            except BaseException as exc:  # noqa: BLE001 - handed to the feeding thread below
                failure.append(exc)
                slots.release()

        collector = threading.Thread(target=collect, daemon=True)
        collector.start()
        for feed in feeds:
            while not slots.acquire(timeout=POLL_S):
                if failure:
                    break
            if failure:
                break
            t0 = self._send(feed)
            starts[self._seq] = t0
        collector.join(self.timeout_s * 2)
        for msg in done:
            self.latencies_s.append((msg[2] - starts[msg[1]]) / 1e9)
        if failure:
            raise failure[0]
        if collector.is_alive():
            raise SplitExecutionError(f"the pipeline did not finish {len(feeds)} inferences", self.latencies_s)
        result = self._result([m[3] for m in done], reference, range(first, self._seq + 1))
        finish = [m[2] for m in done]
        result.throughput_per_s = (len(finish) - 1) / ((finish[-1] - finish[0]) / 1e9)
        result.extra["window"] = window
        return result

    def _result(self, outputs: Sequence[Mapping[str, np.ndarray]],
                reference: Sequence[Mapping[str, np.ndarray]] | None, seqs: Sequence[int]) -> SplitMeasurement:
        rows = self._breakdown(seqs)
        worst, agree = 0.0, None
        if reference is not None:
            worst = max((float(np.max(np.abs(out[k].astype(np.float64) - v))) for out, ref in zip(outputs, reference)
                         for k, v in ref.items() if v.size), default=0.0)
            agree = top1_agreement(outputs, reference)
        med = {k: [statistics.median(col) for col in zip(*v)] for k, v in rows.items() if v}
        return SplitMeasurement(self.stages, list(self.latencies_s), max_abs_error=worst, top1_agreement=agree,
                                shaping=list(self.shaping),
                                wire_bytes=[float(np.mean(col)) for col in zip(*rows["link_bytes"])]
                                or [0.0] * len(self.links),
                                terms={k: v for k, v in med.items() if k != "link_bytes"})

    def close(self) -> None:
        """Tell the stages to stop, make sure they have, then remove the namespaces."""
        if self._channel is not None:
            try:
                self._channel.send_close()
            except MeasurementError:
                pass  # a stage already gone: nothing to tell
            self._channel.close()
            self._channel = None
        for proc in self.processes:
            proc.join(2.0)
        for proc in self.processes + self.helpers:
            proc.close()
        self._head.close()
        if self.lab is not None:
            self.lab.close()

    def __enter__(self) -> SplitExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def pipeline_window(chosen: Plan) -> int:
    """How many queries a pipelined run of ``chosen`` keeps in flight: one per stage and link, and enough to
    cover its latency at its rate (Little's law: throughput <= in flight / latency, so a window of
    latency / bottleneck or fewer would measure the window, not the plan)."""
    cover = math.ceil(chosen.latency_s / chosen.bottleneck_s) + 1 if chosen.bottleneck_s > 0 else 1
    return max(2 * len(chosen.stages) - 1, cover)


def top1_agreement(outputs: Sequence[Mapping[str, np.ndarray]],
                   reference: Sequence[Mapping[str, np.ndarray]]) -> float | None:
    """Fraction of inputs whose first output's argmax matches the whole model's (None: not scores)."""
    pairs = [(out[k], v) for out, ref in zip(outputs, reference) for k, v in list(ref.items())[:1]]
    if not pairs or any(v.ndim < 1 or v.shape[-1] < 2 for _, v in pairs):
        return None
    return float(np.mean([np.array_equal(np.argmax(o, -1), np.argmax(v, -1)) for o, v in pairs]))


def stages_for(plan: Plan, boundaries: Sequence[int],
               links: Mapping[tuple[str, str], LinkProfile]) -> tuple[list[StageSpec], list[LinkProfile]]:
    """A planner's plan (over blocks) as executor stages (over graph positions) and their links.

    ``boundaries[k]`` is the graph position of planner boundary k (0, the cuts, then n).
    A relay-only tier stays a stage: it receives and forwards without computing.
    """
    stages = [StageSpec(s.tier, boundaries[s.start], boundaries[s.stop]) for s in plan.stages]
    return stages, [links[(t.src, t.dst)] for t in plan.transfers]
