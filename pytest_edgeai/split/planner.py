"""Where to cut: the exact best plans for a chain of tiers, by dynamic programming.

A model is a sequence of B blocks (the layers between consecutive cuts); boundary ``j`` is
the data between block j-1 and block j (0: the raw input, B: the output). Tiers form an
ordered chain (device -> edge -> cloud, any number); the input starts on the first tier and
data only moves forward. A plan gives each tier on its route a contiguous, possibly empty,
run of blocks (empty = the tier only relays) and sends the boundary between runs over the
link between the two tiers. The result is delivered where the last block ran.

Each tier may also carry a measured CPU cost per message (``message_s``: decoding what it receives,
encoding and sending what it sends; split execution's calibration measures it on the plan's own
link, execute.Calibration): a stage is busy for its blocks plus those, since a stage receives,
computes and sends one message after another.

Objectives: end-to-end latency (compute + message CPU + transfers), energy (per-block joules where given,
plus each link's tx_power_w x transfer time), or pipelined throughput (minimise the slowest
stage: a tier's run or a link's serialisation time; propagation delay overlaps in a pipeline,
so it adds to latency but occupies no stage). All three are monotone path costs over the states
(boundary, tier), so keeping the N best partial plans per state gives the exact top-N in
O(T^2 B^2 N) vectorised work instead of enumerating every plan (Scission's brute force).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ConfigError, PlanError
from .constraints import Constraint, Masks
from .network import LinkProfile

OBJECTIVES = ("latency", "energy", "throughput")
_CHUNK = 1 << 22  # elements of the candidate tensor evaluated at once (bounds memory)


@dataclass(frozen=True)
class SplitProblem:
    """Per-block compute on each tier, bytes at each boundary, links between tiers."""

    tiers: tuple[str, ...]
    latency_s: Mapping[str, Sequence[float]]       # tier -> seconds per block; inf: cannot run it
    boundary_bytes: Sequence[float]                # B + 1 values
    links: Mapping[tuple[str, str], LinkProfile]
    energy_j: Mapping[str, Sequence[float]] = field(default_factory=dict)
    block_names: tuple[str, ...] = ()
    # tier -> bytes of each boundary when that tier sends it (its precision: an EdgeTPU sends int8);
    # a tier not named sends boundary_bytes
    tier_bytes: Mapping[str, Sequence[float]] = field(default_factory=dict)
    # tier -> (seconds to receive, seconds to send) one message, measured; a tier not named: (0, 0)
    message_s: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    def sent_bytes(self, tier: str) -> Sequence[float]:
        return self.tier_bytes.get(tier, self.boundary_bytes)

    def __post_init__(self) -> None:
        b = len(self.boundary_bytes) - 1
        problems = []
        if b < 1:
            problems.append("a split problem needs at least one block (two boundary sizes)")
        if len(set(self.tiers)) != len(self.tiers) or not self.tiers:
            problems.append(f"tiers {self.tiers!r} must be a non-empty chain of distinct names")
        for label, table in (("latency_s", self.latency_s), ("energy_j", self.energy_j)):
            for tier, values in table.items():
                if tier not in self.tiers:
                    problems.append(f"{label} has tier '{tier}', which is not in the chain {self.tiers}")
                elif len(values) != b:
                    problems.append(f"{label}[{tier}] has {len(values)} values for {b} blocks")
                elif any(not (v >= 0) for v in values):  # also catches nan
                    problems.append(f"{label}[{tier}] has a negative or NaN value")
        if any(not (x >= 0 and math.isfinite(x)) for x in self.boundary_bytes):
            problems.append("boundary_bytes must be finite and >= 0")
        for tier, sizes in self.tier_bytes.items():
            if tier not in self.tiers or len(sizes) != b + 1 or any(not (x >= 0 and math.isfinite(x)) for x in sizes):
                problems.append(f"tier_bytes[{tier}] must be {b + 1} finite sizes >= 0 of a tier in the chain")
        for tier, costs in self.message_s.items():
            if tier not in self.tiers or len(costs) != 2 or any(not (x >= 0 and math.isfinite(x)) for x in costs):
                problems.append(f"message_s[{tier}] must be (receive, send) seconds >= 0 of a tier in the chain")
        if self.block_names and len(self.block_names) != b:
            problems.append(f"block_names has {len(self.block_names)} names for {b} blocks")
        if problems:
            raise ConfigError(problems)

    @property
    def blocks(self) -> int:
        return len(self.boundary_bytes) - 1

    def message_cost(self, tier: str, start: int, stop: int) -> float:
        """CPU seconds a run [start, stop) on ``tier`` spends on messages: it receives one unless it holds
        the raw input (the first tier, from boundary 0) and sends one unless it delivers the output."""
        receive, send = self.message_s.get(tier, (0.0, 0.0))
        return (receive if tier != self.tiers[0] else 0.0) + (send if stop < self.blocks else 0.0)

    @property
    def names(self) -> tuple[str, ...]:
        return self.block_names or tuple(str(k) for k in range(self.blocks))


@dataclass(frozen=True)
class Stage:
    tier: str
    start: int  # first block
    stop: int   # one past the last block; start == stop: the tier only relays
    compute_s: float
    energy_j: float
    message_s: float = 0.0  # measured CPU of receiving and sending its messages (0: not calibrated)

    @property
    def busy_s(self) -> float:
        """How long the stage is occupied per query: its blocks, then its messages."""
        return self.compute_s + self.message_s


@dataclass(frozen=True)
class Transfer:
    src: str
    dst: str
    boundary: int
    nbytes: float
    seconds: float   # first byte sent to last received: delay + serialisation (latency)
    energy_j: float
    busy_s: float    # serialisation alone: how long the link is occupied (pipeline bottleneck)


@dataclass(frozen=True)
class Plan:
    """A placement of every block, with what it costs."""

    stages: tuple[Stage, ...]
    transfers: tuple[Transfer, ...]
    latency_s: float
    bottleneck_s: float
    energy_j: float
    objective: str

    @property
    def score(self) -> float:
        return {"latency": self.latency_s, "energy": self.energy_j,
                "throughput": self.bottleneck_s}[self.objective]

    @property
    def throughput_per_s(self) -> float:
        return 1.0 / self.bottleneck_s if self.bottleneck_s > 0 else math.inf

    @property
    def cuts(self) -> tuple[int, ...]:
        """The boundaries where data changes tier."""
        return tuple(t.boundary for t in self.transfers)

    def describe(self) -> str:
        parts = [f"{s.tier}[{s.start}:{s.stop}]" for s in self.stages]
        return " -> ".join(parts) + f" ({self.objective} {self.score:.6g})"

    def to_dict(self) -> dict[str, Any]:
        return {"stages": [vars(s) for s in self.stages], "transfers": [vars(t) for t in self.transfers],
                "latency_s": self.latency_s, "bottleneck_s": self.bottleneck_s,
                "energy_j": self.energy_j, "objective": self.objective, "summary": self.describe()}


def evaluate(problem: SplitProblem, route: Sequence[tuple[str, int, int]], objective: str = "latency") -> Plan:
    """Cost of a plan given as (tier, start, stop) runs along the chain."""
    stages, transfers = [], []
    for n, (tier, start, stop) in enumerate(route):
        lat = problem.latency_s.get(tier, ())
        en = problem.energy_j.get(tier, ())
        stages.append(Stage(tier, start, stop, float(sum(lat[start:stop])), float(sum(en[start:stop])),
                            problem.message_cost(tier, start, stop)))
        if n + 1 < len(route):
            link = problem.links[(tier, route[n + 1][0])]
            nbytes = float(problem.sent_bytes(tier)[stop])
            secs = link.transfer_s(nbytes)
            transfers.append(Transfer(tier, link.dst, stop, nbytes, secs, secs * link.tx_power_w,
                                      link.serialise_s(nbytes)))
    compute = [s.busy_s for s in stages]
    return Plan(tuple(stages), tuple(transfers),
                latency_s=float(sum(compute) + sum(t.seconds for t in transfers)),
                bottleneck_s=float(max(compute + [t.busy_s for t in transfers])),
                energy_j=float(sum(s.energy_j for s in stages) + sum(t.energy_j for t in transfers)),
                objective=objective)


def plan(problem: SplitProblem, objective: str = "latency", constraints: Iterable[Constraint] = (),
         top: int = 1) -> list[Plan]:
    """The ``top`` best plans, best first; PlanError naming the conflicting constraints if none."""
    if objective not in OBJECTIVES:
        raise ConfigError([f"objective '{objective}' is not one of {', '.join(OBJECTIVES)}"])
    if objective == "energy" and not problem.energy_j:
        raise PlanError("the energy objective needs per-block energy (energy_j) for at least one tier")
    if top < 1:
        raise ConfigError([f"top must be >= 1, not {top}"])
    constraints = list(constraints)
    routes = _Solver(problem, _masks(problem, constraints), objective, top).solve()
    if not routes:
        raise PlanError(_why_infeasible(problem, constraints))
    plans = [evaluate(problem, r, objective) for r in routes]
    return sorted(plans, key=lambda p: p.score)


def _masks(problem: SplitProblem, constraints: Sequence[Constraint]) -> Masks:
    lat = np.array([np.asarray(problem.latency_s.get(t, [np.inf] * problem.blocks), float)
                    for t in problem.tiers])
    masks = Masks(allowed=np.isfinite(lat))
    for c in constraints:
        c.apply(problem.tiers, problem.names, masks)
    return masks


def _why_infeasible(problem: SplitProblem, constraints: list[Constraint]) -> str:
    """Name a minimal set of constraints that together leave no plan (deletion filter)."""
    def feasible(cs: list[Constraint]) -> bool:
        return bool(_Solver(problem, _masks(problem, cs), "latency", 1).solve())

    chain = " -> ".join(problem.tiers)
    if not feasible([]):
        nowhere = [problem.names[k] for k in range(problem.blocks)
                   if not any(math.isfinite(problem.latency_s.get(t, [math.inf] * problem.blocks)[k])
                              for t in problem.tiers)]
        if nowhere:
            return (f"no plan exists even without constraints: no tier in {chain} can run "
                    f"block(s) {', '.join(nowhere[:10])}")
        links = ", ".join(f"{s}->{d}" for s, d in problem.links) or "none"
        return (f"no plan exists even without constraints: the links ({links}) do not connect "
                f"the tiers of {chain} that can run the blocks")
    conflict = list(constraints)
    for c in list(conflict):
        rest = [x for x in conflict if x is not c]
        if not feasible(rest):
            conflict = rest
    return ("no plan satisfies the constraints; these together leave none (dropping any one of "
            f"them makes a plan possible): {'; '.join(c.describe() for c in conflict)}")


class _Solver:
    """N-best dynamic programme over states (boundary j, tier t), tier by tier."""

    def __init__(self, problem: SplitProblem, masks: Masks, objective: str, top: int):
        self.p, self.m, self.obj, self.n = problem, masks, objective, top
        self.combine = np.maximum if objective == "throughput" else np.add
        self.b = problem.blocks

    def _prefix(self, table: Mapping[str, Sequence[float]], tier: str) -> np.ndarray:
        values = np.nan_to_num(np.asarray(table.get(tier, [0.0] * self.b), float), posinf=0.0)
        return np.concatenate([[0.0], np.cumsum(values)])

    def _segments(self, t: int) -> np.ndarray:
        """[i, j] -> objective value of running blocks i..j-1 on tier t (inf if not allowed)."""
        tier = self.p.tiers[t]
        allowed = self.m.allowed[t]
        # first disallowed block at or after i (b when none): a run [i, j) needs j <= that
        nxt = np.full(self.b + 1, self.b)
        bad = np.flatnonzero(~allowed)
        idx = np.searchsorted(bad, np.arange(self.b + 1))
        has = idx < len(bad)
        nxt[has] = bad[idx[has]]
        lat = self._prefix(self.p.latency_s, tier)
        i = np.arange(self.b + 1)[:, None]
        j = np.arange(self.b + 1)[None, :]
        run = lat[None, :] - lat[:, None]
        ok = (j >= i) & (j <= nxt[:, None]) & (run <= self.m.time_cap.get(tier, np.inf) * (1 + 1e-12))
        value = self._prefix(self.p.energy_j, tier) if self.obj == "energy" else lat
        seg = np.maximum(value[None, :] - value[:, None], 0.0)
        if self.obj != "energy" and tier in self.p.message_s:
            receive, send = self.p.message_s[tier]
            seg = seg + (receive if t else 0.0) + np.where(j < self.b, send, 0.0)
        return np.where(ok, seg, np.inf)

    def _transfer(self, t: int, u: int) -> np.ndarray | None:
        """Boundary j -> objective value of sending it from tier t to tier u (inf if not allowed)."""
        key = (self.p.tiers[t], self.p.tiers[u])
        link = self.p.links.get(key)
        if link is None:
            return None
        sent = np.asarray(self.p.sent_bytes(self.p.tiers[t]), float)
        busy = link.serialise_s if self.obj == "throughput" else link.transfer_s
        secs = np.array([busy(x) for x in sent])
        cost = secs * link.tx_power_w if self.obj == "energy" else secs
        bad = sent > self.m.upload_cap.get(key, np.inf)
        bad[self.b] = True  # nothing is left to compute once the output exists
        if not self.m.input_may_leave:
            bad[0] = True
        return np.where(bad, np.inf, cost)

    def _best(self, cand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per column: the n smallest rows of ``cand`` (values, row indices), ascending."""
        rows = cand.shape[0]
        if rows > self.n:
            part = np.argpartition(cand, self.n - 1, axis=0)[: self.n]
        else:
            part = np.broadcast_to(np.arange(rows)[:, None], cand.shape).copy()
        vals = np.take_along_axis(cand, part, axis=0)
        order = np.argsort(vals, axis=0, kind="stable")
        vals, part = np.take_along_axis(vals, order, 0), np.take_along_axis(part, order, 0)
        if rows < self.n:
            pad = self.n - rows
            vals = np.vstack([vals, np.full((pad, cand.shape[1]), np.inf)])
            part = np.vstack([part, np.zeros((pad, cand.shape[1]), int)])
        return vals, part

    def solve(self) -> list[list[tuple[str, int, int]]]:
        T, B1, n = len(self.p.tiers), self.b + 1, self.n
        # arrivals[t]: (B1, n) best costs of reaching tier t at boundary j; back: (prev tier, rank)
        pending: list[list[tuple[np.ndarray, int]]] = [[] for _ in range(T)]
        arr_back: list[np.ndarray] = [None] * T  # type: ignore[list-item]
        run_back: list[np.ndarray] = [None] * T  # type: ignore[list-item]
        finals: list[tuple[float, int, int]] = []
        for t in range(T):
            if t == 0:
                arr = np.full((B1, n), np.inf)
                arr[0, 0] = 0.0
                arr_back[t] = np.full((B1, n, 2), -1)
            else:
                if not pending[t]:
                    continue
                stacked = np.concatenate([c for c, _ in pending[t]], axis=1)  # (B1, n * k)
                origin = np.concatenate([np.stack([np.full((B1, n), prev), np.tile(np.arange(n), (B1, 1))], -1)
                                         for _, prev in pending[t]], axis=1)
                vals, rows = self._best(stacked.T)
                arr = vals.T
                arr_back[t] = np.take_along_axis(origin, rows.T[:, :, None], axis=1)
            seg = self._segments(t)
            done = np.full((B1, n), np.inf)
            back = np.zeros((B1, n), int)  # flat index i * n + rank into arr
            step = max(1, _CHUNK // max(1, B1 * n))
            for j0 in range(0, B1, step):
                cand = self.combine(arr[:, :, None], seg[:, None, j0:j0 + step]).reshape(B1 * n, -1)
                vals, rows = self._best(cand)
                done[j0:j0 + step] = vals.T
                back[j0:j0 + step] = rows.T
            run_back[t] = back
            finals.extend((float(v), t, r) for r, v in enumerate(done[self.b]) if np.isfinite(v))
            for u in range(t + 1, T):
                cost = self._transfer(t, u)
                if cost is not None:
                    pending[u].append((self.combine(done, cost[:, None]), t))
        finals.sort()
        return [self._route(t, r, arr_back, run_back) for _, t, r in finals[:n]]

    def _route(self, t: int, rank: int, arr_back: Sequence[np.ndarray],
               run_back: Sequence[np.ndarray]) -> list[tuple[str, int, int]]:
        route = []
        j = self.b
        while True:
            flat = run_back[t][j, rank]
            i, arank = divmod(int(flat), self.n)
            route.append((self.p.tiers[t], i, j))
            prev, prank = arr_back[t][i, arank]
            if prev < 0:
                return route[::-1]
            t, j, rank = int(prev), i, int(prank)
