"""Static checks of how the roles and playbooks use their inputs: fast, no lab.

- every user-settable boolean goes through `| bool` (INI inventories hand them over as strings);
- every call to an agent's API sends the token and checks the fleet CA.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from role_conventions import REPO, ansible_files, expressions, unconverted_uses, user_booleans


def test_the_walker_finds_the_booleans_and_the_conditionals() -> None:
    names = user_booleans()
    # Typed bool in the argument specs, and a playbook switch read with a boolean default.
    assert {"orion_wheelhouse", "orion_firewall_manage", "orion_tls", "orion_purge"} <= names
    whens = [e for path in ansible_files() for e in expressions(path) if e.where.endswith("when:")]
    assert len(whens) > 20


@pytest.mark.parametrize(("expression", "bad"), [
    ("orion_wheelhouse", ["orion_wheelhouse"]),
    ("not orion_wheelhouse", ["orion_wheelhouse"]),
    ("orion_wheelhouse | bool", []),
    ("orion_purge | default(false) | bool", []),
    ("orion_purge | default(false)", ["orion_purge"]),
    ("'1' if orion_wheelhouse else '0'", ["orion_wheelhouse"]),
    ("orion_tls_days | int", []),
    ("hostvars[h].orion_wheelhouse is defined", []),
])
def test_unconverted_uses_reads_an_expression(expression: str, bad: list[str]) -> None:
    assert unconverted_uses(expression, {"orion_wheelhouse", "orion_purge", "orion_tls"}) == bad


def test_every_user_boolean_goes_through_bool() -> None:
    names = user_booleans()
    found = [f"{e.where} {e.text.strip()!r} uses {', '.join(bad)} without | bool"
             for path in ansible_files() for e in expressions(path)
             if (bad := unconverted_uses(e.text, names))]
    assert not found, "\n".join(found)


def _tasks(node: object) -> list[dict]:
    out: list[dict] = []
    if isinstance(node, dict):
        if "ansible.builtin.uri" in node or "uri" in node:
            out.append(node)
        for value in node.values():
            out += _tasks(value)
    elif isinstance(node, list):
        for item in node:
            out += _tasks(item)
    return out


def uri_tasks() -> list[tuple[Path, dict]]:
    return [(path, task) for path in ansible_files() if path.suffix == ".yml"
            for doc in yaml.safe_load_all(path.read_text()) for task in _tasks(doc)]


def test_every_api_call_sends_the_token_and_checks_the_ca() -> None:
    calls = uri_tasks()
    assert len(calls) >= 8
    missing = []
    for path, task in calls:
        args = task.get("ansible.builtin.uri") or task.get("uri")
        if "orion__auth_headers" not in str(args.get("headers", "")):
            missing.append(f"{path.relative_to(REPO)}: {task['name']!r} sends no Authorization header")
        if "ca_path" not in args:
            missing.append(f"{path.relative_to(REPO)}: {task['name']!r} does not check the fleet CA (ca_path)")
        elif "orion_secrets_dir" in str(args["ca_path"]):
            # uri runs on the managed host: the controller's copy of the CA is not there.
            missing.append(f"{path.relative_to(REPO)}: {task['name']!r} points ca_path at the controller")
    assert not missing, "\n".join(missing)
