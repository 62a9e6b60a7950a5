"""docs/api.md lists every operation the OpenAPI document has, and every field of a task request:
a route or a field added to the document (which test_openapi.py ties to the app) without a line
for people fails here."""

from __future__ import annotations

import re
from pathlib import Path

from orion.api.schema.openapi import PREFIX, openapi_document
from orion.api.schema.tasks import TaskRequest

API_MD = Path(__file__).resolve().parents[3] / "docs" / "api.md"
# A table row's first cell: `METHOD /path<param>[?query]`.
ROW = re.compile(r"^\|\s*`(GET|POST|PUT|PATCH|DELETE) (/[^`\[?]*)")


def shape(path: str) -> str:
    """``/v1/tasks/{task_id}`` and ``/tasks/<id>`` both read ``/tasks/<>``."""
    return re.sub(r"\{[^}]*\}|<[^>]*>", "<>", path.removeprefix(PREFIX))


def documented_in_markdown(text: str) -> set[tuple[str, str]]:
    return {(m.group(1), shape(m.group(2).strip())) for line in text.splitlines() if (m := ROW.match(line))}


def test_docs_api_md_lists_every_operation_of_the_document() -> None:
    listed = documented_in_markdown(API_MD.read_text())
    operations = {(method.upper(), shape(path)) for path, item in openapi_document()["paths"].items()
                  for method in item}
    assert operations - listed == set(), "in /v1/openapi.json but not in docs/api.md's table"
    assert listed - operations == set(), "in docs/api.md's table but not served"


def test_the_check_reads_rows_as_written() -> None:
    rows = "| `GET /tasks[?state=S]` | x |\n| `POST /services/<name>/rollback[?version=N]` | y |\nnot a row"
    assert documented_in_markdown(rows) == {("GET", "/tasks"), ("POST", "/services/<>/rollback")}


def task_request_fields(text: str) -> set[str]:
    """The field names in the first cell of each row of the "Task request" table."""
    section = text.split("## Task request", 1)[1].split("\n## ", 1)[0]
    cells = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
    return {name for cell in cells for name in re.findall(r"`([A-Za-z]+)`", cell)}


def test_docs_api_md_documents_every_field_of_a_task_request():
    documented = task_request_fields(API_MD.read_text())
    assert set(TaskRequest.KNOWN) - documented == set(), "a request field without a row in docs/api.md"
    assert documented - set(TaskRequest.KNOWN) == set(), "a row for a field the API does not take"
    assert task_request_fields("## Task request\n| `a`, `bC` | x |\n## Next\n| `z` | y |") == {"a", "bC"}
