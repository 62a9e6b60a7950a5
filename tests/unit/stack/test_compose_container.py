"""A compose service's container settings as Orion's: every key of the Compose Specification that a
node honours maps to the service's ``ContainerSettings``, in the shapes Compose allows; a value the
API's parser refuses is named at its own key path, in the API's words, never a traceback."""

from __future__ import annotations

import pytest
from test_compose_convert import read

from orion.api.schema.services import parse_service_request
from orion.api.service_views import spec_body
from orion.domain.container import ContainerSettings, Device, Logging, Tmpfs, Ulimit
from orion.stack.plan import Action, Running, plan

MiB = 1 << 20
EVERY_KEY = """
services:
  w:
    image: busybox
    mem_limit: 16m
    user: "1000:1000"
    working_dir: /srv/app
    entrypoint: /bin/sh -c
    cap_add: [NET_ADMIN, SYS_TIME]
    cap_drop: [MKNOD]
    devices: ["/dev/fuse:/dev/fuse:rw", {source: /dev/zero, target: /dev/z, permissions: r}]
    labels: {com.example.team: payments, tier: 1}
    logging: {driver: json-file, options: {max-size: 10m, max-file: 3}}
    stop_signal: SIGUSR1
    stop_grace_period: 1m30s
    init: true
    ulimits: {nproc: 512, nofile: {soft: 1024, hard: 4096}}
    read_only: true
    tmpfs: ["/run:size=8M,mode=1770", /tmp]
    hostname: web-1
    extra_hosts: ["db:10.0.0.5"]
    shm_size: 64m
    sysctls: {net.core.somaxconn: 1024}
    cpu_shares: 512
    privileged: true
"""


def settings(snippet: str) -> ContainerSettings:
    c = read(f"services:\n  w:\n    image: busybox\n    mem_limit: 16m\n    {snippet}\n")
    assert (c.invalid, c.unsupported) == ((), ()), (c.invalid, c.unsupported)
    return c.specs["app_w"].task.container


def test_every_container_key_of_compose_reaches_the_services_settings():
    c = read(EVERY_KEY)
    assert (c.invalid, c.unsupported) == ((), ())
    assert c.specs["app_w"].task.container == ContainerSettings(
        user="1000:1000", working_dir="/srv/app", entrypoint=("/bin/sh", "-c"), cap_add=("NET_ADMIN", "SYS_TIME"),
        cap_drop=("MKNOD",), privileged=True,
        devices=(Device("/dev/fuse", "/dev/fuse", "rw"), Device("/dev/zero", "/dev/z", "r")),
        labels=(("com.example.team", "payments"), ("tier", "1")),
        logging=Logging("json-file", (("max-file", "3"), ("max-size", "10m"))), stop_signal="SIGUSR1",
        stop_grace_period=90.0, init=True, ulimits=(Ulimit("nofile", 1024, 4096), Ulimit("nproc", 512, 512)),
        read_only=True, tmpfs=(Tmpfs("/run", 8 * MiB, 0o1770), Tmpfs("/tmp")), hostname="web-1",
        extra_hosts=(("db", "10.0.0.5"),), shm_size=64 * MiB, sysctls=(("net.core.somaxconn", "1024"),),
        cpu_shares=512)
    # Where such replicas can go is placement's question, said once.
    assert any("--host-device" in n for n in c.notes) and any("--allow-privileged" in n for n in c.notes)


def test_the_same_file_again_plans_no_change_with_every_setting():
    c = read(EVERY_KEY)
    spec = c.specs["app_w"]
    back = parse_service_request("app_w", spec_body(spec))  # what GET /stacks/<name> gives the CLI
    step = plan("app", c.specs, {"app_w": Running("app_w", 1, back)}, {}, prune=False).steps[0]
    assert step.action == Action.UNCHANGED


@pytest.mark.parametrize(("snippet", "expected"), [
    ("labels: [com.example.team=payments, bare]", {"labels": (("bare", ""), ("com.example.team", "payments"))}),
    ("sysctls: [net.core.somaxconn=1024]", {"sysctls": (("net.core.somaxconn", "1024"),)}),
    ("extra_hosts: {db: [10.0.0.5, 10.0.0.6], cache: 10.0.0.7}",
     {"extra_hosts": (("cache", "10.0.0.7"), ("db", "10.0.0.5"), ("db", "10.0.0.6"))}),
    ("extra_hosts: ['v6=fd00::1']", {"extra_hosts": (("v6", "fd00::1"),)}),
    ("init: 'false'", {"init": False}), ("read_only: 'yes'", {"read_only": True}),
    ("privileged: 'off'", {"privileged": False}),
    ("cpu_shares: '256'", {"cpu_shares": 256}),
    ("ulimits: {nofile: {soft: '100', hard: '200'}, core: '0'}",
     {"ulimits": (Ulimit("core", 0, 0), Ulimit("nofile", 100, 200))}),
    ("entrypoint: ''", {"entrypoint": ()}), ("entrypoint: []", {"entrypoint": ()}),
    ("entrypoint: [tini, --]", {"entrypoint": ("tini", "--")}),
    ("tmpfs: /run", {"tmpfs": (Tmpfs("/run"),)}),
    ("logging: {driver: local}", {"logging": Logging("local")}),
    ("stop_signal: TERM", {"stop_signal": "SIGTERM"}),
])
def test_the_shapes_compose_allows_are_read_as_compose_reads_them(snippet, expected):
    assert settings(snippet) == ContainerSettings(**expected)


@pytest.mark.parametrize(("snippet", "path", "says"), [
    ("cap_add: [NET_ADMIN, NET_ADMINX]", "services.w.cap_add[1]", "not a Linux capability"),
    ("cap_drop: [CHOWN, CAP_CHOWN]", "services.w.cap_drop[1]", "already listed"),
    ("user: 'root user'", "services.w.user", "not a user"),
    ("working_dir: srv", "services.w.working_dir", "absolute path"),
    ("entrypoint: 'sh -c \"unclosed'", "services.w.entrypoint", ""),
    ("devices: ['/dev/fuse:/dev/fuse:rwx']", "services.w.devices[0]", "permissions"),
    ("labels: {orion.task: x}", "services.w.labels.orion.task", "orion."),
    ("labels: [orion.task=x]", "services.w.labels", "orion.task"),
    ("logging: {driver: 'json file'}", "services.w.logging.driver", "not a log driver"),
    ("stop_signal: SIGNOPE", "services.w.stop_signal", "not a Linux signal"),
    ("stop_grace_period: forever", "services.w.stop_grace_period", "not a duration"),
    ("init: maybe", "services.w.init", "true or false"),
    ("ulimits: {nofile: {soft: 4096, hard: 1024}}", "services.w.ulimits.nofile", "above hard"),
    ("ulimits: {nofiles: 10}", "services.w.ulimits.nofiles", "not a ulimit"),
    ("tmpfs: [run]", "services.w.tmpfs[0]", "absolute path"),
    ("hostname: web_1", "services.w.hostname", "not a hostname"),
    ("extra_hosts: ['db:not-an-ip']", "services.w.extra_hosts[0]", ""),
    ("extra_hosts: {db: not-an-ip}", "services.w.extra_hosts.db", "not an IP address"),
    ("extra_hosts: {db: [10.0.0.1, not-an-ip]}", "services.w.extra_hosts", "'not-an-ip' is not an IP address"),
    ("shm_size: lots", "services.w.shm_size", "not a size"),
    ("sysctls: {kernel.pid_max: 100}", "services.w.sysctls.kernel.pid_max", ""),
    ("cpu_shares: 1", "services.w.cpu_shares", ""),
    ("cap_add: [NET_ADMIN]\n    cap_drop: [NET_ADMIN]", "services.w.cap_add", "also in capDrop"),
])
def test_a_value_orions_parser_refuses_is_named_at_its_key_path(snippet, path, says):
    c = read(f"services:\n  w:\n    image: busybox\n    mem_limit: 16m\n    {snippet}\n  ok:\n"
             "    image: busybox\n    mem_limit: 16m\n")
    assert "app_w" not in c.specs and "app_ok" in c.specs  # the other service still converts
    assert [i.path for i in c.invalid] == [path], c.invalid
    assert says in c.invalid[0].message


def test_every_bad_value_of_a_service_is_named_not_just_the_first():
    c = read("services:\n  w:\n    image: busybox\n    mem_limit: 16m\n    user: 'a b'\n    hostname: -x\n"
             "    cpu_shares: 1\n")
    assert [i.path for i in c.invalid] == ["services.w.user", "services.w.hostname", "services.w.cpu_shares"]


@pytest.mark.parametrize(("snippet", "path"), [
    ("logging: {options: {max-size: 1m}}", "services.w.logging"),
    ("devices: ['nvidia.com/gpu=all']", "services.w.devices[0]"),
    ("security_opt: ['no-new-privileges:true']", "services.w.security_opt"),
    ("pids_limit: 100", "services.w.pids_limit"),
    ("dns: [1.1.1.1]", "services.w.dns"),
])
def test_container_keys_orion_does_not_pass_are_still_named(snippet, path):
    c = read(f"services:\n  w:\n    image: busybox\n    mem_limit: 16m\n    {snippet}\n")
    assert c.invalid == () and path in [u.path for u in c.unsupported], c.unsupported
