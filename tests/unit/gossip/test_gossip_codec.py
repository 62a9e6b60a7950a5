"""The wire format: every message survives a round trip; anything else is refused, never raised."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orion.gossip import codec
from orion.gossip.codec import DecodeError, Keyring, Unauthenticated, decode, encode
from orion.gossip.messages import (
    Ack,
    Alive,
    Compound,
    Dead,
    IndirectPing,
    Nack,
    NodeState,
    Ping,
    PushPull,
    Suspect,
)

ALL = [
    Ping(1, "n2", "n1"),
    IndirectPing(2, "n3", ("127.0.0.1", 7947), True, "n1"),
    Ack(3),
    Nack(4),
    Alive(5, "n1", ("10.1.2.3", 7946), {"id": "n1", "labels": {"zone": "a"}, "cap": [1, 2]}),
    Suspect(6, "n2", "n1"),
    Dead(7, "n2", "n2"),
    PushPull("n1", ("127.0.0.1", 1), True, False, (NodeState("n2", ("h", 2), {}, 9, "suspect"),)),
    PushPull("n1", ("127.0.0.1", 1), False, False, (), bytes(range(16))),  # digest only
    Compound((Ping(1, "n2", "n1"), Suspect(6, "n2", "n1"))),
]


@pytest.mark.parametrize("msg", ALL, ids=lambda m: type(m).__name__)
def test_every_message_round_trips_plain_and_sealed(msg):
    assert decode(encode(msg)) == msg
    ring = Keyring((Keyring.generate(),))
    assert decode(encode(msg, ring), ring) == msg


def test_a_packet_from_another_protocol_version_is_refused():
    data = bytearray(encode(Ack(1)))
    data[0] = codec.PROTOCOL_VERSION + 1
    with pytest.raises(DecodeError, match="version"):
        decode(bytes(data))


def test_trailing_fields_from_a_newer_peer_are_ignored():
    import msgpack

    body = msgpack.packb([Ack.TYPE, 42, "field-added-later"])
    assert decode(bytes((codec.PROTOCOL_VERSION, 0)) + body) == Ack(42)


def test_a_missing_field_or_wrong_type_is_refused():
    import msgpack

    header = bytes((codec.PROTOCOL_VERSION, 0))
    bad = ([Ping.TYPE, 1, "n2"], [Ack.TYPE, "1"], [Ack.TYPE, True], [99, 1], {"a": 1}, [Compound.TYPE, [[9, []]]])
    for body in bad:
        with pytest.raises(DecodeError):
            decode(header + msgpack.packb(body))


def test_with_a_key_set_plaintext_and_foreign_keys_are_unauthenticated():
    ours, theirs = Keyring((Keyring.generate(),)), Keyring((Keyring.generate(),))
    with pytest.raises(Unauthenticated):
        decode(encode(Ack(1)), ours)
    with pytest.raises(Unauthenticated):
        decode(encode(Ack(1), theirs), ours)
    with pytest.raises(Unauthenticated):
        decode(encode(Ack(1), theirs))  # sealed, but we hold no key


def test_tampering_with_the_header_breaks_authentication():
    ring = Keyring((Keyring.generate(),))
    data = bytearray(encode(Ack(1), ring))
    data[1] |= 0x80
    with pytest.raises(Unauthenticated):
        decode(bytes(data), ring)


def test_keyring_rotation_opens_packets_sealed_with_any_installed_key(tmp_path):
    import base64

    old, new = Keyring.generate(), Keyring.generate()
    f = tmp_path / "keys"
    f.write_text(f"# primary first\n{base64.b64encode(new).decode()}\n{base64.b64encode(old).decode()}\n")
    ring = Keyring.from_file(f)
    assert ring.keys == (new, old)
    assert decode(encode(Ack(1), Keyring((old,))), ring) == Ack(1)
    with pytest.raises(Unauthenticated):
        decode(encode(Ack(1), ring), Keyring((old,)))  # sealed with the new primary


def test_oversized_packets_are_refused_before_parsing():
    with pytest.raises(DecodeError, match="oversized"):
        decode(encode(Ack(1)) + b"\0" * 2000, max_size=1400)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=2048))
def test_random_bytes_never_raise_anything_but_decode_error(data):
    for ring in (None, Keyring((b"k" * 32,))):
        try:
            decode(data, ring)
        except DecodeError:
            pass


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(ALL), st.data())
def test_corrupted_valid_packets_never_raise_anything_but_decode_error(msg, data):
    raw = bytearray(encode(msg))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    try:
        decode(bytes(raw))
    except DecodeError:
        pass
