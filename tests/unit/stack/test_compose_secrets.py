"""Compose secrets and configs as Orion's (orion/stack/objects.py) and their plan (orion/stack/plan.py):
top-level entries become objects named as Swarm names them, service references become the API's
file references at Swarm's default paths, every wrong value is named at its key path by the
API's own checks, and a value is never in a finding, a note or a repr."""

from __future__ import annotations

from pathlib import Path

import pytest

from orion.defaults import MAX_SECRET_BYTES
from orion.domain.secrets import FileRef
from orion.stack.convert import Conversion
from orion.stack.findings import Findings
from orion.stack.load import ComposeFile, load, read_document
from orion.stack.objects import StackObject
from orion.stack.plan import Existing, ObjectAction, plan_objects

VALUE = b"hunter2-the-password"
HEAD = "services:\n  w:\n    image: busybox\n    mem_limit: 16m\n"


def read(text: str, files: dict | None = None, variables: dict | None = None) -> Conversion:
    findings = Findings()
    document = read_document(text, variables or {}, findings)
    return ComposeFile(None, document, variables or {}, findings=findings, files=files or {}).convert("app")


def files_of(c: Conversion) -> tuple[FileRef, ...]:
    return c.specs["app_w"].task.files


def test_top_level_entries_become_objects_named_as_swarm_names_them():
    c = read("""
services: {w: {image: busybox, mem_limit: 16m}}
secrets:
  db: {file: ./db.txt}
  token: {environment: TOKEN}
  shared: {external: true}
  legacy: {external: {name: old-name}}
  named: {file: ./db.txt, name: custom}
configs:
  site.conf: {content: "listen 80"}
  ext: {external: true, name: their.conf}
""", files={"./db.txt": VALUE}, variables={"TOKEN": "t0ken"})
    assert c.invalid == () and c.unsupported == ()
    got = {(o.kind, o.key): (o.name, o.data) for o in c.objects}
    assert got == {("secret", "db"): ("app_db", VALUE), ("secret", "token"): ("app_token", b"t0ken"),
                   ("secret", "shared"): ("shared", None), ("secret", "legacy"): ("old-name", None),
                   ("secret", "named"): ("custom", VALUE), ("config", "site.conf"): ("app_site.conf", b"listen 80"),
                   ("config", "ext"): ("their.conf", None)}
    site = next(o for o in c.objects if o.key == "site.conf")
    assert site.digest.startswith("sha256:") and next(o for o in c.objects if o.key == "db").digest == ""


def test_references_get_swarm_s_default_paths_and_the_long_form_s_fields():
    c = read(HEAD + """    secrets: [db, {source: tls, target: key.pem, mode: 0440, uid: "100", gid: "101"},
              {source: db, target: /etc/db.pw, mode: "0400"}]
    configs: [site.conf, {source: site.conf, target: conf/b.conf, mode: 0o644}]
secrets: {db: {file: db.txt}, tls: {external: true}}
configs: {site.conf: {content: x}}
""", files={"db.txt": VALUE})
    assert c.invalid == ()
    assert files_of(c) == tuple(sorted([
        FileRef("secret", "app_db", "/run/secrets/db", 0o400), FileRef("secret", "tls", "/run/secrets/key.pem",
                                                                       0o440, 100, 101),
        FileRef("secret", "app_db", "/etc/db.pw", 0o400), FileRef("config", "app_site.conf", "/site.conf", 0o444),
        FileRef("config", "app_site.conf", "/conf/b.conf", 0o644)]))


def test_a_mode_is_read_as_compose_reads_it():
    def mode(written: str) -> int:
        return files_of(read(HEAD + f"    secrets: [{{source: db, mode: {written}}}]\nsecrets: {{db: {{file: a}}}}\n",
                             files={"a": VALUE}))[0].mode
    assert [mode(m) for m in ("0440", "0o440", '"0440"', "288", "0400", "440")] == [
        0o440, 0o440, 0o440, 0o440, 0o400, 440]  # 440: decimal, as go-yaml reads it (0o670)


@pytest.mark.parametrize(("snippet", "path", "words"), [
    ("secrets: [nope]", "services.w.secrets[0]", "secret nope is not declared"),
    ("configs: [db]", "services.w.configs[0]", "config db is not declared"),
    ("secrets: [{source: db, target: ../../etc/shadow}]", "services.w.secrets[0].target", "'..'"),
    ("secrets: [{source: db, mode: \"0999\"}]", "services.w.secrets[0].mode", "not a file mode"),
    ("secrets: [{source: db, uid: \"-1\"}]", "services.w.secrets[0].uid", "user or group id"),
    ("secrets: [db, {source: db, target: /run/secrets/db}]", "services.w.secrets", "already used"),
])
def test_a_bad_reference_is_named_at_its_key_path(snippet, path, words):
    c = read(HEAD + f"    {snippet}\nsecrets: {{db: {{file: db.txt}}}}\n", files={"db.txt": VALUE})
    assert [i.path for i in c.invalid] == [path] and words in c.invalid[0].message, c.invalid
    assert c.specs == {}


@pytest.mark.parametrize(("entry", "files", "path", "words"), [
    ("{file: ./missing.txt}", {"./missing.txt": None}, "secrets.db.file", "no such file"),
    ("{environment: UNSET}", {}, "secrets.db.environment", "UNSET is not set"),
    ("{file: ./empty}", {"./empty": b""}, "secrets.db", "is empty"),
    ("{file: ./big}", {"./big": b"x" * (MAX_SECRET_BYTES + 1)}, "secrets.db", f"at most {MAX_SECRET_BYTES}"),
    ("{name: 'bad/name', file: ./db.txt}", {"./db.txt": VALUE}, "secrets.db", "bad/name"),
    ("{driver: vault}", {}, "secrets.db", "file or environment, or external: true"),
])
def test_a_top_level_entry_without_a_usable_value_is_named(entry, files, path, words):
    c = read(HEAD + f"secrets:\n  db: {entry}\n", files=files)
    assert path in [i.path for i in c.invalid] and any(words in i.message for i in c.invalid), c.invalid


def test_drivers_labels_and_template_drivers_are_keys_orion_cannot_honour():
    c = read(HEAD + """secrets: {db: {file: a, labels: {x: y}, driver: vault, driver_opts: {k: v}}}
configs: {c: {content: x, template_driver: golang}}
""", files={"a": VALUE})
    assert sorted(u.path for u in c.unsupported) == ["configs.c.template_driver", "secrets.db.driver",
                                                      "secrets.db.driver_opts", "secrets.db.labels"]
    assert {o.name for o in c.objects} == {"app_db", "app_c"}


def test_the_value_is_in_no_finding_note_or_repr():
    c = read(HEAD + "    secrets: [db, nope]\n    configs: [{source: c, target: ../x}]\nsecrets: {db: {file: a, "
             "labels: {k: v}}}\nconfigs: {c: {content: x}}\n", files={"a": VALUE})
    shown = repr(c) + "".join(map(str, (*c.invalid, *c.unsupported, *c.notes)))
    assert c.invalid and VALUE.decode() not in shown and "hunter2" not in shown


def test_the_loader_reads_each_file_beside_the_compose_file(tmp_path: Path):
    (tmp_path / "pw").write_bytes(VALUE)
    (tmp_path / "docker-compose.yml").write_text(HEAD + "    secrets: [db]\nsecrets: {db: {file: ./pw}}\n"
                                                 "configs: {gone: {file: ./gone.conf}}\n")
    c = load(tmp_path / "docker-compose.yml", environ={}).convert("app")
    assert [(i.path, i.message) for i in c.invalid] == [("configs.gone.file",
                                                          "./gone.conf: no such file beside the compose file")]
    assert next(o for o in c.objects if o.key == "db").data == VALUE


def test_the_example_db_reads_its_secret_at_swarm_s_path():
    folder = Path(__file__).resolve().parents[2] / "data" / "compose"
    c = load(folder / "07-nginx-flask-mysql.yml", environ={}).convert("ex", default_memory="256M")
    assert [(f.source, f.target) for f in c.specs["ex_db"].task.files] == [("ex_db-password",
                                                                           "/run/secrets/db-password")]


def obj(kind: str, name: str, data: bytes | None = VALUE, digest: str = "") -> StackObject:
    return StackObject(kind, name.removeprefix("app_"), name, f"{kind}s.{name}", data, digest)


def test_the_plan_creates_new_ones_compares_configs_and_leaves_secrets_to_the_cluster():
    objects = (obj("secret", "app_new"), obj("secret", "app_db"), obj("config", "app_same", b"x", "sha256:1"),
               obj("config", "app_changed", b"y", "sha256:2"), obj("secret", "shared", None))
    existing = {("secret", "app_db"): Existing("secret", "app_db", 3, "hmac-sha256:9"),
                ("config", "app_same"): Existing("config", "app_same", 1, "sha256:1"),
                ("config", "app_changed"): Existing("config", "app_changed", 4, "sha256:1"),
                ("secret", "shared"): Existing("secret", "shared", 2, "hmac-sha256:8")}
    steps, missing = plan_objects(objects, existing)
    assert [(s.action, s.obj.name, s.version, s.sends) for s in steps] == [
        (ObjectAction.CREATE, "app_new", None, True), (ObjectAction.PUT, "app_db", 3, True),
        (ObjectAction.UNCHANGED, "app_same", 1, False), (ObjectAction.UPDATE, "app_changed", 4, True),
        (ObjectAction.USE, "shared", 2, False)]
    assert missing == ()


def test_a_missing_external_one_is_named_with_the_fix():
    steps, missing = plan_objects((obj("config", "shared", None),), {("secret", "shared"): Existing(
        "secret", "shared", 1, "d")})
    assert steps == () and [str(m) for m in missing] == [
        "configs.shared: external config shared does not exist; create it first (orion config create shared "
        "-f FILE), or give the file's entry a file"]
