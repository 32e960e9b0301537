"""devices.toml: the lab's inventory and the claims each device must meet.

Validation collects every problem before failing, each as one line naming the file, the key
path, what is wrong and what is allowed, so a person fixes the file in one pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

from .backends.base import known_backends
from .backends.device_options import declared_options, option_problems
from .claims import BUILT_IN, CLAIMS, ClaimSpec, against_problems, spec_problems, suite_problem, table_keys
from .devices import ANY_MODEL, KINDS, TIERS, Device, builtin_cpu
from .energy.meter import check_meter
from .errors import ConfigError, did_you_mean
from .keys import is_number, shown

TOP_KEYS = ("devices", "models", "links", "tolerances")
DEVICE_KEYS = ("kind", "backend", "tier", "options", "memory_mb", "price_usd", "tdp_w",
               "hardware_id", "description", "meter", "claims")
MODEL_KEYS = ("path", "zoo", "params", "description")
LINK_KEYS = ("from", "to", "bandwidth_mbps", "rtt_ms", "loss", "jitter_ms")
NUMBER_KEYS = ("memory_mb", "price_usd", "tdp_w")
MAX_DEPTH = 16  # devices.toml nests a few tables deep; deeper is a mistake (and would exhaust the stack)
MAX_NAME = 100
NAME_RULE = (f"a device or model name is 1 to {MAX_NAME} characters without '/', '\\', control characters "
             f"or a leading '.' (names become parts of file names)")


@dataclass(frozen=True)
class ModelEntry:
    """A model the suites run besides the zoo: a file, or a zoo builder with parameters."""

    name: str
    path: str | None = None
    zoo: str | None = None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Link:
    """A network link between two tiers, as the split and cascade planners see it."""

    name: str
    src: str
    dst: str
    bandwidth_mbps: float
    rtt_ms: float
    loss: float = 0.0
    jitter_ms: float = 0.0  # standard deviation of the one-way delay


@dataclass(frozen=True)
class Config:
    """A validated devices.toml (or the built-in default when there is none)."""

    path: Path | None
    devices: dict[str, Device]
    models: dict[str, ModelEntry] = field(default_factory=dict)
    links: dict[str, Link] = field(default_factory=dict)
    tolerances: dict[str, dict[str, float]] = field(default_factory=dict)


def builtin() -> Config:
    return Config(path=None, devices={"cpu": builtin_cpu()})


def load(path: str | Path) -> Config:
    """Read and validate a devices.toml; ConfigError lists every problem found."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")  # a byte-order mark (Windows editors write one) is not content
    except FileNotFoundError:
        raise ConfigError([f"{p}: file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{p}: cannot read: {exc}"]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{p}: not valid TOML: {exc}"]) from None
    except RecursionError:
        raise ConfigError([f"{p}: nested too deeply to read (devices.toml nests at most {MAX_DEPTH} levels)"]) from None
    except ValueError as exc:  # an integer of more than 4300 digits
        raise ConfigError([f"{p}: not valid TOML: {str(exc).split(':')[0]}"]) from None
    return parse(data, p)


def parse(data: dict[str, Any], path: Path | None = None) -> Config:
    v = _Validator(str(path) if path else "devices.toml")
    v.models_table = data.get("models")
    if _depth(data) > MAX_DEPTH:
        raise ConfigError([f"{v.filename}: nested deeper than {MAX_DEPTH} levels; devices.toml needs a few"])
    v.keys(data, "", TOP_KEYS)
    devices = {name: d for name, d in
               ((n, v.device(n, t)) for n, t in v.table(data, "devices").items()) if d}
    models = {name: m for name, m in
              ((n, v.model(n, t)) for n, t in v.table(data, "models").items()) if m}
    links = {name: lk for name, lk in
             ((n, v.link(n, t)) for n, t in v.table(data, "links").items()) if lk}
    tolerances = v.tolerances(v.table(data, "tolerances"))
    for key, what, allowed in against_problems(devices):
        v.problem(key, what, allowed)
    if "devices" in data and not devices and not v.problems:
        v.problem("devices", "is empty", "at least one [devices.NAME] table")
    if v.problems:
        raise ConfigError(v.problems)
    return Config(path=path, devices=devices or builtin().devices, models=models,
                  links=links, tolerances=tolerances)


class _Validator:
    """Walks the parsed TOML, collecting problems instead of stopping at the first."""

    def __init__(self, filename: str):
        self.filename = filename
        self.problems: list[str] = []
        self.models_table: Any = None
        self._known: set[str] | None = None
        self.backends = tuple(known_backends())  # entry points read once, not once per device
        self.backend_options: dict[str, Any] = {}

    def known_models(self) -> set[str]:
        """The workloads a claim may name: the zoo's and the file's [models]."""
        if self._known is None:
            from .models.zoo import ZOO  # onnx: only once a claim names a model

            self._known = set(ZOO) | (set(self.models_table) if isinstance(self.models_table, dict) else set())
        return self._known

    def problem(self, key: str, what: str, allowed: str = "") -> None:
        tail = f"; allowed: {allowed}" if allowed else ""
        self.problems.append(f"{self.filename}: {key or '(top level)'}: {what}{tail}")

    def keys(self, table: dict[str, Any], where: str, allowed: tuple[str, ...]) -> None:
        for key in table:
            if key not in allowed:
                self.problem(_join(where, key), f"unknown key{did_you_mean(key, allowed)}",
                             ", ".join(allowed))

    def table(self, parent: dict[str, Any], key: str, where: str = "") -> dict[str, Any]:
        value = parent.get(key, {})
        if not isinstance(value, dict):
            self.problem(_join(where, key), f"must be a table, not {_kind(value)}")
            return {}
        return value

    def number(self, table: dict[str, Any], key: str, where: str, *, minimum: float = 0.0,
               required: bool = False, allow_zero: bool = False) -> float | None:
        if key not in table:
            if required:
                self.problem(_join(where, key), "is required", "a number")
            return None
        value = table[key]
        if is_number(value) and (value > minimum or (allow_zero and value == minimum)):
            return float(value)
        bound = f">= {minimum:g}" if allow_zero else f"> {minimum:g}"
        self.problem(_join(where, key), f"{_show(value)} is not a finite number {bound}", f"a number {bound}")
        return None

    def choice(self, table: dict[str, Any], key: str, where: str, allowed: tuple[str, ...],
               default: str | None = None) -> str | None:
        value = table.get(key, default)
        if value is None:
            self.problem(_join(where, key), "is required", ", ".join(allowed))
        elif not isinstance(value, str) or value not in allowed:
            self.problem(_join(where, key), f"{_show(value)} is not allowed{did_you_mean(str(value), allowed)}",
                         ", ".join(allowed))
        else:
            return value
        return None

    def string(self, table: dict[str, Any], key: str, where: str, default: str = "") -> str:
        value = table.get(key, default)
        if not isinstance(value, str):
            self.problem(_join(where, key), f"must be a string, not {_kind(value)}")
            return default
        return value

    def name(self, name: str, where: str) -> bool:
        """A device or model name that is safe as part of a file name (workers, locks and logs use it)."""
        bad = (not name or len(name) > MAX_NAME or name.startswith(".") or "/" in name or "\\" in name
               or not name.isprintable())
        if bad:
            self.problem(where, "is not a usable name", NAME_RULE)
        return not bad

    def device(self, name: str, table: Any) -> Device | None:
        where = f"devices.{shown(name)}"
        if not isinstance(table, dict):
            self.problem(where, f"must be a table, not {_kind(table)}")
            return None
        before = len(self.problems)
        self.name(name, where)
        self.keys(table, where, DEVICE_KEYS)
        kind = self.choice(table, "kind", where, KINDS)
        backend = self.choice(table, "backend", where, self.backends)
        tier = self.choice(table, "tier", where, TIERS, default="device")
        numbers = {k: self.number(table, k, where) for k in NUMBER_KEYS}
        options = self.table(table, "options", where)
        meter = self.table(table, "meter", where) or {"source": "none"}
        claims = self.claims(self.table(table, "claims", where), f"{where}.claims")
        hardware_id = self.string(table, "hardware_id", where)
        description = self.string(table, "description", where)
        if len(self.problems) > before or kind is None or backend is None or tier is None:
            return None
        device = Device(name=name, kind=kind, backend=backend, tier=tier, options=dict(options),
                        hardware_id=hardware_id, description=description, meter=dict(meter),
                        claims=tuple(claims), **numbers)
        found = self.options_of(backend) if backend else None
        if backend and found is not None:
            self.problems.extend(f"{self.filename}: {p}" for p in option_problems(device, found, backend))
        self.problems.extend(f"{self.filename}: {problem}" for problem in check_meter(device))
        return device

    def options_of(self, backend: str) -> Any:
        """The keys a backend declares (None: a plug-in that checks its own), looked up once per backend."""
        if backend not in self.backend_options:
            self.backend_options[backend] = declared_options(backend)
        return self.backend_options[backend]

    def claims(self, suites: dict[str, Any], where: str) -> list[ClaimSpec]:
        specs: list[ClaimSpec] = []
        for suite, table in suites.items():
            swhere = _join(where, suite)
            if (typo := suite_problem(suite)) is not None:
                self.problem(swhere, typo, ", ".join(sorted(BUILT_IN)))
                continue
            if not isinstance(table, dict):
                self.problem(swhere, f"must be a table, not {_kind(table)}")
                continue
            for name, value in table.items():
                cwhere = _join(swhere, name)
                if suite in CLAIMS and name not in CLAIMS[suite]:  # a suite of the user's: checked at collection
                    self.problem(cwhere, f"unknown claim{did_you_mean(name, CLAIMS[suite])}",
                                 ", ".join(sorted(CLAIMS[suite])))
                    continue
                if isinstance(value, dict) and "threshold" not in value:
                    for model, per_model in value.items():
                        specs.extend(self.claim(suite, name, per_model, _join(cwhere, model), model))
                else:
                    specs.extend(self.claim(suite, name, value, cwhere, ANY_MODEL))
        return specs

    def claim(self, suite: str, name: str, value: Any, where: str, model: str) -> list[ClaimSpec]:
        extras: dict[str, Any] = {}
        if isinstance(value, dict):
            self.keys(value, where, table_keys(suite, name))
            extras = {k: v for k, v in value.items() if k != "threshold"}
            threshold = self.number(value, "threshold", where, required=True, allow_zero=True)
        else:
            parent, _, key = where.rpartition(".")
            threshold = self.number({key: value}, key, parent, required=True, allow_zero=True)
        if threshold is None:
            return []
        spec = ClaimSpec(suite=suite, name=name, threshold=threshold, model=model, extras=extras)
        for what, allowed in spec_problems(spec, self.known_models() if model != ANY_MODEL else ()):
            self.problem(where, what, allowed)
        return [spec]

    def model(self, name: str, table: Any) -> ModelEntry | None:
        where = f"models.{shown(name)}"
        if not isinstance(table, dict):
            self.problem(where, f"must be a table, not {_kind(table)}")
            return None
        before = len(self.problems)
        self.name(name, where)
        self.keys(table, where, MODEL_KEYS)
        if ("path" in table) == ("zoo" in table):
            self.problem(where, "needs exactly one of 'path' (a model file) or 'zoo' (a builder name)")
            return None
        for key in ("path", "zoo", "description"):
            if key in table and not (isinstance(table[key], str) and table[key]):
                self.problem(_join(where, key), f"must be a non-empty string, not {_kind(table[key])}")
        params = self.table(table, "params", where)
        if len(self.problems) > before:
            return None
        return ModelEntry(name=name, path=table.get("path"), zoo=table.get("zoo"), params=dict(params))

    def link(self, name: str, table: Any) -> Link | None:
        where = f"links.{name}"
        if not isinstance(table, dict):
            self.problem(where, f"must be a table, not {_kind(table)}")
            return None
        before = len(self.problems)
        self.keys(table, where, LINK_KEYS)
        src = self.choice(table, "from", where, TIERS)
        dst = self.choice(table, "to", where, TIERS)
        bandwidth = self.number(table, "bandwidth_mbps", where, required=True)
        rtt = self.number(table, "rtt_ms", where, required=True, allow_zero=True)
        loss = self.number(table, "loss", where, allow_zero=True) or 0.0
        if loss >= 1.0:
            self.problem(_join(where, "loss"), f"{loss!r} is not a fraction below 1", "0 <= loss < 1")
        jitter = self.number(table, "jitter_ms", where, allow_zero=True) or 0.0
        if len(self.problems) > before or src is None or dst is None or bandwidth is None or rtt is None:
            return None
        return Link(name=name, src=src, dst=dst, bandwidth_mbps=bandwidth, rtt_ms=rtt, loss=loss, jitter_ms=jitter)

    def tolerances(self, table: dict[str, Any]) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for suite, metrics in table.items():
            where = f"tolerances.{suite}"
            if not isinstance(metrics, dict):
                self.problem(where, f"must be a table of metric = fraction, not {_kind(metrics)}")
                continue
            out[suite] = {m: t for m in metrics
                          if (t := self.number(metrics, m, where)) is not None}
        return out


def _join(where: str, key: str) -> str:
    return f"{where}.{shown(key)}" if where else shown(key)


def _show(value: Any) -> str:
    """A value in a problem line: repr, shortened (a 400-digit integer is not worth printing)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def _depth(data: Any) -> int:
    """How deep tables and arrays nest (walked without recursion)."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        value, depth = stack.pop()
        deepest = max(deepest, depth)
        children = value.values() if isinstance(value, dict) else value
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return deepest


def _kind(value: Any) -> str:
    return {dict: "a table", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__)
