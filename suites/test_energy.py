"""What does an inference cost in joules, per watt, per dollar?

Offline throughput at batch 1 is measured with the device's power meter running over the same
window (cropped to the timed loop), after an idle baseline when the meter asks for one. The
throughput is recorded whatever the meter does; with no meter (source "none") or one that is
not available here, the energy figures are skipped with the reason. Estimated readings never
pass a claim unless the claim allows estimates.
"""

import pytest

from pytest_edgeai.energy import idle_seconds, record_energy
from pytest_edgeai.energy.compare import find_against, judge_ratio, skipped
from pytest_edgeai.energy.window import align_to_loop, open_meter, run_metered

PER_USD = "inferences_per_s_per_usd"


def test_offline_energy(edgeai_device, edgeai_workload, edgeai_bench, edgeai_claims, edgeai_session):
    meter, reason = open_meter(edgeai_device)
    try:
        metered = run_metered(meter, lambda: edgeai_bench.offline(edgeai_workload, batch=1),
                              idle_s=idle_seconds(edgeai_device), reason=reason)
    finally:
        if meter is not None:
            meter.close()
    record = metered.result
    reading = align_to_loop(metered, record.extra["wall_s"])
    batch = record.scenario["batch"]
    queries = len(record.samples["latency_ns"])
    record_energy(record, reading, metered.reason, inferences=queries * batch, queries=queries,
                  throughput_ips=record.metric("throughput_ips"), price_usd=edgeai_device.price_usd)
    edgeai_bench.save(record)

    model = edgeai_workload.name
    estimated = reading is not None and reading.estimated
    for name, metric in (("max_joules_per_inference", "joules_per_inference"),
                         ("min_inferences_per_s_per_w", "inferences_per_s_per_w")):
        if reading is None and edgeai_claims.spec(name, model) is not None:
            result = skipped(edgeai_claims.spec(name, model), edgeai_device.name, model,
                             f"{name} for {model}: {metered.reason}")
            edgeai_claims.add(result, record)
        else:
            edgeai_claims.check(name, record.metric(metric), model, record, estimated=estimated)
    edgeai_claims.check("min_inferences_per_s_per_usd", record.metric(PER_USD), model, record)
    spec = edgeai_claims.spec("min_ips_per_usd_ratio", model)
    if spec is not None:
        store = edgeai_session.store
        other = find_against(edgeai_session.records, edgeai_session.settings.report_dir,
                             store.path if store else None, spec.extras.get("against"), model, PER_USD)
        result = judge_ratio(spec, edgeai_device.name, model, record.metric(PER_USD), other, PER_USD)
        edgeai_claims.add(result, record)
    edgeai_claims.assert_met()
    if reading is None:
        pytest.skip(metered.reason)

