"""What a task's start needs from the state (orion/node/task_files.py): the mount plan, secret
environment, registry credentials; and why it cannot start, never with a value in the sentence."""

from __future__ import annotations

import base64

from orion.domain.model import RUNNING, NodeInfo, Task, TaskSpec
from orion.domain.sealing import digest, parse_keyring, seal
from orion.domain.secrets import EnvSecret, FileRef, RegistryAuth, StoredObject, StoredVersion
from orion.node.task_files import Blocked, Prepared, plan, registry_auth, template_values
from orion.node.templates import TemplateValues

RING = parse_keyring(base64.b64encode(bytes(range(32))).decode())
OTHER = parse_keyring(base64.b64encode(bytes(range(1, 33))).decode())
VALUE = b"s3cret-password"


def secret(name: str, *versions: bytes) -> StoredObject:
    return StoredObject("secret", name, tuple(StoredVersion(i, 1.0, len(v), digest(RING, v),
                                                            seal(RING, v, "secret", name))
                                              for i, v in enumerate(versions, start=1)))


def config(name: str, text: str, template: bool = False) -> StoredObject:
    return StoredObject("config", name, (StoredVersion(1, 1.0, len(text), "sha256:x",
                                                       base64.b64encode(text.encode()).decode(), template),))


OBJECTS = {("secret", "db"): secret("db", b"old", VALUE), ("config", "app.conf"): config("app.conf", "port=80\n"),
           ("config", "up.tmpl"): config("up.tmpl", "me=${service}.${slot} db=${endpoints:db}\n", template=True)}
SPEC = TaskSpec("registry.local:5000/web:1", 64 << 20, files=(
    FileRef("config", "app.conf", "/etc/app.conf", 0o444, version=1),
    FileRef("config", "up.tmpl", "/etc/up.conf", 0o440, 101, 102, version=1),
    FileRef("secret", "db", "/run/secrets/db", 0o400, 1000, 1000, version=2)),
    secret_env=(EnvSecret("DB_PASSWORD", "db", 2),))
VALUES = TemplateValues(service="web", slot="1", endpoints={"db": ("10.0.0.2:5432",)})


def test_the_plan_holds_each_file_with_its_mode_owner_and_the_pinned_version():
    prepared = plan(SPEC, OBJECTS, {}, RING, VALUES)
    assert isinstance(prepared, Prepared)
    files = {f.target: f for f in prepared.files}
    assert files["/run/secrets/db"].content == VALUE  # version 2, not the old value
    assert (files["/run/secrets/db"].mode, files["/run/secrets/db"].uid, files["/run/secrets/db"].gid) == \
        (0o400, 1000, 1000)
    assert files["/etc/app.conf"].content == b"port=80\n"
    assert files["/etc/up.conf"].content == b"me=web.1 db=10.0.0.2:5432\n"
    assert (files["/etc/up.conf"].mode, files["/etc/up.conf"].uid) == (0o440, 101)
    assert prepared.env == (("DB_PASSWORD", VALUE.decode()),) and prepared.auth is None


def test_no_repr_of_what_a_start_carries_shows_a_value():
    prepared = plan(SPEC, OBJECTS, {}, RING, VALUES)
    assert VALUE.decode() not in repr(prepared) and VALUE.decode() not in str(prepared.files)


def test_a_node_without_the_key_cannot_start_it_and_another_node_may():
    blocked = plan(SPEC, OBJECTS, {}, None, VALUES)
    assert isinstance(blocked, Blocked) and not blocked.waits and "no cluster key" in blocked.reason
    blocked = plan(SPEC, OBJECTS, {}, OTHER, VALUES)
    assert isinstance(blocked, Blocked) and not blocked.waits
    assert f"sealed with cluster key {RING.primary_id}" in blocked.reason


def test_a_version_no_longer_kept_makes_the_task_wait_naming_it():
    gone = {**OBJECTS, ("secret", "db"): secret("db", b"only one")}
    blocked = plan(SPEC, gone, {}, RING, VALUES)
    assert isinstance(blocked, Blocked) and blocked.waits
    assert blocked.reason.startswith("secret db version 2 no longer exists")


def test_a_binary_secret_cannot_be_an_environment_variable():
    binary = {**OBJECTS, ("secret", "db"): secret("db", b"x", b"\xff\xfe")}
    blocked = plan(SPEC, binary, {}, RING, VALUES)
    assert isinstance(blocked, Blocked) and "not UTF-8" in blocked.reason and "\xff" not in blocked.reason


def test_a_pull_from_a_registry_with_credentials_gets_them_and_other_registries_none():
    stored = {"registry.local:5000": RegistryAuth("registry.local:5000", "ci",
                                                  seal(RING, b"tok", "registry", "registry.local:5000"), "d", 1.0)}
    assert registry_auth("registry.local:5000/web:1", stored, RING) == {
        "username": "ci", "password": "tok", "serveraddress": "registry.local:5000"}
    assert registry_auth("nginx:1.25", stored, RING) is None
    assert isinstance(registry_auth("registry.local:5000/web:1", stored, None), Blocked)


def test_template_values_name_the_task_its_node_and_running_replicas_of_other_services():
    nodes = {"n1": NodeInfo("n1", "10.0.0.1:8000", ""), "n2": NodeInfo("n2", "10.0.0.2:8000", "")}
    db = [Task("db.0.d1", TaskSpec("pg", 1), state=RUNNING, node_id="n2", service="db",
               host_ports=(("5432/tcp", 31000),)),
          Task("db.1.d1", TaskSpec("pg", 1), state="assigned", node_id="n1", service="db")]
    me = Task("web.3.d2", TaskSpec("web", 1), node_id="n1", service="web", slot=3, version=2)
    values = template_values(me, "n1", nodes, db, overlay_ip="10.200.0.9")
    assert values == TemplateValues(service="web", slot="3", task="web.3.d2", version="2", node="n1",
                                    node_addr="10.0.0.1", overlay_ip="10.200.0.9",
                                    endpoints={"db": ("10.0.0.2:31000",)})
