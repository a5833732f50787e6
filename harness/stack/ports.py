"""Free loopback port allocation that never hands out the same port twice in one process.

Several processes that each start stacks at once (the broken runs of tests/broken/) cannot see
each other's choices: the kernel may hand two of them the same port before either component
binds it. `HARNESS_PORT_RANGE=LOW-HIGH` confines a process to its own range, outside the
kernel's ephemeral range, so processes given disjoint ranges never collide.
"""

from __future__ import annotations

import os
import socket
import threading

PORT_RANGE_ENV = "HARNESS_PORT_RANGE"

_lock = threading.Lock()
_handed_out: set[int] = set()


def port_range() -> range | None:
    """The ports `HARNESS_PORT_RANGE` (LOW-HIGH, inclusive) allows, or None when it is unset."""
    value = os.environ.get(PORT_RANGE_ENV, "").strip()
    if not value:
        return None
    low, _, high = value.partition("-")
    try:
        span = range(int(low), int(high) + 1)
    except ValueError:
        span = range(0)
    if not span or span.start < 1024 or span.stop > 65536:
        raise ValueError(f"{PORT_RANGE_ENV}={value!r}: expected LOW-HIGH within 1024-65535")
    return span


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on host:port and it can be bound right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel just proved free, not handed out before by this process.

    The kernel may give the same ephemeral port to two callers between a bind and the
    component's own bind; remembering what we handed out removes that race inside one run.
    """
    with _lock:
        span = port_range()
        if span is not None:
            for port in span:
                if port not in _handed_out and port_is_free(port, host):
                    _handed_out.add(port)
                    return port
            raise RuntimeError(f"no free port left in {PORT_RANGE_ENV} {span.start}-{span[-1]}")
        for _ in range(64):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind((host, 0))
                port = sock.getsockname()[1]
            if port not in _handed_out:
                _handed_out.add(port)
                return port
    raise RuntimeError(f"no free port found on {host} after 64 tries")


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` distinct free ports."""
    return [free_port(host) for _ in range(count)]
