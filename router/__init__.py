"""Reference router: the JetStream decide service the harness tests against."""

__version__ = "0.1.0"
