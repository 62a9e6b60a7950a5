"""Variable interpolation and ``.env`` as Compose does them (compose-spec, "Interpolation")."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orion.stack.findings import Findings
from orion.stack.interpolate import InterpolationError, interpolate, parse_dotenv, substitute

ENV = {"TAG": "1.25", "EMPTY": "", "USER": "ana"}


@pytest.mark.parametrize(("text", "expected"), [
    ("nginx:$TAG", "nginx:1.25"),
    ("nginx:${TAG}", "nginx:1.25"),
    ("${MISSING}", ""),
    ("${MISSING:-1.24}", "1.24"),
    ("${EMPTY:-fallback}", "fallback"),
    ("${EMPTY-fallback}", ""),
    ("${MISSING-fallback}", "fallback"),
    ("${TAG:+set}", "set"),
    ("${EMPTY:+set}", ""),
    ("${EMPTY+set}", "set"),
    ("${MISSING+set}", ""),
    ("${MISSING:-${USER:-x}-home}", "ana-home"),
    ("$$HOME and $${TAG}", "$HOME and ${TAG}"),
    ("${TAG:?must be set}", "1.25"),
    ("a$USER.b", "aana.b"),
    ("no variables", "no variables"),
])
def test_substitution_follows_compose(text, expected):
    assert substitute(text, ENV) == expected


@pytest.mark.parametrize(("text", "says"), [
    ("${MISSING:?set MISSING first}", "required variable MISSING is missing a value: set MISSING first"),
    ("${EMPTY:?}", "EMPTY is missing a value: is empty"),
    ("${MISSING?}", "is not set"),
    ("echo $1", "invalid interpolation format"),
    ("${TAG", "without its }"),
    ("${1x}", "does not start with a variable name"),
    ("${TAG/x}", "use :-, -, :?, ?, :+ or +"),
])
def test_bad_interpolation_is_an_error_naming_the_problem(text, says):
    with pytest.raises(InterpolationError) as exc:
        substitute(text, ENV)
    assert says in str(exc.value)


def test_the_document_has_its_values_substituted_its_keys_kept_and_each_error_named_at_its_path():
    findings = Findings()
    doc = {"services": {"${TAG}": {"image": "app:${TAG}", "command": ["echo", "$USER", 3],
                                   "environment": {"A": "${NOPE}", "B": "${NOPE:?needed}"}}}}
    out = interpolate(doc, ENV, findings)
    svc = out["services"]["${TAG}"]
    assert svc["image"] == "app:1.25" and svc["command"] == ["echo", "ana", 3]
    assert [str(i) for i in findings.invalid] == [
        "services.${TAG}.environment.B: required variable NOPE is missing a value: needed"]
    assert findings.notes == ["services.${TAG}.environment.A: variable NOPE is not set: an empty string is used"]


def test_dotenv_reads_comments_export_quotes_escapes_and_earlier_lines():
    text = """
# a comment
export TAG=1.25   # trailing comment
NAME = "web ${TAG}\\n"
RAW='${TAG} stays'
URL=http://x/#anchor
BARE
FROM_ENV
EMPTY=
"""
    assert parse_dotenv(text, {"FROM_ENV": "outside"}) == {
        "TAG": "1.25", "NAME": "web 1.25\n", "RAW": "${TAG} stays", "URL": "http://x/#anchor",
        "FROM_ENV": "outside", "EMPTY": ""}


@pytest.mark.parametrize(("text", "says"), [("1X=2", "not a variable name"), ("A='open", "closing '"),
                                            ('A="open', 'closing "'), ("A=${B:?need B}", "line 1: required")])
def test_a_bad_dotenv_line_is_named(text, says):
    with pytest.raises(InterpolationError) as exc:
        parse_dotenv(text, {}, "app/.env")
    assert says in str(exc.value) and ("app/.env" in str(exc.value) or "not a variable" in str(exc.value))


@given(st.text(alphabet=st.characters(blacklist_characters="$"), max_size=40))
def test_text_without_a_dollar_is_left_alone(text):
    assert substitute(text, ENV) == text


@given(st.text(max_size=30))
def test_an_escaped_text_reads_back_as_itself(text):
    assert substitute(text.replace("$", "$$"), ENV) == text
