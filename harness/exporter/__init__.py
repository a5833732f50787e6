"""The embedded NATS exporter: polls each server's monitoring endpoints and serves them to
Prometheus under the official prometheus-nats-exporter's metric names (`python -m
harness.exporter`)."""
