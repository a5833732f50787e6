"""`python -m harness.toxiproxy_server`: a drop-in for `toxiproxy-server`'s common flags."""

from __future__ import annotations

import argparse
import pathlib

from harness.toxiproxy_server.server import serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m harness.toxiproxy_server",
        description="Toxiproxy-compatible server (HTTP API on --host:--port).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="API address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8474, help="API port (default 8474)")
    parser.add_argument("--config", type=pathlib.Path, help="JSON array of proxies to populate")
    parser.add_argument("--seed", type=int, help="seed for toxicity, jitter and slicer randomness")
    parser.add_argument("--proxy-metrics", action="store_true", help="serve /metrics")
    args = parser.parse_args(argv)
    serve(args.host, args.port, args.config, args.seed, args.proxy_metrics)


if __name__ == "__main__":
    main()
