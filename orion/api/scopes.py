"""Who may do what: the three scopes and the one table that says what each request needs.

A caller is an :class:`Identity`: a name (a token's, a client certificate's subject,
or ``anonymous`` when the agent asks for no credentials) and a :class:`Scope`.
Scopes are ordered, each including the ones below it:

- ``read``: every read of the cluster's state (``GET``), logs included;
- ``write``: the workload: tasks and services (create, update, scale, stop, roll back);
- ``admin``: the cluster itself and what it guards: secrets, configs and registry
  credentials, Raft membership, the operator's endpoints (snapshot, restore),
  draining a node, a shell in a container.

:data:`RULES` is the one declaration of what is ``admin``; anything it does not name
needs ``read`` when it only reads (``GET``, ``HEAD``) and ``write`` otherwise. A rule
names a path and everything below it, so a route added later under ``/secrets``
(or ``/configs``, ``/registries``) is ``admin`` without being listed anywhere else,
and a new write elsewhere is at least ``write`` by default: nothing is open by
omission. The OpenAPI document shows each operation's scope (``x-orion-scope``),
read from here; ``tests/unit/api/test_scopes.py`` walks the app's URL map through it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Scope(IntEnum):
    """What a credential allows; a larger scope includes every smaller one."""

    READ = 1
    WRITE = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Scope:
        """``"write"`` -> ``Scope.WRITE``; ValueError naming the three otherwise."""
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(f"scope {text!r} is not read, write or admin") from None


@dataclass(frozen=True)
class Rule:
    """Requests to ``path`` or below it (``/secrets`` covers ``/secrets/{name}``), with one of
    ``methods`` (empty: any method), need ``scope``. ``why`` is what docs/api.md says."""

    path: str
    scope: Scope
    why: str
    methods: frozenset[str] = frozenset()

    def covers(self, method: str, path: str) -> bool:
        if self.methods and method not in self.methods:
            return False
        return path == self.path or path.startswith(self.path + "/")


_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})

# The one declaration. Paths are the API's templates without /v1 (``{task_id}`` for a path
# parameter, whatever its name); the first rule that covers a request decides.
RULES: tuple[Rule, ...] = (
    Rule("/secrets", Scope.ADMIN, "secrets: only admin creates or removes one, and even its metadata is "
                                  "admin's (nothing reads a value back)"),
    Rule("/configs", Scope.ADMIN, "configs are files handed to tasks: whoever changes one changes what "
                                  "every task that mounts it runs with"),
    Rule("/registries", Scope.ADMIN, "registry credentials are secrets"),
    Rule("/cluster", Scope.ADMIN, "Raft membership: who votes and who holds the log", _WRITES),
    Rule("/operator", Scope.ADMIN, "operator endpoints: a snapshot holds the whole state (every spec, every "
                                   "env) and a restore replaces it"),
    Rule("/nodes/{node_id}/drain", Scope.ADMIN, "an operator's act on a machine, not on a workload"),
    Rule("/tasks/{task_id}/exec", Scope.ADMIN, "a shell in a container reads whatever the container can, "
                                               "its mounted secrets included"),
)


def template(rule: str) -> str:
    """A Flask rule as the table writes it: ``/tasks/<task_id>`` and ``/x/<path:addr>`` ->
    ``/tasks/{task_id}``, ``/x/{addr}``."""
    parts = rule.split("/")
    return "/".join("{" + p[1:-1].rpartition(":")[2] + "}" if p.startswith("<") else p for p in parts)


def needed(method: str, path: str) -> Scope:
    """The scope a request needs: ``path`` is the route's template (``/tasks/{task_id}``), or for
    a request no route matches, its path (whatever it is, it is refused later: 404 or 405)."""
    method = method.upper()
    for rule in RULES:
        if rule.covers(method, path):
            return rule.scope
    return Scope.READ if method in READ_METHODS else Scope.WRITE


def is_write(method: str) -> bool:
    """Whether a request changes something, as the audit log counts them."""
    return method.upper() not in READ_METHODS


@dataclass(frozen=True)
class Identity:
    """Who asks. ``how``: ``token``, ``certificate``, ``anonymous`` (the agent asks for no
    credentials), or ``forwarded`` (a peer vouched for ``name``: see ``auth.py``); ``certificate``
    is the TLS client certificate's subject whenever one was presented; ``via`` the node that
    forwarded the request."""

    name: str
    scope: Scope
    how: str
    certificate: str = ""
    via: str = ""

    def allows(self, scope: Scope) -> bool:
        return self.scope >= scope


ANONYMOUS = "anonymous"


def refusal(identity: Identity, method: str, path: str, scope: Scope) -> str:
    """The 403's sentence: who, what they asked, the scope it needs and the one they have."""
    return (f"{identity.name} has scope {identity.scope.label}; {method} {path} needs {scope.label}: "
            f"use a token with scope {scope.label} (docs/api.md, \"Tokens and scopes\")")
