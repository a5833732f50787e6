"""Checks: verifiable expectations observed during a run, one module per kind (metrics, alerts,
dashboards, boundary, delivery, scrape, data loss), listed in `harness.checks.registry`."""
