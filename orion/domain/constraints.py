"""Placement constraints beyond a label's exact value: ``node.labels.zone != a``, ``in``, ``exists``.

A constraint names one attribute of a node, an operator and its values. The attributes are
what a node reports when it registers (``NodeInfo``): its id, hostname, OS, architecture,
container engine version, and its labels. Written as text the way Swarm writes them
(``node.labels.zone==a``, with or without spaces), so a compose file's
``deploy.placement.constraints`` reads as they are; kept as that text's canonical form
(``str(constraint)``), so equal constraints compare equal and the log carries readable text.

Semantics (Swarm's, where Swarm has the operator):

* ``==`` / ``!=``: exact text. A node without the attribute (a label it does not carry)
  never matches ``==`` and always matches ``!=``: "not in zone a" includes a node in no zone.
* ``in (a, b)`` / ``not in (a, b)``: one of the values, likewise for a missing attribute.
* ``exists`` / ``not exists``: the node carries the attribute (a label, or a non-empty field).
* ``>=``, ``>``, ``<=``, ``<``: as versions, number by number (``20.10.24+dfsg1`` is
  ``20.10.24``), for ``engine.version >= 20.10`` or a numeric label; a node without the
  attribute, or whose value has no leading number, does not match.

Values only: the placement planner and the state machine's re-check both call
:meth:`Constraint.matches`, so they cannot disagree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orion.domain.model import NodeInfo

# The node fields a constraint may name, and the spellings accepted for each (Swarm's first).
_FIELDS = {"node.id": "id", "node.hostname": "hostname", "node.platform.os": "os", "node.os": "os",
           "node.platform.arch": "arch", "node.arch": "arch", "engine.version": "engine_version",
           "node.engine.version": "engine_version"}
_CANONICAL = {"id": "node.id", "hostname": "node.hostname", "os": "node.platform.os",
              "arch": "node.platform.arch", "engine_version": "engine.version"}
LABEL_PREFIX = "node.labels."
# Longest first, so "not in" is not read as "in" and ">=" not as ">".
OPERATORS = ("not exists", "not in", "exists", "==", "!=", ">=", "<=", ">", "<", "in")
_ORDERING = (">=", "<=", ">", "<")
ATTRIBUTES = (*_CANONICAL.values(), LABEL_PREFIX + "<key>")
_LABEL_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-/]*$")
_VERSION = re.compile(r"^v?(\d+(?:\.\d+)*)")


class ConstraintError(ValueError):
    """A constraint that cannot be read; the message says what is wrong and how to write it."""


@dataclass(frozen=True, order=True)
class Constraint:
    """``attribute`` (canonical: ``node.labels.zone``, ``node.hostname`` ...), ``op``, ``values``."""

    attribute: str
    op: str
    values: tuple[str, ...] = ()

    def __str__(self) -> str:
        if self.op in ("exists", "not exists"):
            return f"{self.attribute} {self.op}"
        if self.op in ("in", "not in"):
            return f"{self.attribute} {self.op} ({', '.join(self.values)})"
        return f"{self.attribute} {self.op} {self.values[0]}"

    @property
    def label(self) -> str | None:
        """The label key this constraint reads, or None for a node field."""
        return self.attribute[len(LABEL_PREFIX):] if self.attribute.startswith(LABEL_PREFIX) else None

    @property
    def per_node(self) -> bool:
        """Reads a field that tells every node apart (id, hostname): nodes that look the same to
        the planner otherwise may still differ here."""
        return self.attribute in ("node.id", "node.hostname")

    def value_of(self, node: NodeInfo) -> str | None:
        label = self.label
        if label is not None:
            return dict(node.labels).get(label)
        value = str(getattr(node, _FIELDS[self.attribute]))
        return value or None

    def matches(self, node: NodeInfo) -> bool:
        return self.holds(self.value_of(node))

    def holds(self, value: str | None) -> bool:
        """Does an attribute of ``value`` (None: the node lacks it) satisfy this constraint?"""
        op = self.op
        if op == "exists":
            return value is not None
        if op == "not exists":
            return value is None
        if op == "==":
            return value == self.values[0]
        if op == "!=":
            return value != self.values[0]
        if op == "in":
            return value in self.values
        if op == "not in":
            return value not in self.values
        mine, theirs = version_key(value), version_key(self.values[0])
        if mine is None or theirs is None:
            return False
        if op == ">=":
            return mine >= theirs
        if op == ">":
            return mine > theirs
        if op == "<=":
            return mine <= theirs
        return mine < theirs


def version_key(text: str | None) -> tuple[int, ...] | None:
    """``"20.10.24+dfsg1"`` -> (20, 10, 24), trailing zeros dropped so 20.10 == 20.10.0; None
    when ``text`` does not start with a number."""
    found = _VERSION.match(text.strip()) if text else None
    if found is None:
        return None
    parts = [int(p) for p in found.group(1).split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def _attribute(text: str) -> str:
    name = text.strip()
    if name.startswith(LABEL_PREFIX):
        key = name[len(LABEL_PREFIX):]
        if not _LABEL_KEY.match(key):
            raise ConstraintError(f"label key {key!r} is not a label name (letters, digits, '._-/')")
        return name
    if name in _FIELDS:
        return _CANONICAL[_FIELDS[name]]
    raise ConstraintError(f"unknown attribute {name!r}; use one of {', '.join(ATTRIBUTES)}")


def _split_values(text: str) -> tuple[str, ...]:
    inner = text.strip()
    if inner[:1] in "([" and inner[-1:] in ")]":
        inner = inner[1:-1]
    values = tuple(v.strip().strip("'\"") for v in inner.split(","))
    if not values or any(not v for v in values):
        raise ConstraintError("'in' takes a list of values: node.labels.zone in (a, b)")
    return tuple(sorted(set(values)))


def parse(text: str) -> Constraint:
    """Read ``node.labels.zone != a`` (and the other forms, module doc) or raise ConstraintError."""
    source = str(text).strip()
    for op in OPERATORS:
        if op.isalpha() or " " in op:  # a word: it must stand apart ("zone in (a)" not "zonein")
            found = re.search(rf"\s{op}(\s|\(|\[|$)", source)
            at = found.start() + 1 if found else -1
        else:
            at = source.find(op)
        if at <= 0:
            continue
        attribute = _attribute(source[:at])
        rest = source[at + len(op):].strip()
        if op in ("exists", "not exists"):
            if rest:
                raise ConstraintError(f"'{op}' takes no value: {attribute} {op}")
            return Constraint(attribute, op)
        if not rest:
            raise ConstraintError(f"'{op}' needs a value: {attribute} {op} VALUE")
        if op in ("in", "not in"):
            return Constraint(attribute, op, _split_values(rest))
        value = rest.strip("'\"")
        if op in _ORDERING and version_key(value) is None:
            raise ConstraintError(f"'{op}' compares versions: {value!r} does not start with a number")
        return Constraint(attribute, op, (value,))
    raise ConstraintError(f"{source!r} is not a constraint; write ATTRIBUTE OP VALUE, e.g. "
                          "node.labels.zone != a, node.labels.zone in (a, b), node.labels.ssd exists, "
                          "engine.version >= 20.10")


def matches_all(constraints: tuple[Constraint, ...], node: NodeInfo) -> bool:
    return all(c.matches(node) for c in constraints)
