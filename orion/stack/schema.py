"""A compose file checked against the Compose Specification's published JSON schema.

The schema is the one the compose-spec project publishes (``schema/compose-spec.json``,
Apache-2.0), read from the ``check-jsonschema`` package, which vendors it with
its license and a sha256 (``check_jsonschema/builtin_schemas/vendor/``) and is
installed from PyPI as one of Orion's dependencies: nothing of it is copied
into this repository, and a newer release of that package brings a newer
schema. :func:`schema_source` says which file and package version were read.

Each violation becomes an :class:`~orion.stack.findings.Invalid` at the key
path Compose would name (``services.web.deploy.replicas``); a key the schema
does not know is named itself (``services.web.imgae: not a Compose key; did you
mean 'image'?``) rather than reported on its parent.
"""

from __future__ import annotations

import difflib
import functools
import importlib.metadata
import importlib.resources
import json
import re
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from orion.stack.findings import Findings, key_path

PACKAGE = "check-jsonschema"
RESOURCE = ("check_jsonschema.builtin_schemas.vendor", "compose-spec.json")


@functools.cache
def compose_schema() -> dict[str, Any]:
    """The Compose Specification's JSON schema (draft 2020-12), as the installed package ships it."""
    package, name = RESOURCE
    return json.loads(importlib.resources.files(package).joinpath(name).read_text(encoding="utf-8"))


def schema_source() -> str:
    """Where the schema comes from, for ``orion stack deploy --help`` and the docs."""
    return f"{RESOURCE[1]} from {PACKAGE} {importlib.metadata.version(PACKAGE)} (the compose-spec project's schema)"


@functools.cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(compose_schema())


@functools.cache
def _known_keys(where: str) -> tuple[str, ...]:
    """The keys the schema defines for a service (or a job): its own and those of the specs it joins."""
    defs = compose_schema()["$defs"]
    keys = set(defs[where].get("properties", {}))
    for part in defs[where].get("allOf", ()):
        ref = part.get("$ref", "").rsplit("/", 1)[-1]
        keys.update(defs.get(ref, {}).get("properties", {}))
    return tuple(sorted(keys))


def _known_here(error: ValidationError) -> tuple[str, ...]:
    path = list(error.absolute_path)
    if len(path) == 2 and path[0] in ("services", "jobs"):
        return _known_keys("service" if path[0] == "services" else "job")
    return tuple(error.schema.get("properties", ()))


def _unknown(error: ValidationError, known: tuple[str, ...]) -> list[str]:
    """The keys of the object at fault that the schema defines nowhere. (A known key whose value is
    wrong counts as "unevaluated" too under allOf: its own error names it, so it is not repeated.)"""
    patterns = [re.compile(p) for p in error.schema.get("patternProperties", {"^x-": {}})]
    instance = error.instance if isinstance(error.instance, dict) else {}
    return [str(k) for k in instance if k not in known and not any(p.search(str(k)) for p in patterns)]


def _report(error: ValidationError, findings: Findings) -> None:
    path = [str(p) if not isinstance(p, int) else p for p in error.absolute_path]
    if error.validator in ("additionalProperties", "unevaluatedProperties"):
        known = _known_here(error)
        for key in _unknown(error, known):
            guess = difflib.get_close_matches(key, known, n=1)
            hint = f"; did you mean {guess[0]!r}?" if guess else ""
            findings.bad(key_path(*path, key), f"not a Compose key here{hint}")
        return
    where = key_path(*path) or "(the file)"
    findings.bad(where if path else "", error.message if path else f"the file: {error.message}")


def validate(document: Any, findings: Findings) -> None:
    """Record every place ``document`` breaks the Compose Specification's schema."""
    for error in sorted(_validator().iter_errors(document), key=lambda e: [str(p) for p in e.absolute_path]):
        # oneOf/anyOf: report the alternative that came closest (jsonschema's relevance rule).
        _report(best_match([error]) if error.context else error, findings)
