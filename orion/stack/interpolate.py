"""Variable interpolation as Compose does it, and the ``.env`` format it reads variables from.

Compose substitutes variables in every string *value* of the file (never in keys)
before it validates anything (compose-spec, "Interpolation"):

====================  =====================================================
``$VAR``, ``${VAR}``  the value; unset is an empty string (with a warning)
``${VAR:-default}``   ``default`` if VAR is unset or empty
``${VAR-default}``    ``default`` if VAR is unset
``${VAR:?message}``   an error naming ``message`` if VAR is unset or empty
``${VAR?message}``    an error if VAR is unset
``${VAR:+other}``     ``other`` if VAR is set and not empty, else empty
``${VAR+other}``      ``other`` if VAR is set, else empty
``$$``                a literal ``$`` (so ``$$HOME`` reaches the container's shell)
====================  =====================================================

``default``, ``message`` and ``other`` may themselves hold ``${...}``, resolved
only when used. Anything else after a ``$`` is an error, as in Compose
("invalid interpolation format"), so a ``$1`` meant for a shell is caught here
instead of reaching the container as an empty string.

The variables are the process environment over the ``.env`` file beside the
compose file (the environment wins: Compose's precedence). Pure functions: the
CLI reads the files and the environment (``orion/stack/load.py``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from orion.stack.findings import Findings, key_path

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATORS = (":-", ":?", ":+", "-", "?", "+")


class InterpolationError(ValueError):
    """A ``${...}`` that cannot be substituted; the message says why."""


def substitute(text: str, env: Mapping[str, str], unset: set[str] | None = None) -> str:
    """``text`` with its variables substituted from ``env``; names used but unset go into ``unset``."""
    out: list[str] = []
    i = 0
    while i < len(text):
        dollar = text.find("$", i)
        if dollar < 0:
            out.append(text[i:])
            break
        out.append(text[i:dollar])
        nxt = text[dollar + 1:dollar + 2]
        if nxt == "$":
            out.append("$")
            i = dollar + 2
        elif nxt == "{":
            end = _closing(text, dollar + 2)
            out.append(_braced(text[dollar + 2:end], env, unset))
            i = end + 1
        elif match := _NAME.match(text, dollar + 1):
            out.append(_lookup(match.group(), env, unset))
            i = match.end()
        else:
            raise InterpolationError(f"invalid interpolation format in {text!r}: write $$ for a literal $")
    return "".join(out)


def _closing(text: str, start: int) -> int:
    """The index of the ``}`` closing the ``${`` whose body starts at ``start`` (nested ones balanced)."""
    depth, i = 1, start
    while i < len(text):
        if text.startswith("$$", i):
            i += 2
            continue
        if text.startswith("${", i):
            depth, i = depth + 1, i + 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise InterpolationError(f"invalid interpolation format in {text!r}: a ${{ without its }}")


def _lookup(name: str, env: Mapping[str, str], unset: set[str] | None) -> str:
    if name not in env and unset is not None:
        unset.add(name)
    return env.get(name, "")


def _braced(body: str, env: Mapping[str, str], unset: set[str] | None) -> str:
    match = _NAME.match(body)
    if not match:
        raise InterpolationError(f"invalid interpolation format: ${{{body}}} does not start with a variable name")
    name, rest = match.group(), body[match.end():]
    if not rest:
        return _lookup(name, env, unset)
    op = next((o for o in _OPERATORS if rest.startswith(o)), None)
    if op is None:
        raise InterpolationError(f"invalid interpolation format: ${{{body}}}; use :-, -, :?, ?, :+ or +")
    word = rest[len(op):]
    is_set = name in env
    # The operators with a colon treat an empty value as unset.
    present = is_set and (env[name] != "" or ":" not in op)
    if op.endswith("-"):
        return env[name] if present else substitute(word, env, unset)
    if op.endswith("+"):
        return substitute(word, env, unset) if present else ""
    if not present:
        reason = substitute(word, env, unset) or ("is not set" if not is_set else "is empty")
        raise InterpolationError(f"required variable {name} is missing a value: {reason}")
    return env[name]


def interpolate(document: Any, env: Mapping[str, str], findings: Findings, path: tuple[str | int, ...] = ()) -> Any:
    """Every string value of ``document`` substituted (keys are not); an error is recorded at its key path
    and the value left as it was, so one run names every bad value."""
    if isinstance(document, dict):
        return {k: interpolate(v, env, findings, (*path, str(k))) for k, v in document.items()}
    if isinstance(document, list):
        return [interpolate(v, env, findings, (*path, i)) for i, v in enumerate(document)]
    if not isinstance(document, str):
        return document
    unset: set[str] = set()
    try:
        value = substitute(document, env, unset)
    except InterpolationError as exc:
        findings.bad(key_path(*path), str(exc))
        return document
    for name in sorted(unset):
        findings.note(key_path(*path), f"variable {name} is not set: an empty string is used")
    return value


# -- .env ---------------------------------------------------------------------------------------

_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"', "$": "$$"}


def parse_dotenv(text: str, env: Mapping[str, str], source: str = ".env") -> dict[str, str]:
    """``KEY=VALUE`` lines as Compose reads ``.env`` and ``env_file`` files.

    ``export`` before a key is allowed; ``#`` starts a comment (in an unquoted value, after a
    space); ``'single'`` quotes are literal; ``"double"`` quotes take ``\\n``-style escapes and
    variables; unquoted values take variables too. A variable resolves from the lines above and
    then ``env``. A bare ``KEY`` takes ``env``'s value (and is left out if it has none).
    """
    found: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export ") or line.startswith("export\t"):
            line = line[len("export"):].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not _NAME.fullmatch(key):
            raise InterpolationError(f"{source} line {number}: {key!r} is not a variable name")
        if not sep:
            if key in env:
                found[key] = env[key]
            continue
        scope = {**env, **found}
        found[key] = _dotenv_value(value.strip(), scope, f"{source} line {number}")
    return found


def _dotenv_value(value: str, scope: Mapping[str, str], where: str) -> str:
    if value.startswith("'"):
        end = value.find("'", 1)
        if end < 0:
            raise InterpolationError(f"{where}: a ' without its closing '")
        return value[1:end]
    try:
        if value.startswith('"'):
            chars, i = [], 1
            while i < len(value) and value[i] != '"':
                if value[i] == "\\" and i + 1 < len(value):
                    chars.append(_ESCAPES.get(value[i + 1], "\\" + value[i + 1]))
                    i += 2
                else:
                    chars.append(value[i])
                    i += 1
            if i >= len(value):
                raise InterpolationError(f"{where}: a \" without its closing \"")
            return substitute("".join(chars), scope)
        comment = re.search(r"\s#", value)
        return substitute(value[:comment.start()] if comment else value, scope).strip()
    except InterpolationError as exc:
        raise InterpolationError(f"{where}: {exc}") from None
