"""Reference router: the decide service the harness tests against (JetStream consumer, POST
/decide, usage events)."""

__version__ = "0.1.0"
