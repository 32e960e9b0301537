"""The pytest plugin: options, markers, fixtures, collection, summary, report. Hooks only.

Loading the plugin costs nothing until edgeai is used (as Hypothesis's plugin does): the run (devices.toml,
the zoo, the runtimes, numpy, onnx) starts only when an edgeai option is given on the command line or in
the ini file, a test requests an edgeai fixture, or a test carries an edgeai marker. Until then this
module imports only the option table, the Device leaf and the hook specifications, and every hook
returns at once. That is why the heavy modules are imported inside the functions that start the run
or render its end: the import is the cost being deferred, not a cycle being dodged.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from contextlib import nullcontext
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pytest

from . import hookspecs, registry
from .devices import KINDS
from .errors import EdgeAIError
from .options import BY_DEST, OPTIONS, split_list

if TYPE_CHECKING:
    from .bench import Bench
    from .claims import ClaimChecker
    from .config import Config
    from .devices import Device
    from .models.model import Model
    from .report.terminal import LiveLine
    from .results.compare import Outcome
    from .results.store import RunStore
    from .run import EdgeAIRun, Workload

KIND_MARKERS: tuple[str, ...] = KINDS
MARKERS: tuple[str, ...] = ("device", "edgeai_suite", *KIND_MARKERS)
INI_TYPES: dict[str, Literal["bool", "args"]] = {"bool": "bool", "list": "args"}
DEVICE_FIXTURES = ("edgeai_device", "edgeai_bench", "edgeai_claims")
FIXTURES = ("edgeai_session", "edgeai_config", "edgeai_workload", "edgeai_model", *DEVICE_FIXTURES)
RUN_KEY = pytest.StashKey["EdgeAIRun"]()
DEFERRED_ERROR_KEY = pytest.StashKey[str]()  # a run that could not start during collection: said after it
HEADER_SHOWN_KEY = pytest.StashKey[bool]()
BASELINE_KEY = pytest.StashKey["Outcome"]()  # results.compare.Outcome of this session
LAST_LINE_KEY = pytest.StashKey[str]()  # the run's path, written after pytest's own summary
LIVE_LINE_KEY = pytest.StashKey["LiveLine | None"]()  # None: this session's output is no place for one


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("edgeai", "pytest-edgeai: characterise inference on accelerators")
    for opt in OPTIONS:
        kwargs: dict[str, Any] = {"dest": opt.dest, "help": opt.help + (
            f" (default: {opt.default})" if opt.default not in (None, [], False) else "")}
        if opt.kind == "bool":
            kwargs["action"] = "store_true"
        elif opt.kind == "list":
            kwargs["action"] = "append"
        if opt.choices:
            kwargs["choices"] = opt.choices
        if opt.metavar:
            kwargs["metavar"] = opt.metavar
        group.addoption(opt.flag, default=None, **kwargs)
        parser.addini(opt.ini, opt.help, type=INI_TYPES.get(opt.kind, "string"), default=opt.default)


def _value(config: pytest.Config, dest: str) -> Any:
    """Command line first, then the ini key, then the default."""
    value = config.getoption(dest)
    if value is None or value == []:
        value = config.getini(BY_DEST[dest].ini)
    return value


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "device(*names_or_kinds): run only on these devices (names or kinds)")
    for kind in KIND_MARKERS:
        config.addinivalue_line("markers", f"{kind}: run only on devices of kind {kind}")
    config.addinivalue_line("markers", "edgeai_suite(name, claims={'min_x': 'unit'}): the suite a test's records "
                                       "and claims belong to (default: the module name without test_), and the "
                                       "claims a suite of your own declares")
    if _options_given(config) or _xdist_controller(config):
        _start_run(config)


def _options_given(config: pytest.Config) -> bool:
    """An edgeai option on the command line, or an ini key set to other than its default."""
    return any(config.getoption(o.dest) not in (None, []) or config.getini(o.ini) != o.default for o in OPTIONS)


def _xdist_controller(config: pytest.Config) -> bool:
    """A pytest-xdist controller collects nothing, so it cannot see the fixtures its workers use; it plans
    the shared run up front, as before (see lab.xdist.is_controller)."""
    return (not hasattr(config, "workerinput") and getattr(config.option, "dist", "no") != "no"
            and not getattr(config.option, "collectonly", False))


def _start_run(config: pytest.Config) -> EdgeAIRun:
    """Start the run: the hooks' backends and meters, devices.toml, the selected devices. Bad input is a
    UsageError with one line per problem."""
    from .lab import xdist
    from .run import EdgeAIRun, Settings

    def path(dest: str) -> Path | None:
        value = _value(config, dest)
        return Path(value) if value else None

    try:
        batches = [int(b) for b in split_list(_value(config, "edgeai_batches"))]
        if not batches or min(batches) < 1:
            raise ValueError
    except ValueError:
        raise pytest.UsageError("--edgeai-batches: give positive whole numbers, e.g. 1,2,4,8") from None
    rootdir = Path(config.rootpath)
    settings = Settings(
        devices=split_list(_value(config, "device")) or ["cpu"],
        devices_file=path("devices_file"),
        profile=_value(config, "edgeai_profile") or "standard",
        report_dir=rootdir / (path("edgeai_report_dir") or "reports"),
        strict=bool(_value(config, "edgeai_strict")),
        models=split_list(_value(config, "edgeai_model")),
        batches=batches,
        cache_dir=path("edgeai_cache_dir"),
        rootdir=rootdir,
        values={o.dest: _value(config, o.dest) for o in OPTIONS},
    )
    try:
        _add_plugins(config)
        config.stash[RUN_KEY] = s = EdgeAIRun(settings)
    except EdgeAIError as exc:
        raise pytest.UsageError(f"pytest-edgeai: {exc}") from None
    s.shared_run, s.xdist_worker = xdist.roles(config, settings.report_dir)
    if s.shared_run is not None and s.xdist_worker is None:
        xdist.bound_restarts(config)
        config.pluginmanager.register(_XdistController(s), "edgeai-xdist-controller")
    if s.xdist_worker is None:  # where the run is finished: a worker's reports reach it with their suite
        config.pluginmanager.register(_Outcomes(s), "edgeai-outcomes")
    return s


def _add_plugins(config: pytest.Config) -> None:
    """What the conftests and plugins loaded so far add through the hooks of hookspecs.py."""
    registry.clear()
    for group, hook, name in ((registry.BACKENDS, config.hook.pytest_edgeai_backends, "pytest_edgeai_backends"),
                              (registry.METERS, config.hook.pytest_edgeai_meters, "pytest_edgeai_meters")):
        for found in hook():
            registry.add(group, found, name)


def _used(config: pytest.Config) -> EdgeAIRun | None:
    """The run, started now if it has not been; None (the error kept for the end of collection) when
    it cannot start. Called only where a test uses edgeai."""
    if RUN_KEY in config.stash:
        return config.stash[RUN_KEY]
    if DEFERRED_ERROR_KEY in config.stash:
        return None
    try:
        return _start_run(config)
    except pytest.UsageError as exc:  # raised from a collector it would be a collection error with a traceback
        config.stash[DEFERRED_ERROR_KEY] = str(exc)
        return None


def _started(config: pytest.Config) -> EdgeAIRun | None:
    """The run if edgeai is in use, else None: the hooks of a run that does not use edgeai do nothing."""
    return config.stash.get(RUN_KEY, None)


class _XdistController:
    """Hooks of the xdist controller: records measured by workers arrive with their test reports."""

    def __init__(self, s: EdgeAIRun):
        self.s = s

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        from .lab.runshare import take_records

        for record in take_records(report.user_properties):
            self.s.receive(record)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        from .lab.runshare import ENVIRONMENT_OUTPUT_KEY

        environment = getattr(node, "workeroutput", {}).get(ENVIRONMENT_OUTPUT_KEY)
        if environment:
            self.s.worker_environments[node.gateway.id] = environment


SUITE_ATTRIBUTE = "edgeai_suite"  # on a test report: the test used edgeai, in this suite (xdist carries it)


class _Outcomes:
    """Each edgeai test's outcome with its reason, for run.json (results.store.TestOutcome)."""

    def __init__(self, s: EdgeAIRun):
        self.s = s

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        from .results.store import TestOutcome

        suite = getattr(report, SUITE_ATTRIBUTE, None)
        known = self.s.outcomes.get(report.nodeid)
        if suite is None or (report.passed and known is not None):  # a later phase that passed changes nothing
            return
        xfail = getattr(report, "wasxfail", None)
        if xfail is not None:
            outcome, reason = ("xpassed" if report.passed else "xfailed"), str(xfail)
        elif report.skipped:
            outcome, reason = "skipped", _skip_reason(report)
        elif report.failed:
            outcome = "failed" if report.when == "call" else "error"
            crash = getattr(report.longrepr, "reprcrash", None)
            reason = str(crash.message if crash is not None else report.longrepr).removeprefix("Failed: ")
        else:
            outcome, reason = "passed", ""
        if known is not None and known.outcome in ("failed", "skipped", "xfailed") and outcome == "error":
            outcome = known.outcome  # a teardown error after a failure: the failure says more
        self.s.outcomes[report.nodeid] = TestOutcome(report.nodeid, str(suite), outcome, reason[:MAX_REASON])


MAX_REASON = 600  # characters of a reason kept in run.json (a traceback's last line, a skip's why)


@pytest.hookimpl(wrapper=True)
def pytest_sessionstart(session: pytest.Session) -> Generator[None, None, None]:
    """xdist connects to remote benches here: an unreachable one is one line, not an INTERNALERROR."""
    try:
        return (yield)
    except Exception as exc:
        from .lab.xdist import unreachable_message

        message = unreachable_message(exc)
        if message is None:
            raise
        raise pytest.UsageError(message) from None


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_setupnodes(config: pytest.Config, specs: list[Any]) -> None:
    from .lab.xdist import harden_ssh

    for spec in specs:
        harden_ssh(spec)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """Every worker, local or remote, writes into the run this controller planned."""
    from .lab import runshare

    s = _started(node.config)
    if s is not None and s.shared_run is not None:
        node.workerinput[runshare.WORKERINPUT_KEY] = runshare.for_worker(s.shared_run, bool(node.gateway.spec.popen))


def _session(config: pytest.Config) -> EdgeAIRun:
    """The run, for a fixture or hook that uses it (started now if a fixture was asked for late)."""
    s = _used(config)
    if s is None:
        pytest.fail(config.stash[DEFERRED_ERROR_KEY], pytrace=False)
    return s


def _header(s: EdgeAIRun) -> str:
    where = s.config.path or "built-in (no devices.toml)"
    devices = ", ".join(f"{d.name} ({d.kind}, {d.backend} {registry.distribution_version(d.backend) or ''})"
                        .replace(" )", ")") for d in s.devices)
    return (f"edgeai: devices {devices or 'none'} from {where}; profile {s.profile.name}"
            f"{'; strict' if s.settings.strict else ''}")


def pytest_report_header(config: pytest.Config) -> list[str]:
    s = _started(config)
    if s is None:
        return []
    config.stash[HEADER_SHOWN_KEY] = True
    return [_header(s)]


def _marker_targets(item_or_fn: pytest.Item | pytest.Function) -> list[str] | None:
    """Names and kinds a test is limited to by its markers; None when it is not limited."""
    targets: list[str] = []
    limited = False
    for mark in item_or_fn.iter_markers():
        if mark.name == "device":
            limited = True
            targets.extend(split_list(list(mark.args)))
        elif mark.name in KIND_MARKERS:
            limited = True
            targets.append(mark.name)
    return targets if limited else None


def _matches(device: Device, targets: list[str] | None) -> bool:
    return targets is None or device.name in targets or device.kind in targets


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if not any(f in metafunc.fixturenames for f in FIXTURES):
        return
    s = _used(metafunc.config)
    if s is None:
        return
    if any(f in metafunc.fixturenames for f in DEVICE_FIXTURES):
        targets = _marker_targets(metafunc.definition)
        devices = [d for d in s.devices if _matches(d, targets)]
        if devices:
            metafunc.parametrize("edgeai_device", devices, ids=[d.name for d in devices],
                                 indirect=True, scope="function")
    if "edgeai_workload" in metafunc.fixturenames:
        metafunc.parametrize("edgeai_workload", s.workloads, ids=[w.name for w in s.workloads],
                             indirect=True)


def _uses_edgeai(item: pytest.Item) -> bool:
    return (any(f in getattr(item, "fixturenames", ()) for f in FIXTURES)
            or any(mark.name in MARKERS for mark in item.iter_markers()))


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    s = _started(config) or (_used(config) if any(_uses_edgeai(item) for item in items) else None)
    if DEFERRED_ERROR_KEY in config.stash:
        raise pytest.UsageError(config.stash[DEFERRED_ERROR_KEY])
    if s is None:
        return
    _declare_claims(s, items)
    keep, drop = [], []
    for item in items:
        targets = _marker_targets(item)
        uses_device = any(f in getattr(item, "fixturenames", ()) for f in DEVICE_FIXTURES)
        has_param = hasattr(item, "callspec") and "edgeai_device" in item.callspec.params
        if ((targets is not None and not any(_matches(d, targets) for d in s.devices))
                or (uses_device and not has_param)):
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_collection_finish(session: pytest.Session) -> None:
    """A run started by what the tests use, after the header was written: its header line now."""
    config = session.config
    s = _started(config)
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if s is None or config.stash.get(HEADER_SHOWN_KEY, False) or reporter is None:
        return
    config.stash[HEADER_SHOWN_KEY] = True
    if config.get_verbosity() >= 0 and not getattr(config.option, "no_header", False):
        reporter.write_line(_header(s))


def _declare_claims(s: EdgeAIRun, items: list[pytest.Item]) -> None:
    """Custom suites' claims from their markers; then devices.toml's claims are checked against them."""
    import warnings

    from .claims import collected_problems

    marks = (item.get_closest_marker("edgeai_suite") for item in items)
    declared = {str(m.args[0]): m.kwargs["claims"] for m in marks if m and m.args and "claims" in m.kwargs}
    errors, notes = collected_problems(declared, s.config.devices.values())
    if errors:
        raise pytest.UsageError("pytest-edgeai: " + "\n  ".join(dict.fromkeys(errors)))
    for note in notes:
        warnings.warn(pytest.PytestConfigWarning(note), stacklevel=1)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item,
                               call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """An EdgeAIError is bad input, not a bug: show its message, not our traceback. The live line goes
    before pytest writes the outcome, so the line is pytest's again."""
    report = yield
    _clear_live_line(item.config)
    if call.excinfo is not None and call.excinfo.errisinstance(EdgeAIError) and report.failed:
        report.longrepr = f"{type(call.excinfo.value).__name__}: {call.excinfo.value}"
    s = _started(item.config)
    if s is not None and s.xdist_worker is not None and s.outbox:  # to the controller, which writes them into the run
        from .lab.runshare import record_properties

        report.user_properties.extend(record_properties(s.outbox))
        s.outbox.clear()
    if s is not None and _uses_edgeai(item):
        setattr(report, SUITE_ATTRIBUTE, _suite_of(item))
    return report


def _suite_of(node: pytest.Item) -> str:
    mark = node.get_closest_marker("edgeai_suite")
    if mark and mark.args:
        return str(mark.args[0])
    return Path(str(node.path)).stem.removeprefix("test_")


@pytest.fixture(scope="session")
def edgeai_session(pytestconfig: pytest.Config) -> EdgeAIRun:
    """The session state: config, selected devices, the open run."""
    s = _session(pytestconfig)
    if s.store is None:
        s.start_run(s.settings.values)
    return s


@pytest.fixture(scope="session")
def edgeai_config(edgeai_session: EdgeAIRun) -> Config:
    """The validated devices.toml (or the built-in config)."""
    return edgeai_session.config


@pytest.fixture
def edgeai_device(request: pytest.FixtureRequest, edgeai_session: EdgeAIRun) -> Device:
    """The device under test (parametrised over the selected devices); skips if not attached."""
    device: Device = request.param
    availability = edgeai_session.availability(device)
    lost = edgeai_session.lost.reason(device)
    if lost or not availability.attached:
        message = (f"device {device.name} was lost earlier in this run: {lost}" if lost else
                   f"device {device.name} ({device.kind}, {device.backend}) is not attached: {availability.reason}")
        if edgeai_session.settings.strict:
            pytest.fail(f"{message} [--edgeai-strict]", pytrace=False)
        pytest.skip(message)
    return device


@pytest.fixture
def edgeai_workload(request: pytest.FixtureRequest, edgeai_session: EdgeAIRun) -> Model:
    """A model the suites run (parametrised over the zoo, [models] and --edgeai-model files); a zoo model
    whose trained weights are not installed skips with what to install (never built seeded instead)."""
    from .models.zoo import ZOO

    builder = ZOO.get(request.param.ref)
    reason = builder.unavailable(request.param.params) if builder else None
    if reason:
        pytest.skip(f"{request.param.name}: {reason}")
    model = edgeai_session.model(request.param)
    if "edgeai_device" in request.fixturenames:  # a format the device's runtime cannot run: a skip in every suite
        from .backends.base import refusal

        device = request.getfixturevalue("edgeai_device")
        why = refusal(device, model)
        if why:
            pytest.skip(f"{model.name} on {device.name} ({device.backend}): {why}")
    return model


@pytest.fixture(scope="session")
def edgeai_model(edgeai_session: EdgeAIRun) -> Callable[[Workload | str], Model]:
    """A factory: ``edgeai_model("mobilenet_v2")`` or ``edgeai_model("models/x.onnx")``, a relative path read
    from pytest's rootdir as reports/ and devices.toml are."""
    return edgeai_session.model


@pytest.fixture
def edgeai_bench(request: pytest.FixtureRequest, edgeai_session: EdgeAIRun,
                 edgeai_device: Device) -> Generator[Bench, None, None]:
    """Runs scenarios on the test's device and records each result as it is produced."""
    from dataclasses import asdict

    from .bench import Bench
    from .report.terminal import ProgressLine

    line = _live_line(request.config)
    bench = Bench(edgeai_device, _suite_of(request.node), request.node.nodeid, edgeai_session.profile,
                  save=edgeai_session.save,
                  availability=asdict(edgeai_session.availability(edgeai_device)),
                  progress=partial(ProgressLine, line) if line is not None else None,
                  lab=edgeai_session, lock_timeout_s=edgeai_session.lock_timeout_s)
    yield bench
    from .results.compare import metric_properties

    request.node.user_properties.extend(metric_properties(bench.records))  # JUnit XML properties
    bench.close()


@pytest.fixture
def edgeai_claims(request: pytest.FixtureRequest, edgeai_session: EdgeAIRun, edgeai_device: Device) -> ClaimChecker:
    """The claims of this device in this suite: ``check(...)`` then ``assert_met()``."""
    from .claims import ClaimChecker

    return ClaimChecker(edgeai_device, _suite_of(request.node), save=edgeai_session.save,
                        fail=lambda msg: pytest.fail(msg, pytrace=False), skip=pytest.skip, xfail=pytest.xfail,
                        strict=edgeai_session.settings.strict, max_rounds=edgeai_session.profile.max_rounds)


def _live_line(config: pytest.Config) -> LiveLine | None:
    """The session's live progress line, made on first use; None where it must stay quiet: output that is
    not a terminal (a CI log, a pipe), an xdist worker (its output is not a terminal either), -q, or a
    pytest without TerminalReporter.write_raw (before 9.0), the one way to write past its line count."""
    if LIVE_LINE_KEY not in config.stash:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        quiet = (reporter is None or not bool(getattr(reporter, "isatty", False)) or config.get_verbosity() < 0
                 or hasattr(config, "workerinput") or not hasattr(reporter, "write_raw"))
        config.stash[LIVE_LINE_KEY] = None if quiet else _make_live_line(config, reporter)
    return config.stash[LIVE_LINE_KEY]


def _make_live_line(config: pytest.Config, reporter: Any) -> LiveLine:
    """Writes go around pytest's capture as its live logging's do (so they show without -s) and past its
    TerminalWriter's count of the line (so its [NN%] column stays where it belongs)."""
    from .report.terminal import LiveLine

    capture = config.pluginmanager.get_plugin("capturemanager")
    writer = config.get_terminal_writer()

    def write(text: str) -> None:
        with capture.global_and_fixture_disabled() if capture is not None else nullcontext():
            reporter.write_raw(text, flush=True)

    return LiveLine(write, room=lambda: writer.fullwidth - writer.width_of_current_line - 1,
                    column=lambda: writer.width_of_current_line)


def _clear_live_line(config: pytest.Config) -> None:
    line = config.stash.get(LIVE_LINE_KEY, None)
    if line is not None:
        line.clear()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config) -> None:
    """What was measured and judged, why tests skipped, the comparison with the baseline; the run's path
    waits for the very last line (pytest_unconfigure)."""
    s = _started(config)
    if s is None or s.store is None or s.xdist_worker is not None:
        return
    from .report.terminal import run_line, skip_lines, summary_lines
    from .results.store import LATEST, resolve_run

    records = s.run_records()
    lines = summary_lines(records)
    if lines:
        terminalreporter.section("edgeai summary")
        for line in lines:
            terminalreporter.write_line(line)
    skips = skip_lines(_skip_reason(report) for report in terminalreporter.stats.get("skipped", []))
    if skips:
        terminalreporter.section("edgeai skipped", yellow=True)
        for line in skips:
            terminalreporter.write_line(line)
    outcome = config.stash.get(BASELINE_KEY, None)
    if outcome is not None and (outcome.lines or outcome.error):
        terminalreporter.section("edgeai vs baseline", red=bool(outcome.regressed or outcome.error))
        for line in outcome.lines:
            terminalreporter.write_line(line)
        if outcome.error:
            terminalreporter.write_line(f"edgeai: {outcome.error}", red=True)
    try:
        latest: Path | None = resolve_run(LATEST, s.store.path.parent)
    except EdgeAIError:
        latest = None
    config.stash[LAST_LINE_KEY] = run_line(len(records), s.store.path, s.report_path, latest)


def _skip_reason(report: pytest.TestReport) -> str:
    """A skip's reason as pytest -rs words it, without its file and line."""
    longrepr = report.longrepr
    text = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return str(text).removeprefix("Skipped: ")


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """After pytest's short summary and its count of outcomes: the run's path, the session's last line."""
    registry.clear()  # a conftest's backends do not outlive its run (pytester runs share a process)
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    line = config.stash.get(LAST_LINE_KEY, None)
    if line is not None and reporter is not None:
        reporter.write_line(line)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _clear_live_line(session.config)  # an interrupted measurement's line too
    s = _started(session.config)
    if s is None:
        return
    s.close()
    if s.xdist_worker is not None:  # the controller finishes the run and renders the report, once
        s.hand_over(getattr(session.config, "workeroutput"))  # set by xdist on its workers
        return
    if s.store is None and not s.rejoin_run():
        return
    store = s.store
    if store is None:
        return
    from dataclasses import asdict

    from .report.html import write_report

    store.update_meta(tests=[asdict(o) for o in s.outcomes.values()])
    store.finish("complete" if exitstatus in (0, 1) else f"interrupted (exit {int(exitstatus)})")
    if s.worker_environments:
        store.update_meta(workers=s.worker_environments)
    outcome = _against_baseline(session, s, store)
    s.report_path = write_report(store.path, comparison=outcome.comparison)


def _against_baseline(session: pytest.Session, s: EdgeAIRun, store: RunStore) -> Outcome:
    """--edgeai-baseline: compare this run, keep the outcome for the summary, and under
    --edgeai-fail-on-regression fail the session on a regression or a baseline that cannot be found."""
    from .results.compare import BASELINE_RUNS, against_baseline, stamp_release

    stamp_release(store)
    fail = bool(s.settings.option("edgeai_fail_on_regression"))
    outcome = against_baseline(store.path, s.settings.option("edgeai_baseline"), s.settings.report_dir,
                               s.config.tolerances, fail, s.baseline_runs)
    if outcome.comparison is not None:  # what the report, rendered again later, judges the run against
        store.update_meta(baseline=str(outcome.comparison.base.path), **{BASELINE_RUNS: s.baseline_runs})
    session.config.stash[BASELINE_KEY] = outcome
    if fail and (outcome.regressed or outcome.error) and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    return outcome
