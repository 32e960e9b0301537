"""Running the suites in a lab: isolation from crashing runtimes, device locks, clocks and heat,
runs shared between pytest-xdist workers (local or over SSH), devices lost mid-run.

Nothing here imports pytest: the plugin's hooks call into these modules.
"""
