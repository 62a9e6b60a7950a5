"""The envelope secrets travel in (orion/domain/sealing.py): what it binds, what it refuses, and
that nothing of the value shows through it or its digest."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orion.domain.sealing import (
    SealError,
    digest,
    key_id,
    keyring_problem,
    open_sealed,
    parse_keyring,
    seal,
    sealed_key_id,
)

K1 = base64.b64encode(bytes(range(32))).decode()
K2 = base64.b64encode(bytes(range(32, 64))).decode()


def ring(*lines: str):
    return parse_keyring("\n".join(lines))


@given(st.binary(min_size=1, max_size=2048), st.text(alphabet="abcdef.-_0123456789", min_size=1, max_size=20))
def test_a_sealed_value_opens_to_itself_and_shows_nothing_of_it(value, name):
    envelope = seal(ring(K1), value, "secret", name)
    assert open_sealed(ring(K1), envelope, "secret", name) == value
    if len(value) >= 4:
        assert value not in envelope.encode() and base64.b64encode(value) not in envelope.encode()


def test_the_envelope_names_the_key_that_opens_it_and_any_key_of_the_file_opens_it():
    old, both = ring(K1), ring(K2, K1)
    envelope = seal(old, b"hunter2", "secret", "db")
    assert sealed_key_id(envelope) == old.primary_id == key_id(base64.b64decode(K1))
    assert envelope.startswith(f"orion-sealed:v1:{old.primary_id}:")
    assert open_sealed(both, envelope, "secret", "db") == b"hunter2"
    assert sealed_key_id(seal(both, b"x", "secret", "db")) == both.primary_id != old.primary_id


def test_a_keyring_without_the_key_says_which_key_is_missing():
    envelope = seal(ring(K1), b"hunter2", "secret", "db")
    with pytest.raises(SealError, match=f"sealed with cluster key {ring(K1).primary_id}, which this node's cluster "
                                        f"key file lacks \\(it holds {ring(K2).primary_id}\\)"):
        open_sealed(ring(K2), envelope, "secret", "db")


@pytest.mark.parametrize("purpose,name", [("secret", "db2"), ("registry", "db"), ("config", "db")])
def test_a_value_sealed_for_one_name_does_not_open_as_another(purpose, name):
    envelope = seal(ring(K1), b"hunter2", "secret", "db")
    with pytest.raises(SealError, match="does not open"):
        open_sealed(ring(K1), envelope, purpose, name)


def test_a_changed_byte_is_refused_not_decrypted():
    envelope = seal(ring(K1), b"hunter2", "secret", "db")
    head, _, body = envelope.rpartition(":")
    raw = bytearray(base64.b64decode(body))
    raw[-1] ^= 1
    with pytest.raises(SealError, match="does not open"):
        open_sealed(ring(K1), head + ":" + base64.b64encode(bytes(raw)).decode(), "secret", "db")


def test_two_seals_of_one_value_differ_but_a_fixed_nonce_gives_a_transcript():
    assert seal(ring(K1), b"v", "secret", "db") != seal(ring(K1), b"v", "secret", "db")
    nonce = bytes(12)
    assert seal(ring(K1), b"v", "secret", "db", nonce) == seal(ring(K1), b"v", "secret", "db", nonce)


def test_the_digest_is_keyed_not_a_plain_hash_of_a_guessable_value():
    value = b"password1"
    one, two = digest(ring(K1), value), digest(ring(K2), value)
    assert one.startswith("hmac-sha256:") and one != two
    assert hashlib.sha256(value).hexdigest() not in one
    assert digest(ring(K1), value) == one  # equal values, equal digests under one key
    assert digest(ring(K2, K1), value, ring(K1).primary_id) == one


@pytest.mark.parametrize("text,problem", [
    ("", "no key in it"),
    ("# only a comment\n", "no key in it"),
    ("not base64!", "line 1 is not base64"),
    (base64.b64encode(b"short").decode(), "line 1 holds 5 bytes, a cluster key is 32"),
    (f"{K1}\n{K1}", "line 2 repeats a key"),
])
def test_a_bad_key_file_is_named_by_its_line_and_never_shows_a_key(text, problem):
    found = keyring_problem(text)
    assert found is not None and found.startswith(problem)
    assert K1 not in found


def test_comments_and_blank_lines_are_allowed_and_the_first_key_is_primary():
    keys = parse_keyring(f"# new key, primary\n{K2}\n\n{K1}  # the old one, until rotation is done\n")
    assert keys.ids == (ring(K2).primary_id, ring(K1).primary_id) and keys.primary_id == ring(K2).primary_id


@pytest.mark.parametrize("envelope", ["plain text", "orion-sealed:v9:abcd:AAAA", "orion-sealed:v1:abcd:!!",
                                      "orion-sealed:v1:abcd:" + base64.b64encode(b"x").decode()])
def test_what_is_not_an_envelope_is_refused(envelope):
    with pytest.raises(SealError):
        open_sealed(ring(K1), envelope, "secret", "db")
