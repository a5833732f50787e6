"""Chaos harness for NATS JetStream systems."""

__version__ = "0.1.0"
