"""Every file path the prose names exists, so a move or a rename cannot leave a stale pointer.

Read: ``docs/*.md`` and ``README.md``; the docstrings and comments of ``orion/``; the
docstrings of ``tests/`` and ``bench/`` (their string literals may name files that
do not exist on purpose, as the layering test's own fixtures do). A path is a
repository-relative ``orion/``, ``tests/``, ``docs/``, ``scripts/`` or ``bench/`` path
ending in ``.py``, ``.md`` or ``.sh``. After moving a module, fix what this lists.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Paths named on purpose though gone: (the file naming it, the path) -> why.
HISTORICAL = {
    ("bench/api_validation.py", "orion/api/validation.py"): "the benchmark reads it from an old commit",
}
PATH = re.compile(r"(?<![\w./-])((?:orion|tests|docs|scripts|bench)/[\w./-]*?\.(?:py|md|sh))(?![\w/])")


def paths_in(text: str) -> Iterator[str]:
    yield from (m.group(1) for m in PATH.finditer(text))


def docstrings(source: str) -> Iterator[tuple[int, str]]:
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                yield body[0].lineno, body[0].value.value


def comments(source: str) -> Iterator[tuple[int, str]]:
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            yield token.start[0], token.string


def mentions() -> Iterator[tuple[str, str]]:
    """(where, path) for every path the prose names."""
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for number, line in enumerate(doc.read_text().splitlines(), 1):
            for path in paths_in(line):
                yield f"{doc.relative_to(ROOT)}:{number}", path
    for folder, with_comments in (("orion", True), ("tests", False), ("bench", False)):
        for module in sorted((ROOT / folder).rglob("*.py")):
            source = module.read_text()
            texts = [*docstrings(source), *(comments(source) if with_comments else [])]
            for number, text in texts:
                for path in paths_in(text):
                    yield f"{module.relative_to(ROOT)}:{number}", path


def test_every_path_the_docs_and_docstrings_name_exists() -> None:
    stale = [f"{where} names {path}" for where, path in mentions()
             if not (ROOT / path).exists() and (where.partition(":")[0], path) not in HISTORICAL]
    assert stale == [], "\n".join(stale)


def test_the_check_finds_paths_in_prose_and_can_fail() -> None:
    text = "see ``orion/api/app.py``, (orion/state/machine.py) and docs/api.md; not xorion/a.py or orion/a.pyc"
    assert list(paths_in(text)) == ["orion/api/app.py", "orion/state/machine.py", "docs/api.md"]
    assert not (ROOT / "orion/state/example.py").exists()
    source = '"""Module doc naming orion/state/example.py."""\n# and a comment: orion/x.py\nx = "orion/y.py"\n'
    found = [p for _, text in [*docstrings(source), *comments(source)] for p in paths_in(text)]
    assert found == ["orion/state/example.py", "orion/x.py"]
