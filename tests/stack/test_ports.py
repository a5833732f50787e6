"""Port allocation: distinct, really free, and reported taken once something listens."""

import socket

import pytest

from harness.stack import ports
from harness.stack.ports import PORT_RANGE_ENV, free_port, free_ports, port_is_free


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


def test_a_port_range_confines_the_ports_handed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        span = range(busy - 3, busy + 3)
        monkeypatch.setenv(PORT_RANGE_ENV, f"{span.start}-{span[-1]}")
        monkeypatch.setattr(ports, "_handed_out", set())
        free = [p for p in span if port_is_free(p)]
        assert busy not in free
        assert free_ports(len(free)) == free  # in order, each once, never the busy one
        with pytest.raises(RuntimeError, match=f"no free port left in {PORT_RANGE_ENV}"):
            free_port()


@pytest.mark.parametrize("value", ["20000", "a-b", "30000-20000", "80-90", "65000-70000"])
def test_a_bad_port_range_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(PORT_RANGE_ENV, value)
    with pytest.raises(ValueError, match=f"{PORT_RANGE_ENV}={value!r}: expected LOW-HIGH"):
        free_port()
