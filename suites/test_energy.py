"""What does an inference cost in joules, per watt, per dollar?

Offline throughput at batch 1 is measured with the device's power meter running over exactly the
timed loop (the harness starts and stops it at the loop's edges), after an idle baseline when the
meter asks for one. The throughput is recorded whatever the meter does; with no meter (source
"none") or one that is not available here, the energy figures are skipped with the reason. Estimated readings never
pass a claim unless the claim allows estimates.
"""

import pytest

from pytest_edgeai import find_against, judge_ratio, skipped

PER_USD = "inferences_per_s_per_usd"


def test_offline_energy(edgeai_device, edgeai_workload, edgeai_bench, edgeai_claims, edgeai_session):
    record = edgeai_bench.offline(edgeai_workload, batch=1, metered=True)
    energy = record.extra["energy"]
    reason = energy.get("reason")

    model = edgeai_workload.name
    estimated = bool(energy.get("estimated"))
    for name, metric in (("max_joules_per_inference", "joules_per_inference"),
                         ("min_inferences_per_s_per_w", "inferences_per_s_per_w")):
        if not energy["measured"] and edgeai_claims.spec(name, model) is not None:
            result = skipped(edgeai_claims.spec(name, model), edgeai_device.name, model,
                             f"{name} for {model}: {reason}")
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
    if not energy["measured"]:
        pytest.skip(reason)

