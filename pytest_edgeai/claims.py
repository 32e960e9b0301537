"""What a device must meet: the claim vocabulary of every suite, and how a claim is judged.

devices.toml states thresholds; a suite measures, records, then checks. A claim's direction
comes from its name (``min_`` or ``max_``), its unit and metric from its definition here, so a
failed claim can say what was expected, what was observed, and by how much it missed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, NoReturn

from .devices import ANY_MODEL


@dataclass(frozen=True)
class ClaimDef:
    """A claim a suite knows how to check."""

    suite: str
    name: str
    unit: str
    description: str
    extra_fields: tuple[str, ...] = ()

    @property
    def direction(self) -> str:
        return "min" if self.name.startswith("min_") else "max"


CLAIMS: dict[str, dict[str, ClaimDef]] = {}


def define(suite: str, name: str, unit: str, description: str, extra_fields: tuple[str, ...] = ()) -> ClaimDef:
    """Register a claim; suites and plug-ins call this at import time."""
    if not (name.startswith("min_") or name.startswith("max_")):
        raise ValueError(f"claim name {name!r} must start with min_ or max_")
    claim = ClaimDef(suite, name, unit, description, extra_fields)
    CLAIMS.setdefault(suite, {})[name] = claim
    return claim


define("throughput", "min_inferences_per_s", "inferences/s",
       "offline throughput at batch 1 must reach this")
define("throughput", "max_p90_latency_ms", "ms",
       "single-stream p90 latency must not exceed this")
define("throughput", "min_batching_speedup", "x",
       "best offline throughput over the batch sweep divided by batch-1 throughput")
define("throughput", "min_edgetpu_op_fraction", "fraction",
       "operations edgetpu_compiler mapped to the Edge TPU over all operations of the compiled model")

define("energy", "max_joules_per_inference", "J",
       "energy over the offline batch-1 window divided by the inferences in it (total, not above idle)")
define("energy", "min_inferences_per_s_per_w", "inferences/s/W",
       "offline batch-1 throughput divided by the mean power over the same window")
define("energy", "min_inferences_per_s_per_usd", "inferences/s/USD",
       "offline batch-1 throughput divided by the device's price_usd")
define("energy", "min_ips_per_usd_ratio", "x",
       "this device's inferences/s/USD over that of the device named by 'against' "
       "(its latest energy result in the run store)", extra_fields=("against",))

define("compression", "min_size_reduction", "x",
       "fp32 file size / quantised variant file size (every variant, or the one named by 'method')",
       extra_fields=("method",))
define("compression", "min_int8_speedup", "x",
       "offline batch-1 throughput of the int8 variant ('method', default int8_static) / fp32",
       extra_fields=("method",))
define("compression", "min_top1_agreement", "fraction",
       "share of deterministic inputs whose top-1 matches fp32 (every variant, or 'method')",
       extra_fields=("method",))
define("compression", "min_top5_agreement", "fraction",
       "share of inputs whose fp32 top-1 is among the variant's top 5 (every variant, or 'method'); trained models only",
       extra_fields=("method",))
define("compression", "max_top1_prob_change", "probability",
       "mean |p_variant - p_fp32| of fp32's top-1 class (every variant, or 'method'); trained models only",
       extra_fields=("method",))
define("compression", "min_cascade_latency_reduction", "x",
       "expected latency of the large model for every input over the link / the cascade's, "
       "at confidence 'at_threshold' (default 0.9) over 'link' (default device_cloud); model = workload",
       extra_fields=("at_threshold", "link"))
define("compression", "max_cascade_accuracy_loss", "fraction",
       "large-model-only accuracy minus the cascade's, at 'at_threshold' over 'link'; model = workload",
       extra_fields=("at_threshold", "link"))

define("concurrency", "min_tenants", "tenants",
       "tenants of the model that load and run within the memory budget (observed, child process)")
define("concurrency", "min_aggregate_speedup", "x",
       "aggregate throughput of N tenants (at_tenants, default the largest N measured) over one tenant alone",
       extra_fields=("at_tenants",))
define("concurrency", "max_tenant_p90_latency_ms", "ms",
       "the worst tenant's p90 latency with N tenants running (at_tenants, default the largest N measured)",
       extra_fields=("at_tenants",))
define("concurrency", "max_tenants_prediction_error", "fraction",
       "|predicted - observed| / observed maximum tenants, the prediction from the per-tenant footprint")
define("concurrency", "min_placement_speedup", "x",
       "throughput of shortest-queue dispatch over several devices divided by the best single device")

define("split", "min_best_cut_saving", "x",
       "compressed input bytes over the bytes at the best single-tensor cut inside the feature layers; "
       "'encoding' (default 'lossless': raw tensors, best lossless codec; or e.g. 'int8+zstd'), "
       "'before_last_layers' (default 0: only cuts at least this many network layers before the output count)",
       extra_fields=("encoding", "before_last_layers"))
define("split", "min_cut_saving", "x",
       "compressed input bytes over the bytes at the cut that ends block 'at' (node names starting 'at.', "
       "e.g. layer_11 = MobileNetV2's inverted-residual block 10), in 'encoding' as above",
       extra_fields=("at", "encoding"))
define("split", "max_saving_depth_layers", "layers",
       "network layers (weighted ops on the longest path) between the output and the earliest single-tensor "
       "cut that sends fewer bytes than the compressed input ('encoding' as above); 0 when no cut saves",
       extra_fields=("encoding",))
define("split", "max_prediction_error", "fraction",
       "|measured - predicted| / measured median end-to-end latency of the planned split, run in "
       "separate processes over a shaped loopback link")


@dataclass(frozen=True)
class ClaimSpec:
    """One threshold from devices.toml, for one model or for every model ('*')."""

    suite: str
    name: str
    threshold: float
    model: str = ANY_MODEL
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def definition(self) -> ClaimDef:
        return CLAIMS[self.suite][self.name]


@dataclass
class ClaimResult:
    """A checked claim as it goes into a result record."""

    suite: str
    name: str
    model: str
    device: str
    threshold: float
    observed: float | None
    unit: str
    verdict: str  # "pass", "fail" or "skip"
    message: str
    margin: float | None = None  # observed against threshold, signed: >0 means met with room

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def judge(spec: ClaimSpec, device: str, model: str, observed: float | None,
          estimated: bool = False) -> ClaimResult:
    """Compare an observation with a threshold; say by how much it missed or held."""
    cdef = spec.definition
    op = ">=" if cdef.direction == "min" else "<="
    where = f"{spec.name} for {model} on {device}"
    base = dict(suite=spec.suite, name=spec.name, model=model, device=device,
                threshold=spec.threshold, observed=observed, unit=cdef.unit)
    if observed is None or not math.isfinite(observed):
        return ClaimResult(**base, verdict="skip",
                           message=f"{where}: nothing was measured to compare with {op} {spec.threshold:g} {cdef.unit}")
    if estimated and not spec.extras.get("allow_estimate", False):
        return ClaimResult(**base, verdict="skip",
                           message=f"{where}: observed {observed:.4g} {cdef.unit} is an estimate, "
                                   f"and the claim does not allow estimates (allow_estimate = true)")
    if cdef.direction == "min":
        met = observed >= spec.threshold
        margin = observed / spec.threshold - 1.0 if spec.threshold else math.inf
    else:
        met = observed <= spec.threshold
        margin = 1.0 - observed / spec.threshold if spec.threshold else -math.inf
    how = f"{abs(margin) * 100:.1f}% {'headroom' if met else ('short' if cdef.direction == 'min' else 'over')}"
    message = (f"{where}: expected {op} {spec.threshold:g} {cdef.unit}, "
               f"observed {observed:.4g} {cdef.unit} ({how})")
    return ClaimResult(**base, verdict="pass" if met else "fail", message=message, margin=margin)


class ClaimChecker:
    """The claims of one device in one suite, checked against a test's records.

    ``check`` judges and records at once (the record is rewritten with the verdict), so the
    measurement is on disk whether or not the claim holds. ``assert_met`` then fails the test
    on any missed claim, or skips it when every claim it tried could not be checked here. The
    pytest functions for failing and skipping are passed in: nothing here imports pytest.
    """

    def __init__(self, device, suite: str, save: Callable[[Any], None],
                 fail: Callable[[str], NoReturn], skip: Callable[[str], NoReturn]):
        self.device = device
        self.suite = suite
        self._save = save
        self._fail = fail
        self._skip = skip
        self.results: list[ClaimResult] = []

    def spec(self, name: str, model: str) -> ClaimSpec | None:
        if name not in CLAIMS.get(self.suite, {}):
            raise KeyError(f"suite {self.suite} defines no claim {name!r}")
        return self.device.claim(self.suite, name, model)

    def check(self, name: str, observed: float | None, model: str, record=None,
              estimated: bool = False) -> ClaimResult | None:
        """Judge one claim if devices.toml states it for this device and model; else None."""
        spec = self.spec(name, model)
        if spec is None:
            return None
        return self.add(judge(spec, self.device.name, model, observed, estimated=estimated), record)

    def add(self, result: ClaimResult, record=None) -> ClaimResult:
        """Record a verdict judged elsewhere (a ratio against another device, a skip with its reason)."""
        self.results.append(result)
        if record is not None:
            record.claims.append(result.to_dict())
            self._save(record)
        return result

    def assert_met(self) -> None:
        failed = [r.message for r in self.results if r.verdict == "fail"]
        if failed:
            self._fail("claim not met:\n  " + "\n  ".join(failed))
        skipped = [r.message for r in self.results if r.verdict == "skip"]
        if skipped and len(skipped) == len(self.results):
            self._skip("claim not checkable here: " + "; ".join(skipped))

    def not_checkable(self, name: str, model: str, why: str, record=None) -> ClaimResult | None:
        """A stated claim that this model cannot answer (seeded weights, a degenerate reference): a skip with the reason."""
        spec = self.spec(name, model)
        if spec is None:
            return None
        return self.add(ClaimResult(suite=spec.suite, name=name, model=model, device=self.device.name,
                                    threshold=spec.threshold, observed=None, unit=spec.definition.unit,
                                    verdict="skip", message=f"{name} for {model} on {self.device.name}: "
                                                            f"not checkable: {why}"), record)
