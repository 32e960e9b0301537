"""Link profiles between tiers, and how long a tensor takes to cross one.

Transfer time for ``n`` bytes = RTT/2 + wire(n) / rate, rate = bandwidth x (1 - loss), where wire(n) is
the bytes a shaper counts: n itself, or, where the link's TCP segmentation is modelled (a kernel-shaped
link: netns.Lab reads the payload per segment, TCP_MAXSEG, and the veth's MTU), n plus each segment's
headers (Ethernet + IP + TCP with its options: 66 bytes per 1448 at MTU 1500 with timestamps, so goodput
is 0.956 of the rate). The user-space relay serialises payload bytes, so its profile models no headers.
Why RTT/2 and not Scission's full ping: a split pipeline pushes each tensor down an open
connection and does not wait for a reply, so one-way propagation is what the tensor pays;
the user-space link (link.py) enforces exactly this model, so over it prediction and measurement
share one model; a kernel-shaped link (netns.py) is TCP through tbf (and netem where present).
Loss is modelled as lost goodput (retransmitted bytes), not as extra round trips.
``message_overhead_s`` is what a link really takes per message beyond that model (framing, TCP's
headers where they are not modelled, the delay relay's hop, a kernel tbf's burst that lets the first bytes through
unpaced, so it may be negative), measured on the link itself by execute.SplitExecutor.calibrate;
0 until measured.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..config import Config, Link


@dataclass(frozen=True)
class LinkProfile:
    """A one-way link from tier ``src`` to tier ``dst``."""

    src: str
    dst: str
    bandwidth_mbps: float
    rtt_ms: float
    loss: float = 0.0
    tx_power_w: float = 0.0  # sender's radio power while sending (for the energy objective)
    name: str = ""
    jitter_ms: float = 0.0  # standard deviation of the one-way delay (a kernel-shaped link applies it)
    message_overhead_s: float = 0.0  # measured per message beyond RTT/2 + wire bytes / rate (see the module doc)
    segment_payload_bytes: int = 0  # TCP payload per full segment where headers are modelled (0: they are not)
    segment_header_bytes: int = 0   # bytes the shaper counts per segment beyond its payload (link, IP, TCP headers)

    def __post_init__(self) -> None:
        label = self.name or f"{self.src}->{self.dst}"
        problems = []
        if not (math.isfinite(self.bandwidth_mbps) and self.bandwidth_mbps > 0):
            problems.append(f"link {label}: bandwidth_mbps is {self.bandwidth_mbps!r}; it must be a "
                            "finite number > 0 (a link that carries nothing cannot take a cut)")
        if not (math.isfinite(self.rtt_ms) and self.rtt_ms >= 0):
            problems.append(f"link {label}: rtt_ms is {self.rtt_ms!r}; it must be a finite number >= 0")
        if not (math.isfinite(self.jitter_ms) and self.jitter_ms >= 0):
            problems.append(f"link {label}: jitter_ms is {self.jitter_ms!r}; it must be a finite number >= 0")
        if not 0.0 <= self.loss < 1.0:
            problems.append(f"link {label}: loss is {self.loss!r}; it must be a fraction 0 <= loss < 1")
        if not math.isfinite(self.message_overhead_s):
            problems.append(f"link {label}: message_overhead_s is {self.message_overhead_s!r}; it must be finite")
        if self.segment_payload_bytes < 0 or self.segment_header_bytes < 0 or (
                self.segment_header_bytes and not self.segment_payload_bytes):
            problems.append(f"link {label}: segment_payload_bytes {self.segment_payload_bytes!r} and "
                            f"segment_header_bytes {self.segment_header_bytes!r} must be >= 0, headers only with a "
                            "payload per segment")
        if not (math.isfinite(self.tx_power_w) and self.tx_power_w >= 0):
            problems.append(f"link {label}: tx_power_w is {self.tx_power_w!r}; it must be >= 0")
        if problems:
            raise ConfigError(problems)

    @property
    def rate_bytes_per_s(self) -> float:
        """What the link carries, headers included: bandwidth x (1 - loss) (loss as lost goodput)."""
        return self.bandwidth_mbps * 1e6 / 8.0 * (1.0 - self.loss)

    @property
    def goodput_bytes_per_s(self) -> float:
        """Payload bytes per second in full segments: the rate less each segment's headers, where modelled."""
        if not self.segment_payload_bytes:
            return self.rate_bytes_per_s
        return self.rate_bytes_per_s * self.segment_payload_bytes / (
            self.segment_payload_bytes + self.segment_header_bytes)

    def wire_bytes(self, nbytes: float) -> float:
        """Bytes the shaper counts for a message of ``nbytes``: its payload and, where modelled, the headers of
        each of its segments (the last one partial)."""
        if not self.segment_payload_bytes:
            return nbytes
        return nbytes + math.ceil(nbytes / self.segment_payload_bytes) * self.segment_header_bytes

    @property
    def one_way_s(self) -> float:
        return self.rtt_ms / 2000.0

    def serialise_s(self, nbytes: float) -> float:
        """Seconds the link is busy putting ``nbytes`` on the wire: in a pipeline the propagation
        delay of one message overlaps the next, so only this occupies the link."""
        return self.wire_bytes(nbytes) / self.rate_bytes_per_s

    def transfer_s(self, nbytes: float) -> float:
        """Seconds from the first byte sent to the last byte received (never below the propagation delay)."""
        return self.one_way_s + max(0.0, self.serialise_s(nbytes) + self.message_overhead_s)

    @classmethod
    def from_config(cls, link: Link) -> LinkProfile:
        return cls(src=link.src, dst=link.dst, bandwidth_mbps=link.bandwidth_mbps,
                   rtt_ms=link.rtt_ms, loss=link.loss, name=link.name, jitter_ms=link.jitter_ms)


# The network profiles Scission ships (Lockhart & Varghese, UCC 2020): ping in ms, Mbit/s.
SCISSION_PROFILES = (
    LinkProfile("device", "edge", 1.6, 66.7, name="scission device-edge"),
    LinkProfile("device", "cloud", 1.6, 100.0, name="scission device-cloud"),
    LinkProfile("edge", "cloud", 50.0, 20.0, name="scission edge-cloud"),
)

Links = dict[tuple[str, str], LinkProfile]


def link_table(profiles: Iterable[LinkProfile]) -> Links:
    """Links keyed by (src, dst); two links for one pair is a configuration error."""
    table: Links = {}
    for p in profiles:
        if (p.src, p.dst) in table:
            raise ConfigError([(f"links {table[(p.src, p.dst)].name!r} and {p.name!r} both go "
                                f"{p.src} -> {p.dst}; keep one")])
        table[(p.src, p.dst)] = p
    return table


def links_from_config(config: Config) -> Links:
    """The configured links, or Scission's published profiles when none are configured."""
    if config.links:
        return link_table(LinkProfile.from_config(lk) for lk in config.links.values())
    return link_table(SCISSION_PROFILES)
