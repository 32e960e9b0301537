"""What does an inference cost in joules, per watt, per dollar?

Offline throughput at batch 1 is measured in rounds, the device's power meter running over exactly
each timed loop (the harness starts and stops it at the loop's edges), after an idle baseline read
once the model is warm, when the meter asks for one. The figures a claim is judged on are the
rounds' mean with an interval from their spread. The first round is a full profile window, since a
slow meter (a 2 Hz sampled supply) needs one; the later rounds share the window out like every other
suite's rounds when the first reading shows a sensor fast enough for the shorter window
(``metered_round_profile``: RAPL's and NVML's energy counters), else they stay full. Where the first
round could not read energy (no meter, or one not readable here) the other rounds would only repeat
the throughput suite's batch-1 figure, so there is one round, and more only while a claim on
throughput per dollar asks for them. A claim against another device (per dollar, per watt) measures
both side by side in interleaved rounds when that device is selected and attached here; otherwise it
reads that device's latest result from the run store. The throughput is recorded whatever the meter
does; with no meter (source "none") or one that is not available here, the energy figures are
skipped with the reason. Estimated readings never pass a claim unless the claim allows estimates.
"""

from dataclasses import asdict

import pytest

from pytest_edgeai import (
    Interleaved,
    estimate_metric,
    find_against,
    judge_ratio,
    list_runs,
    load_run,
    metered_round_profile,
    rounds_estimate,
    rounds_ratio,
    seeded_twin,
    unchecked,
)

PER_USD = "inferences_per_s_per_usd"
PER_W = "inferences_per_s_per_w"
RATIOS = {"min_ips_per_usd_ratio": PER_USD, "min_ips_per_w_ratio": PER_W}
FIGURES = {"joules_per_inference": ("J", "max_joules_per_inference"),
           PER_W: ("inferences/s/W", "min_inferences_per_s_per_w"),
           PER_USD: ("inferences/s/USD", "min_inferences_per_s_per_usd")}


def _beside(session, bench, device_name):
    """A bench on the device a ratio claim names, when it is selected and attached here; else None."""
    for device in session.devices:
        if device.name == device_name and device.name != bench.device.name and session.availability(device).attached:
            return bench.beside(device, asdict(session.availability(device)))
    return None


def _earlier_runs(session):
    """(run directory, records) of earlier runs in the store, newest first, read only when needed."""
    if session.settings.report_dir is None:
        return
    current = session.store.path.resolve() if session.store else None
    for path in reversed(list_runs(session.settings.report_dir)):
        if path.resolve() != current:
            yield str(path), load_run(path).records


def test_offline_energy(edgeai_device, edgeai_workload, edgeai_bench, edgeai_claims, edgeai_session):
    name = edgeai_workload.name
    if edgeai_session.profile.name != "full" and (twin := seeded_twin(name)):
        pytest.skip(f"{name} runs {twin}'s graph with trained weights: it costs {twin}'s energy, measured as {twin} "
                    f"it; metered on its own at --edgeai-profile full")
    ratio_specs = {c: s for c in RATIOS if (s := edgeai_claims.spec(c, name)) is not None}
    against = next((s.extras.get("against") for s in ratio_specs.values() if s.extras.get("against")), None)
    other = _beside(edgeai_session, edgeai_bench, against) if against else None
    try:
        reason = _measure_and_judge(edgeai_workload, edgeai_bench, other, edgeai_claims, edgeai_session, ratio_specs)
    finally:
        if other is not None:
            other.close()
    edgeai_claims.assert_met()
    if reason:
        pytest.skip(reason)


def _measure_and_judge(model, bench, other, claims, session, ratio_specs):
    """Rounds of metered windows (side by side with ``other`` when given), the pooled figures, the verdicts;
    returns why energy was not measured, or None."""
    name, device = model.name, bench.device.name

    def window(r: int):
        """Round 0 a full window; later ones shorter when the first round's readings show fast sensors."""
        periods = [rs[0].extra["energy"].get("update_period_s") for rs in series.results if rs and r > 0]
        return metered_round_profile(session.profile, periods)

    arms = [lambda r: bench.offline(model, batch=1, metered=True, profile=window(r), round=r)]
    if other is not None:
        arms.append(lambda r: other.offline(model, batch=1, metered=True, profile=window(r), round=r))
    series = Interleaved(arms)
    series.more(1)
    if all(rs[0].extra["energy"]["measured"] for rs in series.results):
        series.more(session.profile.rounds - 1)
    mine = series.results[0]
    measured = all(r.extra["energy"]["measured"] for r in mine)
    reason = next((r.extra["energy"].get("reason") for r in mine if not r.extra["energy"]["measured"]), None)
    estimated = any(r.extra["energy"].get("estimated") for r in mine)
    pooled = bench.derived(model, "energy_rounds", {}, inputs=mine, batch=1)

    def figure(metric: str):
        return rounds_estimate(mine, metric, f"{metric} per round")

    def update() -> None:
        for metric, (unit, _) in FIGURES.items():
            est = figure(metric)
            if est.rounds:
                method = "derived" if metric == PER_USD else ("estimated" if estimated else "measured")
                pooled.metrics[metric] = estimate_metric(est, unit,
                                                         f"geometric mean of {est.rounds} metered rounds' {metric}",
                                                         method, windows=[r.metric(metric) for r in mine])
        pooled.extra["derived_from"] = [r.id for r in mine]
        bench.save(pooled)

    def more(then):
        def again():
            series.more(1)
            update()
            return then()
        return again

    update()
    for metric, (_, claim) in FIGURES.items():
        spec = claims.spec(claim, name)
        if spec is None:
            continue
        if metric != PER_USD and not measured:
            claims.add(unchecked(spec, device, name, f"{claim} for {name}: {reason}"), pooled)
        else:
            claims.check(claim, figure(metric), name, pooled, estimated=estimated and metric != PER_USD,
                         more=more(lambda metric=metric: figure(metric)))
    for claim, spec in ratio_specs.items():
        metric = RATIOS[claim]
        if metric != PER_USD and not measured:
            claims.add(unchecked(spec, device, name, f"{claim} for {name}: {reason}"), pooled)
        elif other is not None and spec.extras.get("against") == other.device.name:
            def side_by_side(metric=metric):
                return rounds_ratio(mine, series.results[1], metric,
                                    f"{metric} over {other.device.name}'s, side by side on this host")
            either = estimated or any(r.extra["energy"].get("estimated") for r in series.results[1])
            claims.check(claim, side_by_side(), name, pooled, estimated=either and metric != PER_USD,
                         more=more(side_by_side))
        else:
            found = find_against(session.records, _earlier_runs(session), spec.extras.get("against"), name, metric)
            mine_est = figure(metric) if pooled.metrics.get(metric) else None
            claims.add(judge_ratio(spec, device, name, mine_est, found, metric,
                                   estimated=estimated and metric != PER_USD), pooled)
    return None if measured else reason
