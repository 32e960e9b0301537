"""Concurrency and multi-tenancy: tenants on one device, concurrent models, dynamic placement,
memory-bounded capacity, EdgeTPU model switching, MLPerf LoadGen scenarios.

Nothing here imports pytest; the suite in suites/test_concurrency.py measures with these and
records the results.
"""
