"""Reading the roles and playbooks as text, for the static convention tests.

Where a user-settable boolean is used without `| bool`, an INI inventory breaks
it: values under `[all:vars]` arrive as strings, so `"false"` is true inside
`{{ 'a' if x else 'b' }}`, and ansible-core 2.19 refuses `when: x` outright
("Conditional result (True) was derived from value of type 'str'").
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
# Keys whose value is a bare Jinja expression (no braces).
CONDITIONAL_KEYS = frozenset({"when", "changed_when", "failed_when", "until", "that"})
JINJA = re.compile(r"\{\{(.*?)\}\}|\{%(.*?)%\}", re.S)


@dataclass(frozen=True)
class Expression:
    where: str  # file and key, for the failure message
    text: str  # Jinja expression text


def ansible_files(root: Path = REPO) -> list[Path]:
    """Every task, handler, vars and playbook file and every template of the roles."""
    files = sorted((root / "playbooks").glob("*.yml"))
    for sub in ("tasks", "handlers", "vars"):
        files += sorted((root / "roles").glob(f"*/{sub}/*.yml"))
    return files + sorted((root / "roles").glob("*/templates/*.j2"))


def user_booleans(root: Path = REPO) -> set[str]:
    """Booleans a user can set: typed bool in a role's argument specs, or read somewhere
    with a boolean default (`x | default(false)`: playbook switches such as orion_purge)."""
    names: set[str] = set()
    for spec_file in (root / "roles").glob("*/meta/argument_specs.yml"):
        for spec in (yaml.safe_load(spec_file.read_text()).get("argument_specs") or {}).values():
            names |= {name for name, option in (spec.get("options") or {}).items() if option.get("type") == "bool"}
    pattern = re.compile(r"\b([a-z][a-z0-9_]*)\s*\|\s*default\(\s*(?:true|false|True|False)\s*\)")
    for path in ansible_files(root):
        found = pattern.findall(path.read_text())
        # orion__x / monitoring__x are the roles' internal values, not inputs.
        names |= {name for name in found if "__" not in name}
    return names


def _walk(node: object, where: str) -> Iterator[Expression]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in CONDITIONAL_KEYS:
                for item in value if isinstance(value, list) else [value]:
                    if isinstance(item, str):  # a literal true/false needs no conversion
                        yield Expression(f"{where} {key}:", item)
            else:
                yield from _walk(value, where)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item, where)
    elif isinstance(node, str):
        for match in JINJA.finditer(node):
            yield Expression(f"{where} (template)", match[1] or match[2])


def expressions(path: Path) -> Iterator[Expression]:
    """Every Jinja expression in a file: conditionals of tasks and the {{ }} / {% %} parts
    of every other string (YAML files), or of the whole text (templates)."""
    rel = str(path.relative_to(path.parents[2] if "roles" in path.parts else path.parents[1]))
    if path.suffix == ".j2":
        for match in JINJA.finditer(path.read_text()):
            yield Expression(rel, match[1] or match[2])
        return
    for doc in yaml.safe_load_all(path.read_text()):
        yield from _walk(doc, rel)


def unconverted_uses(expression: str, names: set[str]) -> list[str]:
    """Names used in the expression without `| bool` (an optional `| default(...)` between)."""
    bad = []
    for name in names:
        for match in re.finditer(rf"(?<![\w.'\"]){re.escape(name)}\b", expression):
            rest = expression[match.end():]
            if not re.match(r"\s*(\|\s*default\([^()]*\)\s*)?\|\s*bool\b", rest):
                bad.append(name)
    return sorted(set(bad))
