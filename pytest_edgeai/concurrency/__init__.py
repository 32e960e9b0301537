"""Concurrency and multi-tenancy: tenants on one device, concurrent models, dynamic placement,
memory-bounded capacity, EdgeTPU model switching, MLPerf LoadGen scenarios.

The way in for the suite: everything it uses is here. Inside: ``tenants`` (N tenants over one window, as
threads or processes; thread shares; fairness), ``studies`` (the plan per profile, the tenant sweep,
concurrent models, model switching), ``capacity`` (memory probes; how many tenants fit), ``placement``
(shortest-queue dispatch over devices), ``loadgen`` (MLPerf LoadGen scenarios). Each module turns its
results into the record's metrics. Nothing here imports pytest.
"""

from .capacity import MIB, CapacityPlan, available_bytes, capacity_metrics, probe_capacity
from .loadgen import SCENARIOS, ServerPlan, loadgen_study
from .placement import measure_placement, placement_metrics
from .studies import (
    models_metrics,
    plan_for,
    run_concurrent_models,
    run_sweep,
    run_tenants,
    switching_metrics,
    switching_study,
    window_for,
    worst_p90_rounds,
)
from .tenants import ProcessRunner, ThreadRunner, plan_threads, split_device, step_metrics

__all__ = ["MIB", "SCENARIOS", "CapacityPlan", "ProcessRunner", "ServerPlan", "ThreadRunner", "available_bytes",
           "capacity_metrics", "loadgen_study", "measure_placement", "models_metrics", "placement_metrics", "plan_for",
           "plan_threads", "probe_capacity", "run_concurrent_models", "run_sweep", "run_tenants", "split_device",
           "step_metrics", "switching_metrics", "switching_study", "window_for", "worst_p90_rounds"]
