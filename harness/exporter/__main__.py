"""`python -m harness.exporter --server NAME=URL ...`: poll the servers, serve /metrics."""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Iterator, Sequence

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from harness.exporter.families import families
from harness.exporter.poller import Poller


class NatsCollector(Collector):
    """Serves the latest snapshot of every server on each scrape."""

    def __init__(self, pollers: Sequence[Poller]):
        self.pollers = list(pollers)

    def collect(self) -> Iterator[Metric]:
        yield from families(p.snapshot() for p in self.pollers)


def _server(text: str) -> tuple[str, str]:
    name, sep, url = text.partition("=")
    if not sep or not name or not url.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(f"expected NAME=http://host:port, got {text!r}")
    return name, url


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m harness.exporter", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to serve /metrics on")
    parser.add_argument("--port", type=int, default=7777, help="port to serve /metrics on")
    parser.add_argument(
        "--server",
        type=_server,
        action="append",
        required=True,
        help="NAME=MONITOR_URL of a NATS server (NAME is its server_id label); repeatable",
    )
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between polls")
    args = parser.parse_args(argv)
    pollers = [Poller(name, url, args.interval) for name, url in args.server]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NatsCollector(pollers))
    for poller in pollers:
        poller.start()
    start_http_server(args.port, addr=args.host, registry=registry)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    print(f"nats exporter serving http://{args.host}:{args.port}/metrics", flush=True)
    done.wait()
    for poller in pollers:
        poller.stop()


if __name__ == "__main__":
    main()
