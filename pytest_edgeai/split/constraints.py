"""What a split plan may not do: each constraint one small object that narrows the plan space.

A constraint edits the planner's masks (which tier may run which block, upload caps per link,
compute-time caps per tier, whether the raw input may leave the first tier) and says in words
what it forbids, so an infeasible problem can name the constraints that conflict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ..errors import PlanError, did_you_mean


@dataclass
class Masks:
    """The plan space a set of constraints leaves: tiers x blocks and per-link/tier caps."""

    allowed: np.ndarray                      # bool [tier, block]
    upload_cap: dict[tuple[str, str], float] = field(default_factory=dict)
    time_cap: dict[str, float] = field(default_factory=dict)
    input_may_leave: bool = True


class Constraint(Protocol):
    def apply(self, tiers: tuple[str, ...], blocks: tuple[str, ...], masks: Masks) -> None: ...

    def describe(self) -> str: ...


def _tier(tiers: tuple[str, ...], tier: str) -> int:
    if tier not in tiers:
        raise PlanError(f"constraint names tier '{tier}'{did_you_mean(tier, tiers)}, "
                        f"which is not in the chain {' -> '.join(tiers)}")
    return tiers.index(tier)


def _block(blocks: tuple[str, ...], block: int | str) -> int:
    if isinstance(block, str):
        if block not in blocks:
            raise PlanError(f"constraint names block '{block}'{did_you_mean(block, blocks)}, "
                            "which is not one of the problem's blocks")
        return blocks.index(block)
    if not 0 <= block < len(blocks):
        raise PlanError(f"constraint names block {block}; the problem has blocks 0..{len(blocks) - 1}")
    return block


def _tighten(caps: dict[Any, float], key: Any, value: float) -> None:
    """Two caps on the same thing: the tighter one holds."""
    caps[key] = min(caps.get(key, np.inf), value)


@dataclass(frozen=True)
class Pin:
    """Block (a layer, or the layers between two cuts) must run on this tier."""

    block: int | str
    tier: str

    def apply(self, tiers: tuple[str, ...], blocks: tuple[str, ...], masks: Masks) -> None:
        k, t = _block(blocks, self.block), _tier(tiers, self.tier)
        keep = masks.allowed[t, k]
        masks.allowed[:, k] = False
        masks.allowed[t, k] = keep

    def describe(self) -> str:
        return f"block {self.block!r} pinned to {self.tier}"


@dataclass(frozen=True)
class Exclude:
    """Block must not run on this tier."""

    block: int | str
    tier: str

    def apply(self, tiers: tuple[str, ...], blocks: tuple[str, ...], masks: Masks) -> None:
        masks.allowed[_tier(tiers, self.tier), _block(blocks, self.block)] = False

    def describe(self) -> str:
        return f"block {self.block!r} excluded from {self.tier}"


@dataclass(frozen=True)
class MaxUpload:
    """At most this many bytes per inference over the link src -> dst."""

    src: str
    dst: str
    max_bytes: float

    def apply(self, tiers: tuple[str, ...], blocks: tuple[str, ...], masks: Masks) -> None:
        _tier(tiers, self.src), _tier(tiers, self.dst)
        _tighten(masks.upload_cap, (self.src, self.dst), self.max_bytes)

    def describe(self) -> str:
        return f"upload {self.src} -> {self.dst} at most {self.max_bytes:g} bytes"


@dataclass(frozen=True)
class MaxTierTime:
    """At most this many seconds of compute per inference on a tier."""

    tier: str
    max_s: float

    def apply(self, tiers: tuple[str, ...], blocks: tuple[str, ...], masks: Masks) -> None:
        _tier(tiers, self.tier)
        _tighten(masks.time_cap, self.tier, self.max_s)

    def describe(self) -> str:
        return f"compute on {self.tier} at most {self.max_s * 1e3:g} ms"


@dataclass(frozen=True)
class KeepInputOnDevice:
    """The raw input must not leave the first tier (privacy): at least one block runs there."""

    def apply(self, tiers: tuple[str, ...], blocks: tuple[str, ...], masks: Masks) -> None:
        masks.input_may_leave = False

    def describe(self) -> str:
        return "the raw input must not leave the device"
