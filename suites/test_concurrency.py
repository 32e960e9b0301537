"""How many tenants fit on a device, and what do concurrent models and dynamic placement buy?

Every test measures first, records (each step as it ends, so a later failure loses nothing),
then checks the claims devices.toml states under [devices.NAME.claims.concurrency]. Each study
runs through ``edgeai_bench.call``: in the device's isolated worker by default, under the
device's lock, so a runtime that crashes or hangs fails that test and the session goes on.

- tenant sweep: N = 1, 2, 4, ... sessions of one model, as threads or as processes, each with
  its share of the cores; aggregate throughput, each tenant's percentiles, Jain's fairness.
- memory capacity: tenants loaded one by one in a child process until the memory budget (a
  min_tenants claim's budget_mb where devices.toml states one, else the profile's); the
  prediction from the per-tenant footprint against what was observed.
- concurrent models: different models at once against each alone.
- dynamic placement: shortest-queue dispatch over the selected devices (or over the device
  split in two when it is the only one) against the best single device.
- MLPerf LoadGen: SingleStream, MultiStream, Server (highest QPS under a p99 bound, by
  bisection) and Offline, with LoadGen's own verdict and summary kept in the record.
- EdgeTPU (where attached): model-switch overhead, separately vs co-compiled ([models.X.params]
  co_compiled = "GROUP" marks models compiled together), and several TPUs as a cluster.
"""

from __future__ import annotations

import re

import pytest

from pytest_edgeai import (
    CAPACITY_MODEL,
    MIB,
    MISSED,
    PLACEMENT_MODEL,
    SWEEP_MODELS,
    CapacityPlan,
    Estimate,
    Interleaved,
    ProcessRunner,
    ServerPlan,
    ThreadRunner,
    available_bytes,
    capacity_metrics,
    edgetpu_parameter_bytes,
    estimate_metric,
    loadgen_study,
    measure_placement,
    metric,
    models_metrics,
    placement_metrics,
    plan_for,
    plan_threads,
    probe_capacity,
    ratio_estimate,
    round_profile,
    run_concurrent_models,
    run_sweep,
    run_tenants,
    split_device,
    step_metrics,
    switching_metrics,
    switching_study,
    unchecked,
    window_for,
    worst_p90_rounds,
)
from pytest_edgeai import LOADGEN_SCENARIOS as SCENARIOS

# SWEEP_MODELS, CAPACITY_MODEL and PLACEMENT_MODEL live with the claims on them (devices.toml refuses a claim
# keyed to a model these studies do not run)
TOGETHER_MODELS = ("mobilenet_v2", "cnn_trad_fpool3")
LOADGEN_MODEL = "mobilenet_v2"
RUNNERS = {"thread": ThreadRunner, "process": ProcessRunner}
# the Server scenario's p99 bound, in single-sample latencies (a queue a few deep), and its search range
SERVER_BOUND_LATENCIES = 5.0
SERVER_SEARCH_RANGE = (0.1, 2.0)  # x the one-worker rate 1 / latency (calibrated on a busy host, it may be low)
EDGETPU_CACHE_BYTES = 8 * MIB
# rounds of the N-tenant step a p90 claim measures first when no speed-up rounds at that N can be read: the fewest
# that give an interval (the sweep's own step and one more), since each round loads N tenants afresh (at standard
# on 2 cores about 8 s a round over the four sweep tests); the checker adds rounds while the verdict is
# inconclusive, up to the profile's max_rounds
P90_FIRST_ROUNDS = 2


@pytest.mark.parametrize("mode", list(RUNNERS))
@pytest.mark.parametrize("model_name", SWEEP_MODELS)
def test_tenant_sweep(edgeai_device, edgeai_model, edgeai_bench, edgeai_claims, edgeai_session, model_name, mode):
    """Throughput, per-tenant latency and fairness against the number of tenants."""
    model = edgeai_model(model_name)
    profile = edgeai_session.profile
    plan = plan_for(profile)
    step_records = []

    def record_step(step):
        record = edgeai_bench.new_record(model, {"name": "tenants", "tenants": step.tenants, "mode": mode,
                                                 "window_s": step.window_s})
        record.extra["step"] = step.to_dict()
        step_records.append(record)
        if not step.ok:
            edgeai_bench.fail_record(record, f"{step.tenants} tenants: {step.reason}")
            return
        record.metrics.update(step_metrics(step))
        # each tenant's own queries, apart: the record's percentiles are the worst tenant's and its throughput
        # the sum over tenants, so one pooled list would be evidence about neither
        record.samples.update({f"latency_ns.{o.name}": list(o.latencies_ns) for o in step.outcomes})
        edgeai_bench.save(record)

    sweep = edgeai_bench.call(run_sweep, model, edgeai_device, RUNNERS[mode](), window_for(profile),
                              plan.max_tenants, events={"on_step": record_step})
    summary = edgeai_bench.new_record(model, {"name": "tenant_sweep", "mode": mode, "limit": plan.max_tenants})
    summary.extra.update(sweep=sweep.rows(), stopped=sweep.stopped, plan=plan.to_dict(),
                         derived_from=[r.id for r in step_records])
    summary.metrics["max_tenants_run"] = metric(sweep.max_tenants_ok, "tenants", sweep.stopped)
    for step in sweep.good[1:]:
        summary.metrics[f"aggregate_speedup_at_{step.tenants}"] = metric(
            sweep.speedup(step.tenants), "x", f"aggregate throughput of {step.tenants} {mode} tenants / 1 tenant, "
            f"the sweep's steps one after the other (the machine's drift between them is in it; a claim reads the "
            f"interleaved rounds)", method="derived")
    if sweep.good:
        top = sweep.good[-1]
        summary.metrics["throughput_ips"] = metric(top.aggregate_ips, "inferences/s",
                                                   f"aggregate at {top.tenants} tenants")
    if len(sweep.good) < len(sweep.steps):
        summary.warnings.append(f"the sweep {sweep.stopped}")
    edgeai_bench.save(summary)
    if not sweep.good:
        pytest.fail(f"{model.name} on {edgeai_device.name}: not even one tenant ran: {sweep.stopped}", pytrace=False)

    speedup_at: dict[int, Interleaved] = {}  # the speed-up's rounds by tenant count: the p90 claim reads them
    for name in ("min_aggregate_speedup", "max_tenant_p90_latency_ms"):
        spec = edgeai_claims.spec(name, model.name)
        if spec is None:
            continue
        at = int(spec.extras.get("at_tenants", sweep.max_tenants_ok))
        where = f"{name} for {model.name} on {edgeai_device.name} at {at} tenants"
        if failed := _failed_at(sweep, at):  # N tenants did not run: what the claim asks about does not exist
            edgeai_claims.add(unchecked(spec, edgeai_device.name, model.name, f"{where}: {failed}", MISSED), summary)
        elif name == "min_aggregate_speedup":
            est, more, speedup_at[at] = _speedup_rounds(edgeai_bench, edgeai_session, model, edgeai_device, mode, at,
                                                        summary, sweep)
            edgeai_claims.check(name, est, model.name, summary, more=more)
        elif sweep.step(at) is not None:
            est, more = _p90_rounds(edgeai_bench, edgeai_session, model, edgeai_device, mode, at, summary, sweep,
                                    speedup_at.get(at))
            edgeai_claims.check(name, est, model.name, summary, more=more)
        else:
            edgeai_claims.not_checkable(name, model.name, f"the sweep at --edgeai-profile {profile.name} "
                                        f"{sweep.stopped} and did not run {at} (a longer profile runs more)", summary)
    edgeai_claims.assert_met()


def _failed_at(sweep, tenants: int) -> str | None:
    """Why ``tenants`` tenants could not be judged as several running together: their step failed, the sweep
    stopped on a failure before reaching them, or only one tenant ever ran; None when they can be."""
    failed = next((s for s in sweep.steps if not s.ok), None)
    if failed is not None and failed.tenants <= tenants:
        return f"{failed.tenants} tenants did not run ({failed.reason})"
    if tenants < 2:
        return f"only {tenants} tenant ran ({sweep.stopped}): nothing ran beside it"
    return None


def _speedup_rounds(bench, session, model, device, mode, tenants, summary, sweep):
    """Aggregate throughput of ``tenants`` tenants over one alone, in interleaved rounds (1 N, N 1, ...), each
    round a step of its own in the device's worker; written on the sweep's summary record. When the sweep ran
    1 tenant and then N back to back, those two steps are round 0 (the order a first round has), not measured
    again. Returns the estimate, the re-measure, and the series (a p90 claim at the same N reads its rounds)."""
    window = window_for(round_profile(session.profile))
    steps = sweep.steps[:2]
    first = ([[steps[0]], [steps[1]]] if len(steps) == 2 and all(s.ok for s in steps)
             and [s.tenants for s in steps] == [1, tenants] else [])
    series = Interleaved([lambda r, n=n: bench.call(run_tenants, model, device, RUNNERS[mode](), window, n)
                          for n in (1, tenants)], results=first)
    summary.extra["speedup_round0"] = "the sweep's own steps" if first else "measured for the ratio"

    def estimate() -> Estimate:
        ips = [[s.aggregate_ips if s.ok else None for s in steps] for steps in series.results]
        est = ratio_estimate(ips[1], ips[0], f"{tenants} tenants / 1")
        summary.metrics[f"aggregate_speedup_interleaved_at_{tenants}"] = estimate_metric(
            est, "x", f"aggregate throughput of {tenants} {mode} tenants / 1 tenant, per interleaved round")
        summary.extra["speedup_rounds"] = [[s.to_dict() for s in steps] for steps in series.results]
        bench.save(summary)
        return est

    def more() -> Estimate:
        series.more(1)
        return estimate()

    series.more(session.profile.rounds - series.rounds)
    return estimate(), more, series


def _p90_rounds(bench, session, model, device, mode, tenants, summary, sweep, speedup=None):
    """The worst tenant's p90 at ``tenants`` over independent rounds of that step (``worst_p90_rounds`` says how
    it is judged), written on the sweep's summary record. The speed-up claim's interleaved rounds at the same N
    (``speedup``) are rounds already measured, so they are read, not measured again; the sweep's own N-tenant
    step is a round unless it is already one of them. Rounds of the N-tenant step alone, at the round window,
    make up P90_FIRST_ROUNDS, and each re-measure while the verdict is inconclusive adds one."""
    window = window_for(round_profile(session.profile))
    shared = speedup.results[1] if speedup is not None else []
    step = sweep.step(tenants)
    own = [] if any(s is step for s in shared) else [step]
    summary.extra["p90_round0"] = "the speed-up's rounds" if shared and not own else "the sweep's own step"

    def steps():
        return [*shared, *own]

    def estimate() -> Estimate:
        est = worst_p90_rounds(steps(), tenants)
        figures = [p for s in steps() if (p := s.worst_p90_ms()) is not None]
        summary.metrics[f"worst_tenant_p90_rounds_at_{tenants}"] = estimate_metric(
            est, "ms", f"the worst tenant's p90 with {tenants} {mode} tenants, one figure per independent round",
            windows=figures)
        summary.extra["p90_rounds"] = [s.to_dict() for s in own]  # the speed-up's are in speedup_rounds
        bench.save(summary)
        return est

    def more() -> Estimate:
        own.append(bench.call(run_tenants, model, device, RUNNERS[mode](), window, tenants))
        return estimate()

    while len(steps()) < min(session.profile.rounds, P90_FIRST_ROUNDS):
        own.append(bench.call(run_tenants, model, device, RUNNERS[mode](), window, tenants))
    return estimate(), more


def test_memory_capacity(edgeai_device, edgeai_model, edgeai_bench, edgeai_claims, edgeai_session):
    """How many tenants fit: predicted from one tenant's footprint, observed by loading until the budget."""
    model = edgeai_model(CAPACITY_MODEL)
    profile = edgeai_session.profile
    plan = plan_for(profile)
    available = available_bytes(edgeai_device)
    tenant_device, threads = plan_threads(edgeai_device, plan.capacity_max_tenants)
    # a tenant count means something only with its budget: a min_tenants claim names the budget it was set at
    claim = edgeai_claims.spec("min_tenants", model.name)
    configured_mb, budget = plan.capacity_budget(available[0], claim.extras["budget_mb"] if claim else None)
    budget_from = "the min_tenants claim's budget_mb" if claim else "the profile's memory budget"
    cap = CapacityPlan(max_tenants=plan.capacity_max_tenants, budget_bytes=budget, step_timeout_s=profile.timeout_s)
    result = edgeai_bench.call(probe_capacity, model, tenant_device, cap, available)
    # the scenario names the budget configured, so records pair across hosts; what was probed goes in extra
    record = edgeai_bench.new_record(model, {"name": "memory_capacity", "max_tenants": cap.max_tenants,
                                             "budget_mb": configured_mb})
    record.metrics.update(capacity_metrics(result))
    capped = budget < int(configured_mb * MIB)
    record.extra.update(memory=result.to_dict(), threads=threads.to_dict(),
                        budget={"configured_mb": configured_mb, "from": budget_from,
                                "probed_mb": cap.budget_bytes / MIB, "capped_by": available[1] if capped else None})
    if capped:
        record.warnings.append(f"{budget_from} of {configured_mb:g} MiB is more than {edgeai_device.name} has: "
                               f"probed {cap.budget_bytes / MIB:.0f} MiB ({available[1]})")
    if edgeai_device.kind == "edgetpu":
        size, source = edgeai_bench.call(edgetpu_parameter_bytes, model, edgeai_device)
        record.metrics["parameter_cache_models"] = metric(
            EDGETPU_CACHE_BYTES // max(size, 1), "models", f"8 MiB parameter cache / {source}; "
            f"beyond this parameters stream from the host", method="estimated")
    if any(not s.ok for s in result.steps):
        record.warnings.append(f"capacity probe: {result.stopped}")
    edgeai_bench.save(record)

    footprints = result.footprints()
    if not footprints:
        pytest.fail(f"{model.name} on {edgeai_device.name}: not even one tenant loaded: {result.stopped}",
                    pytrace=False)
    if result.observed_max == 0:  # one tenant loaded but took more than the budget: nothing was checked
        more = "; --edgeai-profile full probes up to 4096 MiB" if claim is None else ""
        pytest.skip(f"{model.name} on {edgeai_device.name}: no tenant fitted in {budget_from} of "
                    f"{cap.budget_bytes / MIB:.0f} MiB (one tenant with its runtime took {footprints[0] / MIB:.0f} "
                    f"MiB){more}")

    edgeai_claims.check("min_tenants", result.observed_max, model.name, record)
    edgeai_claims.check("max_tenants_prediction_error", result.prediction_error, model.name, record)
    edgeai_claims.assert_met()


def test_concurrent_models(edgeai_device, edgeai_model, edgeai_bench, edgeai_session):
    """Different models at once on one device, against each alone (Hao et al.'s CME)."""
    models = [edgeai_model(name) for name in TOGETHER_MODELS]
    result = edgeai_bench.call(run_concurrent_models, models, edgeai_device, ThreadRunner(),
                               window_for(edgeai_session.profile))
    record = edgeai_bench.new_record(None, {"name": "concurrent_models", "models": list(TOGETHER_MODELS)})
    record.model = {"name": "+".join(TOGETHER_MODELS), "source": "zoo", "members": [m.describe() for m in models]}
    record.extra["concurrent_models"] = result.to_dict()
    if not result.ok:
        reasons = "; ".join(s.reason for s in [*result.alone, result.together] if not s.ok)
        edgeai_bench.fail_record(record, reasons)
        pytest.fail(f"concurrent models on {edgeai_device.name}: {reasons}", pytrace=False)
    record.metrics.update(models_metrics(result))
    edgeai_bench.save(record)


def _placement(bench, profile, model, devices, others, round=0):
    """Each device alone, then all behind the shortest-queue dispatcher (sessions loaded in the study), in the
    reverse order on odd rounds (A B, B A, ...), holding the locks of the ``others`` (attached devices besides
    the bench's) too."""
    return bench.call(measure_placement, model, devices, profile.min_duration_s, profile.timeout_s,
                      round % 2 == 1, also_lock=others)


def test_dynamic_placement(edgeai_device, edgeai_model, edgeai_bench, edgeai_claims, edgeai_session):
    """Shortest-queue dispatch over several devices against the best single device."""
    model = edgeai_model(PLACEMENT_MODEL)
    others = [d for d in edgeai_session.devices
              if d.name != edgeai_device.name and edgeai_session.availability(d).attached]
    devices = [edgeai_device, *others] if others else split_device(edgeai_device, 2)
    result = _placement(edgeai_bench, edgeai_session.profile, model, devices, others)
    record = edgeai_bench.new_record(model, {"name": "dynamic_placement", "devices": [d.name for d in devices],
                                             "split": not others})
    record.extra["placement"] = result.to_dict()
    record.extra["devices"] = [d.describe() for d in devices]
    record.metrics.update(placement_metrics(result))
    errors = {**result.together.errors, **{k: v for r in result.alone for k, v in r.errors.items()}}
    if errors:
        edgeai_bench.fail_record(record, "; ".join(f"{k}: {v}" for k, v in errors.items()))
        pytest.fail(f"placement: {errors}", pytrace=False)
    edgeai_bench.save(record)
    _check_placement(edgeai_claims, edgeai_bench, edgeai_session.profile, model, devices, others, result, record)
    edgeai_claims.assert_met()


def _check_placement(claims, bench, profile, model, devices, others, first, record):
    """min_placement_speedup on rounds: each round times every device alone and all together in one study (side
    by side, the order alternating between rounds), and the interval comes from the per-round ratios; more
    rounds while it is inconclusive."""
    if claims.spec("min_placement_speedup", model.name) is None:
        return
    results = [first]

    def estimate() -> Estimate:
        est = ratio_estimate([r.together.throughput_ips for r in results],
                             [r.best_single.throughput_ips for r in results], "dispatch / best single device")
        record.metrics["placement_speedup_rounds"] = estimate_metric(
            est, "x", "dispatch over the devices / the best single device, per round (alone and together, the order "
            "alternating between rounds)")
        bench.save(record)
        return est

    def more() -> Estimate:
        results.append(_placement(bench, profile, model, devices, others, len(results)))
        return estimate()

    while len(results) < profile.rounds:
        results.append(_placement(bench, profile, model, devices, others, len(results)))
    claims.check("min_placement_speedup", estimate(), model.name, record, more=more)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_loadgen(edgeai_device, edgeai_model, edgeai_bench, edgeai_session, scenario, request):
    """MLPerf LoadGen's scenarios on the device; its verdict and summary go into the record."""
    pytest.importorskip("mlperf_loadgen", reason="MLPerf LoadGen is not installed: pip install "
                                                 "'pytest-edgeai[loadgen]'")
    model = edgeai_model(LOADGEN_MODEL)
    profile = edgeai_session.profile
    outdir = edgeai_session.store.path / "loadgen" / _slug(request.node.name)
    server = ServerPlan(SERVER_BOUND_LATENCIES, SERVER_SEARCH_RANGE, plan_for(profile).server_search_steps)
    # LoadGen stops a run at max_duration_s: half the time limit, so a slow run ends before it counts as a hang
    study = edgeai_bench.call(loadgen_study, model, edgeai_device, scenario, profile, edgeai_session.timeout_s / 2,
                              outdir, server, events={"on_run": lambda path: None})  # each run: a sign of life
    record = edgeai_bench.new_record(model, {"name": f"loadgen_{scenario}", "loadgen": study.settings.to_dict()})
    record.backend["settings"] = study.session_settings
    result, search = study.result, study.search
    if search is not None:
        record.extra["server_search"] = search.rows()
        top_met = search.best is search.tries[0]
        record.metrics["server_max_qps"] = metric(
            search.best.settings.server_target_qps if search.best else None, "queries/s",
            f"highest target QPS whose p99 stayed under {search.bound_ms:.2f} ms, bisection over "
            f"{len(search.tries)} LoadGen Server runs" + (" (the top of the range met the bound: the "
                                                          "maximum may be higher)" if top_met else ""),
            method="derived")  # the end of a search over measured runs, not a reading
        if top_met:
            record.warnings.append("Server search: the top of the range met the latency bound")
    record.metrics.update(result.metrics())
    record.extra["loadgen"] = result.to_dict()
    record.extra["loadgen_verdict"] = result.verdict
    assert result.verdict in ("VALID", "INVALID"), f"LoadGen wrote no verdict; summary fields: {result.fields}"
    if result.verdict != "VALID":
        unmet = [k for k, v in result.fields.items() if k.endswith("satisfied") and v.upper().startswith("NO")]
        record.warnings.append(f"LoadGen verdict {result.verdict} (not met: {', '.join(unmet) or 'see summary'}); "
                               f"profile {profile.name} runs {profile.min_duration_s:g} s, official runs 600 s")
    edgeai_bench.save(record)


@pytest.mark.edgetpu
def test_edgetpu_model_switch(edgeai_device, edgeai_model, edgeai_bench, edgeai_session):
    """The cost of switching between models: separately compiled, and co-compiled where configured."""
    rounds = plan_for(edgeai_session.profile).switch_rounds
    groups: dict[str, list[str]] = {}
    for workload in edgeai_session.workloads:
        if "co_compiled" in workload.params:
            groups.setdefault(str(workload.params["co_compiled"]), []).append(workload.name)
    sets = {"separately compiled": list(TOGETHER_MODELS),
            **{f"co-compiled ({g})": names for g, names in groups.items() if len(names) > 1}}
    for label, names in sets.items():
        models = [edgeai_model(n) for n in names]
        result = edgeai_bench.call(switching_study, models, edgeai_device, rounds, label,
                                   label.startswith("co-compiled"))
        record = edgeai_bench.new_record(None, {"name": "model_switch", "label": label, "models": names})
        record.model = {"name": "+".join(names), "members": [m.describe() for m in models]}
        record.metrics.update(switching_metrics(result))
        record.extra["switching"] = result.to_dict()
        edgeai_bench.save(record)
        assert set(result.alone_ms) == set(result.alternating_ms) == {m.name for m in models}, \
            f"{label}: not every model was timed both alone and alternating"


@pytest.mark.edgetpu
def test_edgetpu_cluster(edgeai_device, edgeai_model, edgeai_bench, edgeai_claims, edgeai_session):
    """Several EdgeTPUs as one cluster behind the shortest-queue dispatcher."""
    tpus = [d for d in edgeai_session.devices if d.kind == "edgetpu" and edgeai_session.availability(d).attached]
    if len(tpus) < 2:
        pytest.skip(f"a cluster needs at least 2 attached EdgeTPUs; attached: {[d.name for d in tpus]}")
    if edgeai_device.name != tpus[0].name:
        pytest.skip(f"the cluster is measured once, from {tpus[0].name}")
    model = edgeai_model(PLACEMENT_MODEL)
    result = _placement(edgeai_bench, edgeai_session.profile, model, tpus, tpus[1:])
    record = edgeai_bench.new_record(model, {"name": "edgetpu_cluster", "devices": [d.name for d in tpus]})
    record.metrics.update(placement_metrics(result))
    record.extra["placement"] = result.to_dict()
    edgeai_bench.save(record)
    _check_placement(edgeai_claims, edgeai_bench, edgeai_session.profile, model, tpus, tpus[1:], result, record)
    edgeai_claims.assert_met()
