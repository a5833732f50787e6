"""Port allocation: distinct, really free, and reported taken once something listens."""

import socket

from harness.stack.ports import free_port, free_ports, port_is_free


def test_ports_are_distinct_and_bindable() -> None:
    ports = free_ports(50)
    assert len(set(ports)) == 50
    for port in ports[:10]:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_port_in_use_is_not_free() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        taken = sock.getsockname()[1]
        assert not port_is_free(taken)
    assert port_is_free(taken)


def test_free_port_never_repeats_a_handed_out_port() -> None:
    seen = {free_port() for _ in range(200)}
    assert len(seen) == 200
