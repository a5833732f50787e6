"""Checks: verifiable expectations observed during a run (metrics, alerts, delivery, dashboards)."""
