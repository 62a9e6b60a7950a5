"""The cluster key and the envelope every secret travels in: sealed before it enters the Raft log.

A secret's value is sealed on the node that receives it (the API request) and opened only on
the node that runs a task needing it, so the log, its snapshots and every replica's memory hold
ciphertext alone. The key never enters the log: it is a file on each host (``cluster_key_file``,
which the Ansible role generates on the controller and distributes, mode 0600, like the Raft
secret), so a copy of a data directory or a backup reveals nothing without it.

**The key file** holds one or more AES-256 keys, base64, one per line (``#`` starts a comment),
the *primary* first: new values are sealed with the primary, and any key in the file opens what
it sealed. A key's id is derived from the key (the first 8 hex digits of a SHA-256 over a fixed
label and the key), so ids can never disagree with the keys they name and need no bookkeeping.

**The envelope**: ``orion-sealed:v1:<key id>:<base64 of nonce | ciphertext | tag>``, AES-256-GCM
(an AEAD: a changed byte is refused, not decrypted to garbage) with a fresh 96-bit random nonce,
and the purpose and name as associated data (``secret:db``), so a ciphertext copied under
another name does not open. The key id in each envelope is what makes rotation possible: old
values still name the key that opens them while new ones name the new primary
(``orion/control/rotation.py`` plans the re-sealing, docs/secrets.md the procedure).

**The digest** shown beside a secret is an HMAC-SHA256 under a key derived (HKDF) from the
sealing key, not a plain SHA-256: a password of a few words hashed plainly is found by trying
dictionary words against the digest, which anyone reading ``GET /secrets`` could do. Equal
values have equal digests under one key; rotation recomputes them under the new one.

Pure: the random nonce is the only input not passed in (``os.urandom``, as every AEAD use must).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_BYTES = 32  # AES-256
_NONCE_BYTES = 12  # GCM's standard nonce; random nonces are safe for far more than 2**32 seals per key
_PREFIX = "orion-sealed"
_VERSION = "v1"
_ID_LABEL = b"orion cluster key id\x00"
_DIGEST_INFO = b"orion secret digest"


class SealError(ValueError):
    """A value cannot be sealed or opened: the sentence says which key or which part is wrong."""


def key_id(key: bytes) -> str:
    """The id of ``key``: derived from it, so an id always names the key it came from."""
    return hashlib.sha256(_ID_LABEL + key).hexdigest()[:8]


def new_key() -> str:
    """A fresh key as a key file line (``orion secret keygen``, the Ansible role uses openssl)."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode()


@dataclass(frozen=True)
class Keyring:
    """The keys of one node's key file, primary first."""

    keys: tuple[bytes, ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise SealError("a keyring needs at least one key")
        for key in self.keys:
            if len(key) != KEY_BYTES:
                raise SealError(f"a cluster key is {KEY_BYTES} bytes (base64 of {KEY_BYTES} random bytes); "
                                f"got {len(key)}")

    @property
    def primary_id(self) -> str:
        return key_id(self.keys[0])

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(key_id(k) for k in self.keys)

    def key(self, kid: str) -> bytes | None:
        return next((k for k in self.keys if key_id(k) == kid), None)


def parse_keyring(text: str) -> Keyring:
    """The key file's text -> its keyring; a ``SealError`` naming the line that is wrong."""
    keys: list[bytes] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            key = base64.b64decode(line, validate=True)
        except (binascii.Error, ValueError):
            raise SealError(f"line {number} is not base64 (make a key with `orion secret keygen` "
                            "or `openssl rand -base64 32`)") from None
        if len(key) != KEY_BYTES:
            raise SealError(f"line {number} holds {len(key)} bytes, a cluster key is {KEY_BYTES} "
                            "(`openssl rand -base64 32`)")
        if key in keys:
            raise SealError(f"line {number} repeats a key")
        keys.append(key)
    if not keys:
        raise SealError("no key in it (one base64 key per line, the primary first)")
    return Keyring(tuple(keys))


def keyring_problem(text: str) -> str | None:
    """What is wrong with a key file's text, or None (the setting's check)."""
    try:
        parse_keyring(text)
    except SealError as exc:
        return str(exc)
    return None


def associated(purpose: str, name: str) -> bytes:
    """What a sealed value is bound to: its purpose and name (``secret:db``, ``registry:host:5000``)."""
    return f"{purpose}:{name}".encode()


def seal(keyring: Keyring, value: bytes, purpose: str, name: str, nonce: bytes | None = None) -> str:
    """``value`` sealed with the primary key, as the envelope text that goes in the log.
    ``nonce`` only for tests that need a fixed transcript; never reuse one with a key."""
    nonce = os.urandom(_NONCE_BYTES) if nonce is None else nonce
    if len(nonce) != _NONCE_BYTES:
        raise SealError(f"a nonce is {_NONCE_BYTES} bytes")
    body = AESGCM(keyring.keys[0]).encrypt(nonce, value, associated(purpose, name))
    return f"{_PREFIX}:{_VERSION}:{keyring.primary_id}:{base64.b64encode(nonce + body).decode()}"


def sealed_key_id(envelope: str) -> str:
    """The id of the key that opens ``envelope`` (read without opening it)."""
    return _split(envelope)[0]


def open_sealed(keyring: Keyring, envelope: str, purpose: str, name: str) -> bytes:
    """The value inside ``envelope``; a ``SealError`` when this keyring lacks its key, or the
    envelope was changed, or it was sealed for another purpose or name."""
    kid, blob = _split(envelope)
    key = keyring.key(kid)
    if key is None:
        raise SealError(f"sealed with cluster key {kid}, which this node's cluster key file lacks "
                        f"(it holds {', '.join(keyring.ids)})")
    try:
        return AESGCM(key).decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], associated(purpose, name))
    except InvalidTag:
        raise SealError(f"{purpose} {name}: the sealed value does not open with key {kid} "
                        "(changed, or sealed for another name)") from None


def _split(envelope: str) -> tuple[str, bytes]:
    parts = envelope.split(":")
    if len(parts) != 4 or parts[0] != _PREFIX:
        raise SealError("not a sealed value")
    if parts[1] != _VERSION:
        raise SealError(f"sealed value format {parts[1]} is newer than this node reads ({_VERSION})")
    try:
        blob = base64.b64decode(parts[3], validate=True)
    except (binascii.Error, ValueError):
        raise SealError("the sealed value's body is not base64") from None
    if len(blob) < _NONCE_BYTES + 16:
        raise SealError("the sealed value is too short to hold a nonce and a tag")
    return parts[2], blob


def digest(keyring: Keyring, value: bytes, kid: str | None = None) -> str:
    """The keyed digest of ``value`` under key ``kid`` (default: the primary), as shown by the API."""
    key = keyring.key(kid) if kid else keyring.keys[0]
    if key is None:
        raise SealError(f"this node's cluster key file lacks key {kid}")
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_DIGEST_INFO).derive(key)
    return "hmac-sha256:" + hmac.new(derived, value, hashlib.sha256).hexdigest()
