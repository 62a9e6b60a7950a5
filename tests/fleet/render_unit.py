"""Render roles/orion/templates/orion.service.j2 with the role's defaults.

The role's template is the source of truth for the unit; systemd/orion.service
is this rendering, kept in the repo so that people who do not use Ansible (and
`systemd-analyze`) can read the unit as installed. The lint test fails when the
two drift apart; `python tests/fleet/render_unit.py --write` brings them back.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import jinja2
import yaml

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "roles/orion/templates/orion.service.j2"
DEFAULTS = REPO / "roles/orion/defaults/main.yml"
REFERENCE = REPO / "systemd/orion.service"
# What Ansible puts in {{ ansible_managed }} by default.
ANSIBLE_MANAGED = "Ansible managed"
TRUE_STRINGS = frozenset({"yes", "on", "1", "true", "y", "t"})


def render_unit(overrides: dict[str, object] | None = None) -> str:
    """The unit as the role would install it with its defaults (plus overrides)."""
    env = jinja2.Environment(keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    env.filters["regex_replace"] = lambda value, pattern, repl: re.sub(pattern, repl, str(value))
    # Ansible's bool: the strings an INI inventory hands over count too.
    env.filters["bool"] = lambda value: value if isinstance(value, bool) else str(value).lower() in TRUE_STRINGS
    variables = dict(yaml.safe_load(DEFAULTS.read_text()))
    variables.update(overrides or {})
    return env.from_string(TEMPLATE.read_text()).render(ansible_managed=ANSIBLE_MANAGED, **variables)


def main(argv: list[str]) -> int:
    text = render_unit()
    if "--write" in argv:
        REFERENCE.write_text(text)
        print(f"wrote {REFERENCE.relative_to(REPO)}")
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
