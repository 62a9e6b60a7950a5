"""Reading a compose file as Compose does: YAML, variables, the schema — then :func:`convert`.

The only module of ``orion/stack`` that touches files: the compose file, the
``.env`` beside it, the ``env_file`` s its services and jobs name and the ``file``
of each top-level secret and config (relative to the file's folder; their bytes
go to the conversion and are never shown). The steps, in Compose's order: the YAML is parsed (YAML 1.2, as
Compose's Go parser reads it: ``yes`` stays a string, a duplicated key is an
error; anchors and ``<<`` merges work; ``0440`` is 440, as Compose reads an
environment value, and remembers the octal 0440 Go's parser reads, for a file
``mode``), every string value is interpolated
(``interpolate.py``), the result is checked against the Compose Specification's
schema (``schema.py``), and only a valid document is converted. Each failure is
an :class:`~orion.stack.findings.Invalid` at its key path; nothing raises.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.constructor import SafeConstructor
from ruamel.yaml.error import YAMLError
from ruamel.yaml.nodes import ScalarNode

from orion.stack.convert import Conversion, convert
from orion.stack.findings import Findings
from orion.stack.interpolate import InterpolationError, interpolate, parse_dotenv
from orion.stack.schema import validate


@dataclass(frozen=True)
class ComposeFile:
    """A compose file read, interpolated and checked; ``document`` is None when it could not be."""

    path: Path
    document: dict[str, Any] | None
    variables: dict[str, str]
    env_files: dict[str, dict[str, str] | None] = field(default_factory=dict)
    findings: Findings = field(default_factory=Findings)
    files: dict[str, bytes | None] = field(default_factory=dict, repr=False)  # secrets' and configs' files

    @property
    def name(self) -> str | None:
        """The file's top-level ``name``: the stack's name when none is given."""
        name = (self.document or {}).get("name")
        return name if isinstance(name, str) and name else None

    def convert(self, stack: str, default_memory: str | None = None,
                profiles: frozenset[str] = frozenset()) -> Conversion:
        """The stack this file declares, with the reading's findings first."""
        found = convert(self.document or {}, stack, self.variables, self.env_files, default_memory, profiles,
                        self.files)
        return Conversion(found.stack, found.bodies, found.specs,
                          (*self.findings.invalid, *found.invalid), found.unsupported,
                          (*self.findings.notes, *found.notes), found.left_out, found.objects)


class LeadingZero(int):
    """An integer written with a leading zero (``0440``): YAML 1.2's value (440), and ``octal``, the
    value go-yaml v3 gives it (0o440). Compose keeps 440 where it reads text (``MODE: 0440`` in
    ``environment`` is ``440``) and the octal where it reads an integer: a secret's ``mode: 0440``."""

    octal: int

    def __new__(cls, value: int, octal: int) -> LeadingZero:
        made = super().__new__(cls, value)
        made.octal = octal
        return made


class _GoIntegers(SafeConstructor):
    def construct_yaml_int(self, node: ScalarNode) -> int:
        value = super().construct_yaml_int(node)
        text = str(self.construct_scalar(node)).replace("_", "")
        digits = text.lstrip("+-")
        if len(digits) > 1 and digits[0] == "0" and set(digits) <= set("01234567"):
            return LeadingZero(value, (-1 if text.startswith("-") else 1) * int(digits, 8))
        return value


_GoIntegers.add_constructor("tag:yaml.org,2002:int", _GoIntegers.construct_yaml_int)


def parse_yaml(text: str) -> Any:
    yaml = YAML(typ="safe", pure=True)
    yaml.Constructor = _GoIntegers
    return yaml.load(text)


def read_document(text: str, variables: Mapping[str, str], findings: Findings) -> dict[str, Any] | None:
    """The document of a compose file's ``text``: parsed, interpolated, checked (pure)."""
    try:
        raw = parse_yaml(text)
    except YAMLError as exc:
        findings.bad("", f"not valid YAML: {' '.join(str(exc).split())}")
        return None
    if not isinstance(raw, dict):
        findings.bad("", "a compose file is a mapping with a services key")
        return None
    before = len(findings.invalid)
    document = interpolate(raw, variables, findings)
    validate(document, findings)
    return document if len(findings.invalid) == before else None


def _env_file_paths(document: Mapping[str, Any]) -> list[str]:
    out = []
    for svc in [*(document.get("services") or {}).values(), *(document.get("jobs") or {}).values()]:
        files = (svc or {}).get("env_file")
        for item in [files] if isinstance(files, str) else files or ():
            out.append(item if isinstance(item, str) else item.get("path"))
    return out


def _object_paths(document: Mapping[str, Any]) -> list[str]:
    """The ``file`` of every top-level secret and config."""
    entries = [*(document.get("secrets") or {}).values(), *(document.get("configs") or {}).values()]
    return [e["file"] for e in entries if isinstance(e, dict) and isinstance(e.get("file"), str)]


def _read_bytes(file: Path) -> bytes | None:
    """A file's bytes; None when it is not there (the conversion names the key)."""
    try:
        return file.read_bytes() if file.is_file() else None
    except OSError:
        return None


def load(path: str | Path, environ: Mapping[str, str] | None = None) -> ComposeFile:
    """Read the compose file at ``path`` with the variables of ``environ`` (default: this process's)
    over its ``.env``."""
    path = Path(path)
    environ = dict(os.environ if environ is None else environ)
    findings = Findings()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        findings.bad("", f"cannot read {path}: {exc}")
        return ComposeFile(path, None, environ, findings=findings)
    variables = environ
    dotenv = path.parent / ".env"
    if dotenv.is_file():
        try:
            variables = {**parse_dotenv(dotenv.read_text(encoding="utf-8"), environ, str(dotenv)), **environ}
        except (OSError, UnicodeDecodeError, InterpolationError) as exc:
            findings.bad("", str(exc))
    document = read_document(text, variables, findings)
    env_files: dict[str, dict[str, str] | None] = {}
    for name in _env_file_paths(document or {}):
        file = path.parent / name
        try:
            env_files[name] = (parse_dotenv(file.read_text(encoding="utf-8"), variables, name) if file.is_file()
                               else None)
        except (OSError, UnicodeDecodeError, InterpolationError) as exc:
            findings.bad("", str(exc))
    files = {name: _read_bytes(path.parent / Path(name).expanduser()) for name in _object_paths(document or {})}
    return ComposeFile(path, document, variables, env_files, findings, files)
