"""Nothing a peer sends can raise out of the transport: it is dropped and counted."""

from __future__ import annotations

import socket
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orion.gossip import codec
from orion.gossip.config import GossipConfig
from orion.gossip.messages import Ack, Ping
from orion.gossip.transport import GossipNode

DROP_KEYS = ("dropped_malformed", "dropped_oversized", "dropped_unauthenticated", "messages_received")


class RecordingNode(GossipNode):
    """Real sockets in, but replies are recorded instead of sent: a fuzzed
    address must never make us send traffic anywhere."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sent = []

    def _send(self, out):
        self.sent.append(out)


@pytest.fixture(scope="module")
def node():
    n = RecordingNode(GossipConfig.fast(0.1), "fuzz", ("127.0.0.1", 0), key=None)
    n.start()
    yield n
    n.stop()


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=3000))
def test_random_datagrams_are_dropped_and_counted_never_raised(node, data):
    before = sum(node.counters[k] for k in DROP_KEYS)
    node.handle_packet(data, ("127.0.0.1", 9), max_size=node.config.udp_buffer_size)
    after = sum(node.counters[k] for k in DROP_KEYS)
    assert after == before + 1


def test_a_valid_ping_is_answered_and_counted(node):
    node.handle_packet(codec.encode(Ping(3, "fuzz", "x")), ("127.0.0.1", 9))
    assert any(o.msg == Ack(3) or getattr(o.msg, "parts", (None,))[0] == Ack(3) for o in node.sent)


def test_garbage_over_real_udp_and_tcp_leaves_the_loop_running(node):
    before = node.counters["dropped_malformed"] + node.counters["dropped_oversized"]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for payload in (b"", b"\x01", b"\x01\x00\xc1", b"\xff" * 1500, b"\x01\x00" + b"\x91" * 500):
            s.sendto(payload, node.addr)
    with socket.create_connection(node.addr) as c:
        c.sendall(b"\xff\xff\xff\xff")  # absurd frame length
    with socket.create_connection(node.addr) as c:
        c.sendall(b"\x00\x00\x00\x05\x01\x00")  # closed mid-frame
    deadline = time.monotonic() + 5
    while node.counters["dropped_malformed"] + node.counters["dropped_oversized"] < before + 6:
        assert time.monotonic() < deadline, dict(node.counters)
        time.sleep(0.01)
    assert node._thread.is_alive()


def test_with_a_key_plaintext_packets_are_counted_as_unauthenticated():
    n = RecordingNode(GossipConfig.fast(0.1), "sealed", ("127.0.0.1", 0), key=codec.Keyring.generate())
    n.core = None
    n.handle_packet(codec.encode(Ping(1, "sealed", "x")), ("127.0.0.1", 9))
    assert n.counters["dropped_unauthenticated"] == 1
    assert n.sent == []
