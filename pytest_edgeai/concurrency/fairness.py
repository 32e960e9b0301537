"""How evenly tenants share a device: Jain's fairness index and the spread of shares."""

from __future__ import annotations

from dataclasses import asdict, dataclass


def jain_index(values: list[float]) -> float:
    """Jain's index (sum x)^2 / (n * sum x^2): 1 when all equal, 1/n when one gets everything."""
    if not values:
        raise ValueError("Jain's index of no tenants is undefined")
    if any(v < 0 for v in values):
        raise ValueError("Jain's index needs non-negative throughputs")
    total = sum(values)
    squares = sum(v * v for v in values)
    if squares == 0:
        return 1.0  # nobody got anything: equally (un)served
    return total * total / (len(values) * squares)


@dataclass(frozen=True)
class Fairness:
    """Each tenant's share of the aggregate and how unequal the shares are."""

    shares: tuple[float, ...]
    jain: float
    min_share: float
    max_share: float

    @property
    def min_max_ratio(self) -> float:
        """The least-served tenant's share over the best-served one's (1 = perfectly even)."""
        return self.min_share / self.max_share if self.max_share > 0 else 1.0

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "shares": list(self.shares), "min_max_ratio": self.min_max_ratio}


def fairness(throughputs: list[float]) -> Fairness:
    """Shares of the aggregate throughput, Jain's index, smallest and largest share."""
    total = sum(throughputs)
    shares = tuple(t / total if total > 0 else 1.0 / len(throughputs) for t in throughputs)
    return Fairness(shares=shares, jain=jain_index(throughputs), min_share=min(shares), max_share=max(shares))
