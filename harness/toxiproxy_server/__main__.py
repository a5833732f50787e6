"""`python -m harness.toxiproxy_server`: a drop-in for `toxiproxy-server`'s common flags."""

from __future__ import annotations

import argparse
import pathlib
import sys

import structlog

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
    try:
        serve(args.host, args.port, args.config, args.seed, args.proxy_metrics)
    except OSError as exc:  # e.g. the API port is taken: say so in one line, exit non-zero
        structlog.get_logger("toxiproxy.server").error(
            "api_bind_failed", host=args.host, port=args.port, error=str(exc)
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
