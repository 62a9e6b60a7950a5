"""Config templates: a config created with ``--template`` is rendered on the node that runs the
task, with that task's own values (Nomad's ``template``, kept small). Pure.

**Python's string.Template, not Jinja2.** A template is written by whoever may create configs and
rendered by every node's reconciler, on the thread that starts containers. string.Template only
substitutes: rendering is one pass, linear in the text, it cannot loop, call, or reach an
attribute, so no config can hang a node or read the agent's memory. Jinja2's sandbox blocks
attribute access but not a loop nested in a loop (ten billion iterations, no output), and its
sandbox has had escapes (CVE-2016-10745, CVE-2019-10906). What a loop would be for here — the
replicas of another service — is given ready-made as one comma-separated value, which is what
most config formats take (an upstream list, a seed list, a JDBC URL); a format that needs more
is the image's entrypoint's to build. Variables are checked when the config is created, so a
typo is a 400 naming it, not a task that fails on some node later.

Variables: ``${service}`` ``${slot}`` ``${task}`` ``${version}`` (the replica), ``${node}``
``${node_addr}`` (where it runs), ``${overlay_ip}`` (its overlay address, empty without one), and
``${endpoints:NAME}`` — ``host:port`` of each running replica of service NAME (its first
published port), sorted, comma-separated, empty when none runs. ``$$`` is a dollar sign. A file
is rendered once, when its container is created (Nomad's ``change_mode = "noop"``): a new
endpoint reaches it with the next replacement.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field

VARIABLES = ("service", "slot", "task", "version", "node", "node_addr", "overlay_ip")
ENDPOINTS = "endpoints"


class _Template(string.Template):
    # ${endpoints:web}: the braced form also takes a service name after a colon.
    braceidpattern = r"(?a:[_a-z][_a-z0-9]*(?::[A-Za-z0-9][A-Za-z0-9_.-]*)?)"


@dataclass(frozen=True)
class TemplateValues:
    """What one task's templates may read; ``endpoints``: service -> its replicas' host:port."""

    service: str = ""
    slot: str = ""
    task: str = ""
    version: str = ""
    node: str = ""
    node_addr: str = ""
    overlay_ip: str = ""
    endpoints: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def template_problem(text: str) -> str | None:
    """What is wrong with a template, or None: a lone ``$``, or a variable it does not know."""
    for match in _Template.pattern.finditer(text):
        if match.group("invalid") is not None:
            return (f"line {_line_of(text, match.start())}: '$' is not followed by a variable; "
                    "write $$ for a dollar sign")
        name = match.group("named") or match.group("braced")
        if name is None:
            continue
        kind, colon, service = name.partition(":")
        if colon and kind == ENDPOINTS and service:
            continue
        if name not in VARIABLES:
            known = ", ".join("${" + v + "}" for v in VARIABLES)
            return (f"line {_line_of(text, match.start())}: unknown variable ${{{name}}}; known: {known} "
                    "and ${endpoints:SERVICE}")
    return None


class _Values(Mapping[str, str]):
    def __init__(self, values: TemplateValues) -> None:
        self._v = values

    def __getitem__(self, key: str) -> str:
        kind, colon, service = key.partition(":")
        if colon and kind == ENDPOINTS:
            return ",".join(sorted(self._v.endpoints.get(service, ())))
        if key in VARIABLES:
            return str(getattr(self._v, key))
        raise KeyError(key)

    def __iter__(self):  # pragma: no cover - substitute only looks keys up
        return iter(VARIABLES)

    def __len__(self) -> int:  # pragma: no cover
        return len(VARIABLES)


def render(text: str, values: TemplateValues) -> str:
    """``text`` with every variable replaced; a ValueError naming the first problem."""
    problem = template_problem(text)
    if problem:
        raise ValueError(problem)
    return _Template(text).substitute(_Values(values))

