"""Listen/upstream address handling: Go-style `host:port` parsing, resolution and formatting.

The API stores a proxy's listen address in resolved form and compares requests against it, so
`localhost:N` and `127.0.0.1:N` count as the same address (no restart), as in Toxiproxy 2.12.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass

from harness.toxiproxy_server.errors import ApiError


@dataclass(frozen=True)
class Endpoint:
    """A resolved address: `ip` is empty for "all interfaces"."""

    ip: str
    port: int
    family: int

    def __str__(self) -> str:
        return format_address(self.ip, self.port)


def format_address(ip: str, port: int) -> str:
    """`ip:port`, with brackets around IPv6 literals, as Go prints a TCPAddr."""
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def split_host_port(address: str) -> tuple[str, str]:
    """Go's net.SplitHostPort, with its error wording."""
    if address.startswith("["):
        end = address.find("]")
        if end < 0:
            raise ApiError(500, f"address {address}: missing ']' in address")
        host, rest = address[1:end], address[end + 1 :]
        if not rest.startswith(":"):
            raise ApiError(500, f"address {address}: missing port in address")
        return host, rest[1:]
    if ":" not in address:
        raise ApiError(500, f"address {address}: missing port in address")
    host, _, port = address.rpartition(":")
    if ":" in host:
        raise ApiError(500, f"address {address}: too many colons in address")
    return host, port


def parse_port(port: str, address: str) -> int:
    """A port number or service name, as Go accepts it."""
    if port.isdigit():
        value = int(port)
        if value > 65535:
            raise ApiError(500, f"address {address}: invalid port")
        return value
    if port == "":
        return 0
    try:
        return socket.getservbyname(port, "tcp")
    except OSError:
        raise ApiError(500, f"lookup tcp/{port}: unknown port") from None


async def resolve(address: str) -> Endpoint:
    """Resolve a listen address, preferring IPv4 like Go's ResolveTCPAddr ("" means ":0")."""
    if address == "":
        return Endpoint("", 0, socket.AF_UNSPEC)
    host, port_text = split_host_port(address)
    port = parse_port(port_text, address)
    if host == "":
        return Endpoint("", port, socket.AF_UNSPEC)
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise ApiError(500, f"lookup {host}: no such host") from None
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    family, _, _, _, sockaddr = infos[0]
    return Endpoint(sockaddr[0], port, family)


async def resolved_string(address: str) -> str:
    """The resolved form used for the "differs" check (`:N` when no host is given)."""
    endpoint = await resolve(address)
    return f":{endpoint.port}" if endpoint.ip == "" else str(endpoint)


def bind_listener(endpoint: Endpoint) -> socket.socket:
    """A listening socket; SO_REUSEADDR so a re-enable binds the same port at once."""
    if endpoint.ip == "":
        family, ip = socket.AF_INET6, "::"
    else:
        family, ip = endpoint.family, endpoint.ip
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6 and ip == "::":
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((ip, endpoint.port))
        sock.listen(1024)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        reason = (exc.strerror or str(exc)).lower()
        raise ApiError(500, f"listen tcp {endpoint}: bind: {reason}") from None
    return sock


def bound_address(sock: socket.socket) -> str:
    """What a listener actually bound, e.g. `127.0.0.1:43215` for `localhost:0`."""
    name = sock.getsockname()
    return format_address(name[0], name[1])
