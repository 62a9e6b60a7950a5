"""The pieces a followed log is relayed with: the client check, the pump, the slots."""

from __future__ import annotations

import socket
import threading

from orion.api.streaming import FollowSlots, Pump, client_gone


def test_a_client_is_gone_once_its_socket_turns_readable():
    server_side, client_side = socket.socketpair()
    closing = threading.Event()
    gone = client_gone({"gunicorn.socket": server_side}, closing)
    assert not gone()  # a client waiting for the rest of the answer sends nothing
    client_side.close()
    assert gone()
    server_side.close()
    assert gone()  # a socket closed under us counts as gone too
    assert not client_gone({})()  # no socket to look at (a test client): never gone...
    closing.set()
    assert client_gone({}, closing)()  # ...until the agent shuts down


def test_a_pump_relays_until_the_source_ends_and_close_ends_a_blocked_read():
    fed: list[bytes] = [b"a", b"", b"b"]
    pump = Pump(iter(fed), lambda: None, name="t")
    assert list(pump.relay(lambda: False)) == [b"a", b"b"]  # empty chunks are not passed on

    release = threading.Event()
    closed = threading.Event()

    def blocking():
        yield b"first"
        release.wait()  # a quiet container: the read blocks until the source is closed

    def close():
        closed.set()
        release.set()

    pump = Pump(blocking(), close, name="t")
    relay = pump.relay(lambda: False)
    assert next(relay) == b"first"
    pump.close()
    pump.close()  # idempotent
    assert closed.is_set()


def test_a_relay_gives_up_when_its_client_leaves():
    quiet = threading.Event()

    def silent():
        quiet.wait()  # nothing is ever written
        yield from ()

    pump = Pump(silent(), quiet.set, name="t")
    checks = []
    assert list(pump.relay(lambda: checks.append(1) or len(checks) > 1)) == []  # gone at the second look
    pump.close()


def test_slots_bound_follows_and_a_release_counts_once():
    slots = FollowSlots(2)
    a, b = slots.take(), slots.take()
    assert a and b and slots.take() is None
    a()
    a()  # a second release of the same slot frees nothing more
    c = slots.take()
    assert c is not None and slots.take() is None
    assert FollowSlots(0).take() is None
