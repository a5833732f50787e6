"""Embedded Toxiproxy-compatible server: the Toxiproxy 2.12 HTTP API, every toxic, TCP proxies.

Extensions beyond real Toxiproxy (layer 4 only): the NATS-protocol-aware toxics `nats_drop` and
`nats_delay`, which drop or delay chosen NATS frames (JetStream acks, NAKs, messages by subject)
with a per-frame toxicity, and report `stats` in their read-back. Scenarios using them must run
against this server. See README.md.

`server.serve()` runs it standalone (also `python -m harness.toxiproxy_server`);
`server.ToxiproxyServer` embeds it in a running event loop.
"""
