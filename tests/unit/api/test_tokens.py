"""The tokens file: hashes not tokens, refusals naming the entry, revocation without a restart."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from orion.api.scopes import Scope
from orion.api.tokens import RELOAD_CHECK, TokenFileError, TokenSource, parse_book, read_book, token_hash
from orion.cli.main import main


def entry(name: str, scope: str, token: str) -> str:
    return f'[[token]]\nname = "{name}"\nscope = "{scope}"\nsha256 = "{token_hash(token)}"\n'


def test_a_token_is_found_by_its_hash_and_the_default_token_is_admin() -> None:
    book = parse_book(entry("ci", "write", "t-ci"), json_format=False, default_token="t-default")
    assert (book.token("t-ci").name, book.token("t-ci").scope) == ("ci", Scope.WRITE)
    assert (book.token("t-default").name, book.token("t-default").scope) == ("default", Scope.ADMIN)
    assert book.token("t-other") is None
    assert book.required and not parse_book("", json_format=False).required


def test_json_says_the_same() -> None:
    text = json.dumps({"token": [{"name": "ci", "scope": "read", "sha256": token_hash("x")}],
                       "certificate": [{"subject": "CN=a", "name": "a", "scope": "admin"}]})
    book = parse_book(text, json_format=True)
    assert book.token("x").scope == Scope.READ
    assert book.certificate("CN=a").scope == Scope.ADMIN


@pytest.mark.parametrize(("text", "says"), [
    ('[[token]]\nname = "ci"\nscope = "write"\n', "token[0].sha256: missing"),
    ('[[token]]\nname = "ci"\nscope = "write"\nsha256 = "abc"\n', "token[0].sha256: not 64 hex digits"),
    ('[[token]]\nname = "ci"\nscope = "root"\nsha256 = "' + "a" * 64 + '"\n', "token[0].scope: scope 'root'"),
    ('[[token]]\nname = "c i"\nscope = "read"\nsha256 = "' + "a" * 64 + '"\n', "token[0].name: 'c i'"),
    (entry("ci", "read", "a") + entry("ci", "read", "b"), "token[1].name: 'ci' is taken"),
    (entry("a", "read", "same") + entry("b", "read", "same"), "token[1].sha256: the same token as 'a'"),
    (entry("default", "read", "x"), "the agent's api_token is named so"),
    ('[[token]]\nname = "ci"\nscope = "read"\nsha256 = "' + "a" * 64 + '"\ntoken = "x"\n', "unknown key 'token'"),
    ("[[tokens]]\n", "unknown key 'tokens'"),
    ("token = 3\n", "token: a list of tables"),
    ("[[token\n", "not valid TOML"),
])
def test_a_bad_file_is_refused_naming_the_entry_and_field(text: str, says: str) -> None:
    with pytest.raises(TokenFileError) as refused:
        parse_book(text, json_format=False, default_token="d")
    assert says in str(refused.value)


def test_an_unreadable_file_names_itself(tmp_path: Path) -> None:
    with pytest.raises(TokenFileError, match=str(tmp_path / "missing.toml")):
        read_book(str(tmp_path / "missing.toml"))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_token_deleted_from_the_file_stops_working_and_a_broken_edit_keeps_the_last_good_file(
        tmp_path: Path) -> None:
    path = tmp_path / "tokens.toml"
    path.write_text(entry("ci", "write", "t-ci") + entry("bot", "read", "t-bot"))
    clock = Clock()
    source = TokenSource(str(path), "d", clock=clock)
    assert source.book().token("t-bot") is not None
    path.write_text(entry("ci", "write", "t-ci"))
    os.utime(path, ns=(1, 10**18))  # a new mtime even within the file system's resolution
    assert source.book().token("t-bot") is not None, "looked again before RELOAD_CHECK"
    clock.now += RELOAD_CHECK
    assert source.book().token("t-bot") is None
    path.write_text("[[token\n")
    os.utime(path, ns=(1, 2 * 10**18))
    clock.now += RELOAD_CHECK
    assert source.book().token("t-ci").name == "ci"


def test_orion_token_new_prints_a_token_whose_hash_is_the_entry() -> None:
    result = CliRunner().invoke(main, ["token", "new", "ci", "--scope", "write"])
    assert result.exit_code == 0, result.output
    token, *toml = result.stdout.splitlines()
    book = parse_book("\n".join(toml), json_format=False)
    assert (book.token(token).name, book.token(token).scope) == ("ci", Scope.WRITE)
    assert len(token) >= 43  # 32 random bytes, base64
    hashed = CliRunner().invoke(main, ["token", "hash"], input=token + "\n")
    assert hashed.stdout.strip() == token_hash(token)
    assert CliRunner().invoke(main, ["token", "new", "c i", "--scope", "read"]).exit_code == 2
