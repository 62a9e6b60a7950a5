"""Named API tokens and client certificates, each with a scope: the tokens file.

The agent's ``api_tokens_file`` (TOML, or JSON when it ends in ``.json``) lists who may
call the API and with which scope (``scopes.py``)::

    [[token]]
    name = "ci"
    scope = "write"
    sha256 = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"

    [[certificate]]            # mTLS: a client certificate's subject, as
    subject = "CN=alice,O=ops" # openssl x509 -noout -subject -nameopt RFC2253 prints it
    name = "alice"
    scope = "admin"

A token is stored as its SHA-256, never itself: the file can be read by whoever
deploys it without handing out a credential. A fast hash is enough because a token
is random (``orion token new`` makes 256 bits); a slow key-derivation function
protects guessable passwords, and a token is not guessable. A presented token is
hashed and looked up, so comparing it costs the same whichever entry it matches.

The agent's own ``api_token`` stays what it was, an admin token, named
:data:`DEFAULT_NAME`: the agents call each other with it, and a fleet that sets
only it works as before. The file is read again when it changes (checked at most
every :data:`RELOAD_CHECK` seconds), so a token is revoked by deleting its entry;
a file that no longer parses is logged and the previous list kept.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import threading
import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orion.api.scopes import Identity, Scope

log = logging.getLogger("orion.api.tokens")

DEFAULT_NAME = "default"
# How often a request may look at the file's modification time: revoking a token takes
# effect within this long, and a request costs at most one stat() per this period.
RELOAD_CHECK = 1.0
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
_HEX64 = re.compile(r"[0-9a-f]{64}")


class TokenFileError(ValueError):
    """The tokens file cannot be used; the message names the entry and the field."""


def token_hash(token: str) -> str:
    """What the file stores for ``token``."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    name: str
    scope: Scope


@dataclass(frozen=True)
class TokenBook:
    """Every credential the API accepts: token hashes and certificate subjects, by name."""

    by_hash: Mapping[str, Principal] = field(default_factory=dict)
    by_subject: Mapping[str, Principal] = field(default_factory=dict)
    default_token: str = ""

    @property
    def required(self) -> bool:
        """Whether the API asks for credentials at all (no token anywhere: a loopback demo)."""
        return bool(self.default_token or self.by_hash or self.by_subject)

    def token(self, given: str) -> Identity | None:
        if self.default_token and hmac.compare_digest(given.encode(), self.default_token.encode()):
            return Identity(DEFAULT_NAME, Scope.ADMIN, "token")
        found = self.by_hash.get(token_hash(given))
        return Identity(found.name, found.scope, "token") if found else None

    def certificate(self, subject: str) -> Identity | None:
        found = self.by_subject.get(subject)
        return Identity(found.name, found.scope, "certificate", certificate=subject) if found else None

    def names(self) -> list[str]:
        return sorted({p.name for p in (*self.by_hash.values(), *self.by_subject.values())})


def parse_book(text: str, json_format: bool, default_token: str = "") -> TokenBook:
    """The file's text -> a book; :class:`TokenFileError` naming what is wrong."""
    try:
        data = json.loads(text) if json_format else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise TokenFileError(f"not valid {'JSON' if json_format else 'TOML'}: {exc}") from None
    if not isinstance(data, dict):
        raise TokenFileError("the file must hold an object with lists 'token' and 'certificate'")
    unknown = set(data) - {"token", "certificate"}
    if unknown:
        raise TokenFileError(f"unknown key {sorted(unknown)[0]!r}; the file holds [[token]] and [[certificate]]")
    names: set[str] = {DEFAULT_NAME} if default_token else set()
    by_hash = {}
    for i, entry in enumerate(_entries(data, "token")):
        where = f"token[{i}]"
        digest = _text(entry, where, "sha256").lower()
        if not _HEX64.fullmatch(digest):
            raise TokenFileError(f"{where}.sha256: not 64 hex digits; `orion token new` prints the line to add")
        if digest in by_hash:
            raise TokenFileError(f"{where}.sha256: the same token as {by_hash[digest].name!r}")
        by_hash[digest] = _principal(entry, where, names, {"name", "scope", "sha256"})
    by_subject = {}
    for i, entry in enumerate(_entries(data, "certificate")):
        where = f"certificate[{i}]"
        subject = _text(entry, where, "subject")
        if subject in by_subject:
            raise TokenFileError(f"{where}.subject: {subject!r} is listed twice")
        by_subject[subject] = _principal(entry, where, names, {"name", "scope", "subject"})
    return TokenBook(by_hash, by_subject, default_token)


def _entries(data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    entries = data.get(key, [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise TokenFileError(f"{key}: a list of tables ([[{key}]])")
    return entries


def _text(entry: dict[str, Any], where: str, key: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise TokenFileError(f"{where}.{key}: missing (a string)")
    return value.strip()


def _principal(entry: dict[str, Any], where: str, names: set[str], allowed: set[str]) -> Principal:
    extra = set(entry) - allowed
    if extra:
        raise TokenFileError(f"{where}: unknown key {sorted(extra)[0]!r}; allowed: {', '.join(sorted(allowed))}")
    name = _text(entry, where, "name")
    if not NAME_RE.fullmatch(name):
        raise TokenFileError(f"{where}.name: {name!r} must be 1-64 of letters, digits, '_.@-'")
    if name in names:
        why = "the agent's api_token is named so" if name == DEFAULT_NAME else "names must be unique"
        raise TokenFileError(f"{where}.name: {name!r} is taken ({why})")
    names.add(name)
    try:
        scope = Scope.parse(_text(entry, where, "scope"))
    except ValueError as exc:
        raise TokenFileError(f"{where}.scope: {exc}") from None
    return Principal(name, scope)


def read_book(path: str, default_token: str = "") -> TokenBook:
    """The book in ``path`` (none: only the default token); :class:`TokenFileError` naming the file."""
    if not path:
        return TokenBook(default_token=default_token)
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise TokenFileError(f"{path}: {exc.strerror if isinstance(exc, OSError) else exc}") from None
    try:
        return parse_book(text, path.endswith(".json"), default_token)
    except TokenFileError as exc:
        raise TokenFileError(f"{path}: {exc}") from None


class TokenSource:
    """The current book: read at start (a bad file stops the agent: ``orion/config/rules.py``
    reads it first), read again when the file changes."""

    def __init__(self, path: str, default_token: str = "", clock: Callable[[], float] = time.monotonic) -> None:
        self._path = path
        self._default = default_token
        self._clock = clock
        self._lock = threading.Lock()
        self._stamp = self._stat()
        self._book = read_book(path, default_token)
        self._checked = clock()

    def _stat(self) -> tuple[int, int, int] | None:
        if not self._path:
            return None
        try:
            st = os.stat(self._path)
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size, st.st_ino

    def book(self) -> TokenBook:
        now = self._clock()
        if not self._path or now - self._checked < RELOAD_CHECK:
            return self._book
        with self._lock:
            if now - self._checked >= RELOAD_CHECK:
                self._checked = now
                stamp = self._stat()
                if stamp != self._stamp:
                    self._stamp = stamp
                    self._reload()
        return self._book

    def _reload(self) -> None:
        try:
            self._book = read_book(self._path, self._default)
            log.info("api_tokens_file %s read again: %d name(s)", self._path, len(self._book.names()))
        except TokenFileError as exc:
            log.error("api_tokens_file changed but cannot be used, the previous tokens stay: %s", exc)
