"""The characterisation suites. Fixtures come from the pytest-edgeai plugin (pytest_edgeai.plugin)."""
