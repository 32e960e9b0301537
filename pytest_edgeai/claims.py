"""What a device must meet: the claim vocabulary of every suite, how a claim is judged, cross-device claims.

devices.toml states thresholds; a suite measures, records, then checks. A claim's direction
comes from its name (``min_`` or ``max_``), its unit and metric from its definition here, so a
failed claim can say what was expected, what was observed, and by how much it missed.

A verdict is judged on an interval, never on a point (:class:`Estimate`): met when the whole
interval clears the threshold, missed when the whole of it falls short, inconclusive when it
straddles the threshold. Inconclusive is never a pass: the checker first asks the suite for
more rounds (sequential testing, up to the profile's ``max_rounds``; none when the interval's width
shows that even ``max_rounds`` would leave it straddling), then reports what the interval was and
what would settle it; under ``--edgeai-strict`` it fails the test.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, NoReturn

from .compress.base import METHODS as COMPRESSION_METHODS
from .devices import ANY_MODEL, Device
from .errors import did_you_mean
from .keys import is_number
from .measure.rounds import CONFIDENCE, Estimate, cannot_settle, mean_estimate, ratio_estimate
from .results.record import Record, metric

MET, MISSED, INCONCLUSIVE, UNCHECKED = "met", "missed", "inconclusive", "skip"
NO_CLAIMS = "no claims configured"
# keys a claim's table may hold besides its own extra fields
TABLE_KEYS = ("threshold", "allow_estimate", "device_independent")
TABLE_FLAGS = ("allow_estimate", "device_independent")  # true or false: "false" in quotes is a string, and truthy


@dataclass(frozen=True)
class ClaimDef:
    """A claim a suite knows how to check.

    ``device_dependent`` is False for a figure the device under test cannot change (a file-size
    ratio, bytes at a cut computed on the host): devices.toml must say ``device_independent = true``
    for it, so no one reads it as a property of the device. None where the configuration decides whether the
    device can move it (``dependence`` says how: a cascade's latency over a slow link is the link's and the
    fixed input set's when the models' compute is microseconds, the device's when its compute is the bulk):
    devices.toml must then say ``device_independent = true`` or ``false``, and the verdict carries what it
    said. ``models`` names the workloads outside
    the zoo and [models] that the claim may be given for (the digits cascade workloads); ``measured_for``,
    when set, the only workloads the shipped suite measures it for (the concurrency studies run fixed zoo
    models): a claim keyed to another model would never be checked, so devices.toml refuses it.
    """

    suite: str
    name: str
    unit: str
    description: str
    extra_fields: tuple[str, ...] = ()
    device_dependent: bool | None = True
    models: tuple[str, ...] = ()
    measured_for: tuple[str, ...] = ()
    dependence: str = ""  # where device_dependent is None: what decides whether the device moves the figure

    @property
    def direction(self) -> str:
        return "min" if self.name.startswith("min_") else "max"


CLAIMS: dict[str, dict[str, ClaimDef]] = {}


def define(suite: str, name: str, unit: str, description: str, extra_fields: tuple[str, ...] = (),
           device_dependent: bool | None = True, models: tuple[str, ...] = (),
           measured_for: tuple[str, ...] = (), dependence: str = "") -> ClaimDef:
    """Register a claim; suites and plug-ins call this at import time (or declare it with the marker)."""
    if not name.startswith(("min_", "max_")):
        raise ValueError(f"claim name {name!r} must start with min_ or max_")
    claim = ClaimDef(suite, name, unit, description, extra_fields, device_dependent, models, measured_for,
                     dependence)
    CLAIMS.setdefault(suite, {})[name] = claim
    return claim


def declare(suite: str, claims: dict[str, str]) -> list[ClaimDef]:
    """A custom suite's claims in one line: ``{"min_inferences_per_s": "inferences/s", ...}`` (name -> unit;
    the direction is the name's prefix). What ``@pytest.mark.edgeai_suite(name, claims={...})`` calls."""
    if not isinstance(claims, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in claims.items()):
        raise ValueError(f"suite {suite!r}: claims must map each claim name to its unit, e.g. "
                         f"{{'min_inferences_per_s': 'inferences/s'}}")
    known = CLAIMS.get(suite, {})
    return [known[name] if name in known and known[name].unit == unit
            else define(suite, name, unit, f"declared by the suite {suite}")
            for name, unit in claims.items()]


DIGITS_CASCADE = ("digits_uniform", "digits_skewed")
# the zoo models the concurrency suite's studies run (suites/test_concurrency.py imports these)
SWEEP_MODELS = ("mobilenet_v2", "cnn_trad_fpool3")
CAPACITY_MODEL = "mobilenet_v2"
PLACEMENT_MODEL = "mobilenet_v2"

define("throughput", "min_inferences_per_s", "inferences/s",
       "offline throughput at batch 1 (mean of the interleaved rounds of the batch sweep) must reach this")
define("throughput", "max_p90_latency_ms", "ms",
       "single-stream p90 latency must not exceed this")
define("throughput", "min_batching_speedup", "x",
       "the best batch's offline throughput over batch 1's, measured in interleaved rounds")
define("throughput", "min_edgetpu_op_fraction", "fraction",
       "operations edgetpu_compiler mapped to the Edge TPU over all operations of the compiled model")

define("energy", "max_joules_per_inference", "J",
       "energy over the offline batch-1 window divided by the inferences in it (total, not above idle)")
define("energy", "min_inferences_per_s_per_w", "inferences/s/W",
       "offline batch-1 throughput divided by the mean power over the same window")
define("energy", "min_inferences_per_s_per_usd", "inferences/s/USD",
       "offline batch-1 throughput divided by the device's price_usd")
define("energy", "min_ips_per_usd_ratio", "x",
       "this device's inferences/s/USD over that of the device named by 'against' (measured side by "
       "side in interleaved rounds when both are attached here; else its latest result in the run store)",
       extra_fields=("against",))
define("energy", "min_ips_per_w_ratio", "x",
       "this device's inferences/s/W over that of the device named by 'against' (as min_ips_per_usd_ratio)",
       extra_fields=("against",))

define("compression", "min_size_reduction", "x",
       "fp32 file size / quantised variant file size (every variant, or the one named by 'method')",
       extra_fields=("method",), device_dependent=False, models=("digits_large",))
define("compression", "min_int8_speedup", "x",
       "offline batch-1 throughput of the int8 variant ('method', default int8_static) / fp32, "
       "measured in interleaved rounds",
       extra_fields=("method",))
define("compression", "min_top1_agreement", "fraction",
       "share of deterministic inputs whose top-1 matches fp32 (every variant, or 'method')",
       extra_fields=("method",), models=("digits_large",))
define("compression", "min_top5_agreement", "fraction",
       "share of inputs whose fp32 top-1 is among the variant's top 5 (every variant, or 'method'); "
       "trained models only",
       extra_fields=("method",))
define("compression", "max_top1_prob_change", "probability",
       "mean |p_variant - p_fp32| of fp32's top-1 class (every variant, or 'method'); trained models only",
       extra_fields=("method",))
define("compression", "min_cascade_latency_reduction", "x",
       "expected latency of the large model for every input over the link / the cascade's, "
       "at confidence 'at_threshold' (default 0.9) over 'link' (default device_cloud); model = workload",
       extra_fields=("at_threshold", "link"), models=DIGITS_CASCADE, device_dependent=None,
       dependence="the device's compute against the link's time: where compute is a small share (the digits "
                  "MLPs, microseconds, over a 100 ms link) the figure is about 1 / the share offloaded, set by the "
                  "fixed inputs and the link model; a device with other numerics (int8, fp16) also moves what "
                  "is offloaded")
define("compression", "max_cascade_accuracy_loss", "fraction",
       "large-model-only accuracy minus the cascade's, at 'at_threshold' over 'link'; model = workload",
       extra_fields=("at_threshold", "link"), models=DIGITS_CASCADE, device_dependent=None,
       dependence="the device's numerics: the answers come from the models' scores on the fixed inputs (the small "
                  "one's on this device), the same on any fp32 runtime; an int8 or fp16 device changes the scores, "
                  "and so what crosses the threshold")

define("concurrency", "min_tenants", "tenants",
       "tenants of the model that load and run within the claim's memory budget 'budget_mb' (observed, child "
       "process; capped by what the device has)",
       extra_fields=("budget_mb",), measured_for=(CAPACITY_MODEL,))
define("concurrency", "min_aggregate_speedup", "x",
       "aggregate throughput of N tenants (at_tenants, default the largest N measured) over one tenant "
       "alone, measured in interleaved rounds", extra_fields=("at_tenants",), measured_for=SWEEP_MODELS)
define("concurrency", "max_tenant_p90_latency_ms", "ms",
       "the worst tenant's p90 latency with N tenants running (at_tenants, default the largest N measured), "
       "judged on independent rounds of that step (geometric mean, t-interval of the logs)",
       extra_fields=("at_tenants",), measured_for=SWEEP_MODELS)
define("concurrency", "max_tenants_prediction_error", "fraction",
       "|predicted - observed| / observed maximum tenants, the prediction from the per-tenant footprint",
       measured_for=(CAPACITY_MODEL,))
define("concurrency", "min_placement_speedup", "x",
       "throughput of shortest-queue dispatch over several devices divided by the best single device",
       measured_for=(PLACEMENT_MODEL,))

define("split", "min_best_cut_saving", "x",
       "compressed input bytes over the bytes at the best single-tensor cut inside the feature layers; "
       "'encoding' (default 'lossless': raw tensors, best lossless codec; or e.g. 'int8+zstd'), "
       "'before_last_layers' (default 0: only cuts at least this many network layers before the output count)",
       extra_fields=("encoding", "before_last_layers"), device_dependent=False)
define("split", "min_cut_saving", "x",
       "compressed input bytes over the bytes at the cut that ends block 'at' (node names starting 'at.', "
       "e.g. layer_11 = MobileNetV2's inverted-residual block 10), in 'encoding' as above",
       extra_fields=("at", "encoding"), device_dependent=False)
define("split", "max_saving_depth_layers", "layers",
       "network layers (weighted ops on the longest path) between the output and the earliest single-tensor "
       "cut that sends fewer bytes than the compressed input ('encoding' as above); missed when no cut saves",
       extra_fields=("encoding",), device_dependent=False)
define("split", "max_prediction_error", "fraction",
       "|measured - predicted| / measured median end-to-end latency of the planned split, run in "
       "separate processes over a shaped loopback link")


BUILT_IN = frozenset(CLAIMS)  # the suites this package ships; others are declared by their markers


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

    @property
    def device_independent(self) -> bool:
        """What a verdict says of the figure: the definition's, or where the configuration decides, the file's."""
        dependent = self.definition.device_dependent
        return self.extras.get("device_independent") is True if dependent is None else not dependent


# --- the rules devices.toml's claims must follow (config.py calls these) -----------------------

def table_keys(suite: str, name: str) -> tuple[str, ...]:
    """The keys a claim's table may hold."""
    cdef = CLAIMS.get(suite, {}).get(name)
    return TABLE_KEYS + (cdef.extra_fields if cdef else ())


def suite_problem(suite: str) -> str | None:
    """A suite name devices.toml uses that is neither built in nor a likely suite of the user's: one a
    letter or two from a built-in name is a typo (a suite of one's own is declared at collection)."""
    hint = did_you_mean(suite, BUILT_IN)
    if suite in CLAIMS or not hint:
        return None
    return f"unknown suite{hint}; a suite of your own needs a name that is not a near-miss of a built-in one"


def spec_problems(spec: ClaimSpec, known_models: Collection[str]) -> list[tuple[str, str]]:
    """What is wrong with one claim as devices.toml states it: (what, allowed) pairs.

    A claim that cannot fail is refused: a zero (or negative) minimum is met by anything; a model key
    that names no workload would silently never be checked; a figure the device cannot change
    (a file-size ratio) must say so with ``device_independent = true``.
    """
    out: list[tuple[str, str]] = []
    cdef = CLAIMS.get(spec.suite, {}).get(spec.name)
    if spec.name.startswith("min_") and spec.threshold <= 0:
        out.append((f"{spec.threshold:g} is met by anything: a minimum must be above 0", "a number > 0"))
    names = set(known_models) | set(cdef.models if cdef else ())
    if spec.model != ANY_MODEL and cdef is not None and cdef.measured_for and spec.model not in cdef.measured_for:
        what = (f"the {spec.suite} suite measures {spec.name} only for {', '.join(cdef.measured_for)}"
                f"{did_you_mean(spec.model, cdef.measured_for)}, so a claim for {spec.model!r} would never be checked")
        out.append((what, f"{', '.join(cdef.measured_for)}, '*'"))
    elif spec.model != ANY_MODEL and spec.model not in names:
        what = (f"model {spec.model!r} names no workload{did_you_mean(spec.model, names)}, "
                f"so this claim would never be checked")
        out.append((what, f"{', '.join(sorted(names))}, '*' (or add [models.{spec.model}])"))
    out.extend(_extra_problems(spec))
    flags = [(f"{flag} = {value!r} must be true or false", "true, false") for flag in TABLE_FLAGS
             if (value := spec.extras.get(flag)) is not None and not isinstance(value, bool)]
    return out + (flags or _independence_problems(spec, cdef))


def _independence_problems(spec: ClaimSpec, cdef: ClaimDef | None) -> list[tuple[str, str]]:
    """A figure the device cannot change must be marked so; one measured on the device must not be."""
    marked = spec.extras.get("device_independent")
    if cdef is not None and cdef.device_dependent is None and marked is None:
        what = (f"whether the device moves {spec.name} depends on the configuration ({cdef.dependence}): "
                f"say which, device_independent = true or false, so no one reads the figure wrongly")
        return [(what, "device_independent = true, device_independent = false")]
    if cdef is not None and cdef.device_dependent is False and marked is not True:
        what = (f"{spec.name} does not depend on the device ({cdef.description.split(';')[0]}): "
                f"say device_independent = true so no one reads it as the device's")
        return [(what, "device_independent = true")]
    if cdef is not None and cdef.device_dependent is True and marked is True:
        return [(f"{spec.name} is measured on the device: device_independent = true is not true of it",
                 "leave device_independent out")]
    return []


def _extra_problems(spec: ClaimSpec) -> list[tuple[str, str]]:
    """Option values a suite would otherwise meet only at run time: a quantisation method no variant is built
    with (the claim would silently match nothing), a tenant count that is not a count of several tenants, a
    count of tenants with no memory budget to fit in (the profiles probe different budgets: 256 MiB at quick,
    512 at standard; a count from one read at the other is another claim)."""
    out: list[tuple[str, str]] = []
    if spec.suite == "concurrency" and spec.name == "min_tenants":
        budget = spec.extras.get("budget_mb")
        if budget is None:
            out.append(("min_tenants needs budget_mb: a tenant count means something only with the memory it must "
                        "fit in, and each profile probes its own budget, so the claim names the one it was set at",
                        "{ threshold = N, budget_mb = MiB }, e.g. { threshold = 15, budget_mb = 512 }"))
        elif not is_number(budget) or budget <= 0:
            out.append((f"budget_mb = {budget!r} must be a number of MiB above 0", "a number > 0"))
    method = spec.extras.get("method")
    if method is not None and (not isinstance(method, str) or method not in COMPRESSION_METHODS):
        out.append((f"method = {method!r} names no quantisation method{did_you_mean(str(method), COMPRESSION_METHODS)}"
                    f", so no variant would be judged", ", ".join(COMPRESSION_METHODS)))
    if spec.suite == "split" and spec.name == "min_cut_saving" and not isinstance(spec.extras.get("at"), str):
        out.append((f"min_cut_saving needs at = \"<block>\" (the block whose end is the cut), not "
                    f"{spec.extras.get('at')!r}: without it no cut is judged", "a block name, e.g. at = \"layer_11\""))
    depth = spec.extras.get("before_last_layers")
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or depth < 0):
        out.append((f"before_last_layers = {depth!r} must be a whole number of network layers >= 0", "an integer >= 0"))
    at = spec.extras.get("at_tenants")
    if at is not None and (isinstance(at, bool) or not isinstance(at, int) or at < 2):
        out.append((f"at_tenants = {at!r} must be a whole number of tenants >= 2 (a speed-up or a latency with "
                    f"others running needs at least two)", "an integer >= 2"))
    return out


def against_problems(devices: Mapping[str, Device]) -> list[tuple[str, str, str]]:
    """(key, what, allowed) for each claim comparing devices whose 'against' cannot be what was meant: not a
    name, the device itself (a ratio of 1 by construction), or a near-miss of a device in the file (it would
    skip for ever, waiting for results of a device that does not exist). A name in no entry is allowed: its
    results may come from the run store of another bench."""
    out = []
    for device in devices.values():
        for spec in device.claims:
            cdef = CLAIMS.get(spec.suite, {}).get(spec.name)
            if cdef is None or "against" not in cdef.extra_fields:
                continue
            key = f"devices.{device.name}.claims.{spec.suite}.{spec.name}" + (
                f".{spec.model}" if spec.model != ANY_MODEL else "")
            against = spec.extras.get("against")
            hint = did_you_mean(against, [n for n in devices if n != device.name]) if isinstance(against, str) else ""
            if not isinstance(against, str) or not against:
                out.append((key, f"needs against = \"<device name>\", not {against!r}", "a device's name"))
            elif against == device.name:
                out.append((key, f"against = {against!r} is the device itself: the ratio is 1 by construction",
                            "another device's name"))
            elif against not in devices and hint:
                out.append((key, f"against = {against!r} names no device in this file{hint}",
                            ", ".join(n for n in devices if n != device.name)))
    return out


def collected_problems(declared: dict[str, Any], devices: Iterable[Any]) -> tuple[list[str], list[str]]:
    """Once collection has seen the suites' markers: declare their claims, then check devices.toml's
    claims against them. ``declared`` maps a suite to its marker's ``claims``. Returns (errors, warnings):
    a claim a collected suite does not declare is an error; claims of a suite that is neither built in nor
    collected in this run are a warning (the run may simply not include that suite), never silent."""
    errors: list[str] = []
    for suite, claims in declared.items():
        try:
            declare(suite, claims)
        except ValueError as exc:
            errors.append(f"@pytest.mark.edgeai_suite: {exc}")
    warnings: list[str] = []
    for device in devices:
        for spec in device.claims:
            where = f"devices.{device.name}.claims.{spec.suite}.{spec.name}"
            if spec.suite not in CLAIMS:
                warnings.append(f"{where}: no collected test declares suite '{spec.suite}'"
                                f", so this claim is not checked in this run; "
                                f"built-in suites: {', '.join(sorted(CLAIMS))}; a suite of your own declares "
                                f"its claims with @pytest.mark.edgeai_suite('{spec.suite}', "
                                f"claims={{'{spec.name}': 'UNIT'}})")
            elif spec.name not in CLAIMS[spec.suite]:
                errors.append(f"{where}: suite '{spec.suite}' declares no claim '{spec.name}'"
                              f"{did_you_mean(spec.name, CLAIMS[spec.suite])}; declared: "
                              f"{', '.join(sorted(CLAIMS[spec.suite]))}")
    return errors, sorted(set(warnings))


# --- verdicts -----------------------------------------------------------------------------------

@dataclass
class ClaimResult:
    """A checked claim as it goes into a result record, with the interval it was judged on."""

    suite: str
    name: str
    model: str
    device: str
    threshold: float
    observed: float | None
    unit: str
    verdict: str  # MET, MISSED, INCONCLUSIVE or UNCHECKED ("skip": not checkable here, with the reason)
    message: str
    margin: float | None = None  # observed against threshold, signed: >0 means met with room
    interval: list[float] | None = None  # [low, high] the verdict was judged on
    basis: str = ""  # where the interval comes from
    rounds: int = 0  # independent rounds or windows behind it
    settle: str | None = None  # for an inconclusive verdict: what would settle it
    device_independent: bool = False  # a figure the device cannot change (a file-size ratio): said beside it

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _fmt(x: float) -> str:
    return f"{x:.4g}" if math.isfinite(x) else ("-inf" if x < 0 else "inf")


def _as_estimate(observed: Estimate | float | None) -> Estimate | None:
    if observed is None or isinstance(observed, Estimate):
        return observed
    return Estimate.exact(float(observed))


def _settle(est: Estimate, threshold: float) -> str:
    """How many rounds would separate the interval from the threshold, if the spread stayed as it is."""
    gap = abs(est.value - threshold)
    half = max(est.high - est.value, est.value - est.low)
    if not math.isfinite(half):
        return ("more evidence: the interval is unbounded (too few rounds, or too few queries for the quantile); "
                "a longer profile (--edgeai-profile standard or full)")
    if gap == 0:
        return "nothing at this spread: the figure sits on the threshold; move the threshold or the bench"
    needed = math.ceil(est.rounds * (half / gap) ** 2) + 1
    return (f"about {needed} rounds at this spread (now {est.rounds}; --edgeai-profile full allows more), "
            f"or a quieter machine")


def judge(spec: ClaimSpec, device: str, model: str, observed: Estimate | float | None,
          estimated: bool = False) -> ClaimResult:
    """Judge an estimate's interval against a threshold; say by how much it missed or held.

    A bare number is a deterministic figure (bytes, a count, a size ratio): its interval is the point.
    """
    cdef = spec.definition
    op = ">=" if cdef.direction == "min" else "<="
    where = f"{spec.name} for {model} on {device}"
    est = _as_estimate(observed)
    value = None if est is None else est.value
    base: dict[str, Any] = {"suite": spec.suite, "name": spec.name, "model": model, "device": device,
                            "threshold": spec.threshold, "observed": value, "unit": cdef.unit,
                            "device_independent": spec.device_independent}
    if est is None or not math.isfinite(est.value) or math.isnan(est.low) or math.isnan(est.high):
        why = est.basis if est is not None else "nothing was measured"
        return ClaimResult(**base, verdict=UNCHECKED,
                           message=f"{where}: {why} to compare with {op} {spec.threshold:g} {cdef.unit}")
    interval = [est.low, est.high]
    judged: dict[str, Any] = {"interval": interval, "basis": est.basis, "rounds": est.rounds}
    if estimated and spec.extras.get("allow_estimate") is not True:
        return ClaimResult(**base, **judged, verdict=UNCHECKED,
                           message=f"{where}: observed {est.value:.4g} {cdef.unit} is an estimate, "
                                   f"and the claim does not allow estimates (allow_estimate = true)")
    t = spec.threshold
    if cdef.direction == "min":
        verdict = MET if est.low >= t else MISSED if est.high < t else INCONCLUSIVE
        margin = est.value / t - 1.0 if t else math.inf
    else:
        verdict = MET if est.high <= t else MISSED if est.low > t else INCONCLUSIVE
        margin = 1.0 - est.value / t if t else (0.0 if est.value == 0 else -math.inf)
    span = "" if est.low == est.high else f" in [{_fmt(est.low)}, {_fmt(est.high)}] ({est.basis})"
    head = f"{where}: expected {op} {t:g} {cdef.unit}, observed {est.value:.4g} {cdef.unit}{span}"
    if estimated:  # allowed by the claim, and said in the verdict so no one reads it as measured
        head += " (an estimate: allow_estimate = true)"
    if verdict == INCONCLUSIVE:
        settle = _settle(est, t)
        return ClaimResult(**base, **judged, verdict=verdict, margin=margin, settle=settle,
                           message=f"{head}: the interval straddles the threshold; would settle it: {settle}")
    short = "short" if cdef.direction == "min" else "over"
    how = f"{abs(margin) * 100:.1f}% {'headroom' if verdict == MET else short}"
    alike = "; a figure the device does not change, the same on any device" if spec.device_independent else ""
    return ClaimResult(**base, **judged, verdict=verdict, margin=margin, message=f"{head} ({how}{alike})")


def unchecked(spec: ClaimSpec, device: str, model: str, message: str, verdict: str = UNCHECKED) -> ClaimResult:
    """A claim with no figure to judge: not checkable here (with the reason), or missed because what it
    asks about does not exist (no cut saves any bytes)."""
    return ClaimResult(suite=spec.suite, name=spec.name, model=model, device=device, threshold=spec.threshold,
                       observed=None, unit=spec.definition.unit, verdict=verdict, message=message,
                       device_independent=spec.device_independent)


def _from_record(observed: Estimate | float | None, record: Any) -> Estimate | float | None:
    """A bare figure read from the record (``record.metric("throughput_ips")``) is judged on the interval
    the record gives that metric; any other bare number is a deterministic figure. Where several metrics
    with intervals share the value (a coincidence the figure alone cannot resolve), it is judged on the
    widest of their intervals, so a coincidence can never lend a figure a narrower interval than its own."""
    if isinstance(observed, (int, float)) and record is not None:
        found = [est for name, entry in record.metrics.items()
                 if entry.get("value") == observed and entry.get("ci95")
                 and (est := recorded_estimate(record, name)) is not None]
        if found:
            return max(found, key=lambda e: e.high - e.low)
    return observed


class ClaimChecker:
    """The claims of one device in one suite, checked against a test's records.

    ``check`` judges and records at once (the record is rewritten with the verdict), so the
    measurement is on disk whether or not the claim holds; given ``more`` (a function that measures
    another round and returns the new estimate), an inconclusive verdict is re-measured up to
    ``max_rounds``. ``assert_met`` then fails the test on any missed claim (and, when ``strict``, on
    an inconclusive one), marks it xfail on an inconclusive one, skips it when a stated claim could
    not be checked here, and notes on the test's records when the device has no claims for the suite.
    The pytest functions are passed in: nothing here imports pytest.
    """

    def __init__(self, device: Device, suite: str, save: Callable[[Any], None],
                 fail: Callable[[str], NoReturn], skip: Callable[[str], NoReturn],
                 xfail: Callable[[str], NoReturn] | None = None, strict: bool = False, max_rounds: int = 1):
        self.device = device
        self.suite = suite
        self._save = save
        self._fail = fail
        self._skip = skip
        self._xfail = xfail or fail
        self.strict = strict
        self.max_rounds = max_rounds
        self.results: list[ClaimResult] = []
        self._seen: list[Record] = []  # records offered to check(): where "no claims configured" is noted
        self._asked: set[str] = set()  # claims check() was asked for that devices.toml does not state

    def spec(self, name: str, model: str) -> ClaimSpec | None:
        if name not in CLAIMS.get(self.suite, {}):
            raise KeyError(f"suite {self.suite} defines no claim {name!r}; declare it with "
                           f"@pytest.mark.edgeai_suite({self.suite!r}, claims={{{name!r}: 'UNIT'}})")
        return self.device.claim(self.suite, name, model)

    def check(self, name: str, observed: Estimate | float | None, model: str, record: Record | None = None,
              estimated: bool = False, more: Callable[[], Estimate | None] | None = None) -> ClaimResult | None:
        """Judge one claim if devices.toml states it for this device and model; else None."""
        spec = self.spec(name, model)
        if spec is None:
            self._asked.add(name)
            if record is not None and all(r is not record for r in self._seen):
                self._seen.append(record)
            return None
        first = _from_record(observed, record)
        result = judge(spec, self.device.name, model, first, estimated=estimated)
        last = first if isinstance(first, Estimate) else None
        while result.verdict == INCONCLUSIVE and more is not None and result.rounds < self.max_rounds:
            if last is not None and cannot_settle(last, spec.threshold, self.max_rounds):
                result.settle = (f"not re-measured: at this spread even {self.max_rounds} rounds would leave the "
                                 f"interval straddling {spec.threshold:g}; {result.settle}")
                result.message += f" (not re-measured: {self.max_rounds} rounds at this spread would not settle it)"
                break
            try:
                again = more()
            except BaseException as exc:  # the verdict so far goes on the record before the failure propagates
                result.message += f" (re-measuring failed: {type(exc).__name__})"
                self.add(result, record)
                raise
            last = again
            if again is None or again.rounds <= result.rounds:
                break
            result = judge(spec, self.device.name, model, again, estimated=estimated)
        return self.add(result, record)

    def add(self, result: ClaimResult, record: Record | None = None) -> ClaimResult:
        """Record a verdict judged elsewhere (a ratio against another device, a skip with its reason)."""
        self.results.append(result)
        if record is not None:
            record.claims.append(result.to_dict())
            self._save(record)
        return result

    def assert_met(self) -> None:
        by = {v: [r.message for r in self.results if r.verdict == v] for v in (MET, MISSED, INCONCLUSIVE, UNCHECKED)}
        if not self.results:
            for record in self._seen:
                if not record.claims:
                    record.extra["claims_note"] = self._no_claims_note(str(record.model.get("name", "")))
                    self._save(record)
            return
        if by[MISSED]:
            self._fail("claim not met:\n  " + "\n  ".join(by[MISSED] + by[INCONCLUSIVE]))
        if by[INCONCLUSIVE]:
            text = "claim inconclusive (never a pass):\n  " + "\n  ".join(by[INCONCLUSIVE])
            if self.strict:
                self._fail(text + "\n  (--edgeai-strict fails an inconclusive claim)")
            self._xfail(text)
        if by[UNCHECKED]:
            met = f"; met: {'; '.join(by[MET])}" if by[MET] else ""
            self._skip("claim not checkable here: " + "; ".join(by[UNCHECKED]) + met)

    def _no_claims_note(self, model: str) -> str:
        """What the summary says of a record no claim judged: the device states none in the suite, or none of
        the claims this test checks for this model (its other claims there belong to other models or tests)."""
        note = f"{NO_CLAIMS} for {self.device.name} in suite {self.suite}"
        if not any(s.suite == self.suite for s in self.device.claims) or not self._asked:
            return note
        return f"{note} for {model or 'this model'}: none of {', '.join(sorted(self._asked))}"

    def not_checkable(self, name: str, model: str, why: str, record: Record | None = None) -> ClaimResult | None:
        """A stated claim that this model cannot answer (seeded weights, a degenerate reference):
        a skip with the reason."""
        spec = self.spec(name, model)
        if spec is None:
            return None
        return self.add(unchecked(spec, self.device.name, model,
                                  f"{name} for {model} on {self.device.name}: not checkable: {why}"), record)


# --- claims that compare devices ------------------------------------------------------------------

@dataclass(frozen=True)
class Found:
    """Another device's figure, as a run recorded it."""

    estimate: Estimate
    record_id: str
    where: str  # "this run" or the run directory
    estimated: bool = False  # the record labels the figure an estimate (an estimating meter)

    @property
    def value(self) -> float:
        return self.estimate.value


def recorded_estimate(rec: Any, metric: str) -> Estimate | None:
    """A record's figure with the interval it recorded (``ci95``), else as a single window."""
    entry = rec.metrics.get(metric) or {}
    value = entry.get("value")
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    ci = entry.get("ci95")
    if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(isinstance(c, (int, float)) for c in ci):
        return Estimate(float(value), float(ci[0]), float(ci[1]),
                        f"{metric}'s recorded interval: {entry.get('ci95_basis') or 'ci95'}",
                        int(entry.get("rounds", 1)))
    return Estimate(float(value), -math.inf, math.inf, f"{metric} from one window, no interval recorded", 1)


def latest_metric(records: Iterable[Any], device: str, model: str, metric: str, suite: str = "energy",
                  where: str = "this run") -> Found | None:
    """The newest ok record of ``device`` and ``model`` in ``suite`` that has ``metric``."""
    best = None
    for rec in records:
        est = recorded_estimate(rec, metric)
        if (rec.suite == suite and rec.status == "ok" and rec.device.get("name") == device
                and rec.model.get("name") == model and est is not None):
            key = (est.rounds > 1, rec.created)  # a figure with an interval over rounds first, then the newest
            if best is None or key > best[0]:
                best = (key, Found(est, rec.id, where, rec.metrics[metric].get("method") == "estimated"))
    return best[1] if best else None


def find_against(current: Iterable[Any], earlier: Iterable[tuple[str, Iterable[Any]]],
                 device: str, model: str, metric: str) -> Found | None:
    """The other device's figure: this run first, then ``earlier`` runs (where, records), newest first."""
    found = latest_metric(current, device, model, metric)
    if found is not None:
        return found
    for where, records in earlier:
        found = latest_metric(records, device, model, metric, where=where)
        if found is not None:
            return found
    return None


def ratio_of(mine: Estimate, other: Estimate, what: str) -> Estimate:
    """The ratio of two figures not measured side by side: the interval spans every ratio both intervals allow."""
    low = mine.low / other.high if other.high > 0 else 0.0
    high = mine.high / other.low if other.low > 0 else math.inf
    return Estimate(mine.value / other.value, max(low, 0.0), high,
                    f"{what}, not measured side by side: the span of both figures' intervals",
                    min(mine.rounds, other.rounds))


def judge_ratio(spec: ClaimSpec, device: str, model: str, mine: Estimate | None, other: Found | None,
                metric: str, estimated: bool = False) -> ClaimResult:
    """Judge ``mine / other`` against the threshold; a skip naming what is missing otherwise. An estimate on
    either side (``estimated`` for mine, the record's label for the other's) passes only where the claim allows
    estimates, as :func:`judge` rules."""
    against = spec.extras.get("against")
    if not isinstance(against, str) or not against:
        return unchecked(spec, device, model, f"{spec.name} for {model} on {device}: the claim needs "
                                              f"against = \"<device name>\" in devices.toml")
    if other is None:
        return unchecked(spec, device, model, f"{spec.name} for {model} on {device}: no {metric} result for "
                                              f"device '{against}' and model {model} in this run or the run store; "
                                              f"run the energy suite on {against} first")
    if mine is None or not other.value:
        return unchecked(spec, device, model, f"{spec.name} for {model} on {device}: no {metric} on "
                                              f"{device if mine is None else against}")
    result = judge(spec, device, model, ratio_of(mine, other.estimate, f"{metric} over {against}'s"),
                   estimated=estimated or other.estimated)
    result.message += f" against {against} ({other.value:.4g}, record {other.record_id} from {other.where})"
    return result


# --- figures measured in rounds, in the record's shape ----------------------------------------------

def rounds_estimate(records: Iterable[Any], metric: str, what: str) -> Estimate:
    """A metric measured in several independent rounds (one record each): their mean and its interval."""
    return mean_estimate([r.metric(metric) for r in records if r.status == "ok"], what)


def rounds_ratio(numerator: Iterable[Any], denominator: Iterable[Any], metric: str, what: str,
                 confidence: float = CONFIDENCE) -> Estimate:
    """``metric`` of one arm over another's, round by round (records of the same interleaved rounds)."""
    return ratio_estimate([r.metric(metric) if r.status == "ok" else None for r in numerator],
                          [r.metric(metric) if r.status == "ok" else None for r in denominator], what, confidence)


def estimate_metric(est: Estimate, unit: str, source: str, method: str = "derived",
                    windows: Iterable[float | None] = ()) -> dict[str, Any]:
    """An estimate as a record's metric: the figure, the interval it is judged on, and where that comes from;
    ``windows`` is the figure in each independent round, what a comparison between runs reads."""
    out = metric(est.value, unit, source, method)
    if all(math.isfinite(x) for x in (est.value, est.low, est.high)):
        out["ci95"] = [est.low, est.high]
    out.update(ci95_basis=est.basis, rounds=est.rounds)
    per_round = list(windows)
    if per_round and all(isinstance(v, (int, float)) and math.isfinite(v) for v in per_round):
        out["windows"] = per_round
    return out
