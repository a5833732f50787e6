"""Embedded Toxiproxy-compatible server: the Toxiproxy 2.12 HTTP API, every toxic, TCP proxies.

`server.serve()` runs it standalone (also `python -m harness.toxiproxy_server`);
`server.ToxiproxyServer` embeds it in a running event loop.
"""
