"""The container settings (user, capabilities, devices, ulimits, ...): each refused with a 400 naming
the field and the item, the same in a task and a service; every valid value goes request ->
``ContainerSettings`` -> the engine's create arguments unchanged (a hypothesis property checked
against the docker SDK's own ``HostConfig``/``ContainerConfig``, the JSON the engine receives); a
spec change to any of them replaces a service's replicas, naming it."""

from __future__ import annotations

import ipaddress
import math
import string

import pytest
from docker.types import ContainerConfig, HostConfig
from hypothesis import given, settings
from hypothesis import strategies as st

from orion.api.schema.container import container_body
from orion.api.schema.problems import ValidationError
from orion.api.schema.services import parse_service_request
from orion.api.schema.tasks import parse_task_request
from orion.api.service_views import spec_body
from orion.api.views import task_view
from orion.domain.container import (
    CAPABILITIES,
    SIGNALS,
    TMPFS_FLAGS,
    ULIMITS,
    ContainerSettings,
    Device,
    Logging,
    Tmpfs,
    Ulimit,
)
from orion.domain.model import Task, TaskSpec
from orion.domain.spec_diff import spec_diff
from orion.runtime import RuntimeFailure
from orion.runtime.create import NodePolicy, create_args

BASE = {"image": "nginx:1.25", "memory": "64M"}
API_VERSION = "1.41"  # Docker 20.10's, the engine CI runs


def refused(**fields) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        parse_task_request({**BASE, **fields})
    return info.value


def settings_of(**fields) -> ContainerSettings:
    return parse_task_request({**BASE, **fields}).container


# -- refusals name the field -------------------------------------------------------------------
@pytest.mark.parametrize(("fields", "field", "words"), [
    ({"capAdd": ["NET_ADMIN", "NET_ADMINX"]}, "capAdd[1]", "NET_ADMINX is not a Linux capability"),
    ({"capDrop": "ALL"}, "capDrop", "must be a list"),
    ({"capAdd": ["CHOWN", "cap_chown"]}, "capAdd[1]", "CHOWN is already listed at [0]"),
    ({"capAdd": ["NET_ADMIN"], "capDrop": ["NET_ADMIN"]}, "capAdd", "NET_ADMIN is also in capDrop"),
    ({"user": "root user"}, "user", "is not a user"),
    ({"user": "99999999999"}, "user", "is not a user"),
    ({"user": "4294967295"}, "user", "a numeric id is at most"),
    ({"workingDir": "app"}, "workingDir", "must be an absolute path"),
    ({"workingDir": "/app/../etc"}, "workingDir", "without '..'"),
    ({"entrypoint": 5}, "entrypoint", "must be a list of strings or a string"),
    ({"entrypoint": ["sh", 1]}, "entrypoint[1]", "must be a string"),
    ({"devices": ["dev/fuse"]}, "devices[0]", "must be an absolute path"),
    ({"devices": ["/dev/fuse:/dev/fuse:rwx"]}, "devices[0]", "permissions 'rwx'"),
    ({"devices": ["/dev/a:/dev/x", "/dev/b:/dev/x"]}, "devices[1]", "/dev/x is already the target of [0]"),
    ({"devices": [{"source": "/dev/fuse", "mode": "rw"}]}, "devices[0]", "source required"),
    ({"labels": {"orion.task": "x"}}, "labels.orion.task", "are Orion's own"),
    ({"labels": {"Orion.Node": "x"}}, "labels.Orion.Node", "are Orion's own"),
    ({"labels": {"team": 5}}, "labels.team", "must be a string"),
    ({"logging": {"driver": "json file"}}, "logging.driver", "is not a log driver name"),
    ({"logging": {"driver": "json-file", "options": {"max-size": 10}}}, "logging.options.max-size",
     "must be a string"),
    ({"logging": {"drivr": "local"}}, "logging.drivr", "did you mean 'driver'"),
    ({"logging": "json-file"}, "logging", "must be an object like"),
    ({"stopSignal": "SIGFOO"}, "stopSignal", "is not a Linux signal"),
    ({"stopSignal": 65}, "stopSignal", "is not a signal number"),
    ({"stopGracePeriod": 10}, "stopGracePeriod", "must be a duration string"),
    ({"stopGracePeriod": "6m"}, "stopGracePeriod", "is longer than 5m"),
    ({"init": "yes"}, "init", "must be true or false"),
    ({"ulimits": {"files": 10}}, "ulimits.files", "is not a ulimit"),
    ({"ulimits": {"nofile": {"soft": 10, "hard": 5}}}, "ulimits.nofile", "soft 10 is above hard 5"),
    ({"ulimits": {"nofile": {"soft": 10}}}, "ulimits.nofile", "must be {\"soft\": N, \"hard\": N}"),
    ({"ulimits": {"nproc": -2}}, "ulimits.nproc", "from -1 (unlimited) up"),
    ({"readOnly": 1}, "readOnly", "must be true or false"),
    ({"tmpfs": ["run"]}, "tmpfs[0]", "must be an absolute path"),
    ({"tmpfs": ["/run:size=lots"]}, "tmpfs[0]", "size: 'lots' is not a size"),
    ({"tmpfs": ["/run:mode=999"]}, "tmpfs[0]", "mode '999' must be octal"),
    ({"tmpfs": ["/run:uid=0"]}, "tmpfs[0]", "tmpfs option 'uid' is not one of"),
    ({"tmpfs": ["/run", "/run:size=1M"]}, "tmpfs[1]", "/run is already mounted by [0]"),
    ({"tmpfs": ["/data"], "volumes": [{"source": "data", "target": "/data"}]}, "tmpfs[0]",
     "/data is already mounted by volumes[0]"),
    ({"hostname": "web_1"}, "hostname", "is not a hostname"),
    ({"hostname": "a" * 64}, "hostname", "at most 63 characters"),
    ({"extraHosts": ["db"]}, "extraHosts[0]", "write HOST:IP"),
    ({"extraHosts": ["db:10.0.0.300"]}, "extraHosts[0]", "is not an IP address"),
    ({"extraHosts": {"db": 5}}, "extraHosts.db", "must be an IP address as a string"),
    ({"shmSize": "0"}, "shmSize", "is below 1 byte"),
    ({"shmSize": "lots"}, "shmSize", "is not a size"),
    ({"sysctls": {"kernel.pid_max": "4"}}, "sysctls.kernel.pid_max", "is not a namespaced sysctl"),
    ({"sysctls": {"vm.swappiness": "1"}}, "sysctls.vm.swappiness", "is not a namespaced sysctl"),
    ({"sysctls": {"net.core.somaxconn": True}}, "sysctls.net.core.somaxconn", "must be a string or an integer"),
    ({"cpuShares": 1}, "cpuShares", "from 2 to 262144"),
    ({"privileged": "true"}, "privileged", "must be true or false"),
    ({"cap_add": ["NET_ADMIN"]}, "cap_add", "did you mean 'capAdd'"),
])
def test_a_wrong_setting_is_refused_naming_the_field(fields, field, words):
    error = refused(**fields)
    assert (error.status, error.field) == (400, field), error
    assert words in error.message
    assert str(error).startswith(f"{field}: ")
    with pytest.raises(ValidationError) as in_service:  # one declaration: the same words in a service
        parse_service_request("web", {**BASE, **fields})
    assert (in_service.value.field, in_service.value.message) == (field, error.message)


def test_compose_spellings_read_as_docker_means_them():
    got = settings_of(capAdd=["net_admin", "CAP_SYS_TIME"], stopSignal="usr1", entrypoint="",
                      devices=["/dev/fuse", "/dev/sda:/dev/xvda:r", "/dev/null:wr"],
                      ulimits={"nproc": 512, "nofile": {"soft": 1024, "hard": 4096}},
                      tmpfs="/run", extraHosts={"db": "10.0.0.5"}, shmSize="64M", sysctls={"net.core.somaxconn": 1024})
    assert got.cap_add == ("NET_ADMIN", "SYS_TIME")
    assert got.stop_signal == "SIGUSR1"
    assert got.entrypoint == ()  # "" clears the image's entrypoint
    assert got.devices == (Device("/dev/fuse", "/dev/fuse", "rwm"), Device("/dev/null", "/dev/null", "rw"),
                           Device("/dev/sda", "/dev/xvda", "r"))
    assert got.ulimits == (Ulimit("nofile", 1024, 4096), Ulimit("nproc", 512, 512))
    assert got.tmpfs == (Tmpfs("/run"),)
    assert got.extra_hosts == (("db", "10.0.0.5"),)
    assert got.shm_size == 64 << 20
    assert got.sysctls == (("net.core.somaxconn", "1024"),)
    assert settings_of(tmpfs=[{"target": "/tmp", "size": "1M", "mode": 1777, "flags": ["noexec"]}]).tmpfs == (
        Tmpfs("/tmp", 1 << 20, 0o1777, ("noexec",)),)


def test_no_settings_means_the_spec_and_its_log_form_are_as_before():
    spec = parse_task_request(BASE)
    assert spec.container == ContainerSettings()
    assert "container" not in spec.to_dict()  # older nodes and digests read the same record


# -- the property: request -> settings -> the engine's arguments ------------------------------------
_name = st.text(string.ascii_lowercase + string.digits + "_", min_size=1, max_size=8)
_path = st.lists(_name, min_size=1, max_size=3).map(lambda parts: "/" + "/".join(parts))
_dev = _name.map(lambda n: "/dev/" + n)
_text = st.text(st.characters(exclude_characters="\0", exclude_categories=("Cs",)), min_size=1, max_size=8)
_host = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?(\.[a-z0-9]{1,5}){0,2}\Z")
_ip = st.one_of(st.ip_addresses().map(str), st.just("host-gateway"))
_caps = st.lists(st.sampled_from(sorted(CAPABILITIES)), unique=True, max_size=4)
_devices = st.lists(st.builds(Device, _dev, _dev, st.sampled_from(["r", "rw", "rwm", "w", "m", "rm"])),
                    unique_by=lambda d: d.target, max_size=3).map(lambda ds: tuple(sorted(ds)))
_limits = st.one_of(st.tuples(st.integers(0, 1 << 20), st.integers(0, 1 << 20)).map(sorted),
                    st.tuples(st.integers(-1, 1 << 20), st.just(-1)))
_ulimits = st.dictionaries(st.sampled_from(sorted(ULIMITS)), _limits, max_size=3).map(
    lambda d: tuple(sorted(Ulimit(name, soft, hard) for name, (soft, hard) in d.items())))
_tmpfs = st.lists(st.builds(Tmpfs, _path, st.integers(0, 1 << 30), st.none() | st.integers(0, 0o7777),
                            st.lists(st.sampled_from(TMPFS_FLAGS), unique=True).map(lambda f: tuple(sorted(f)))),
                  unique_by=lambda t: t.target, max_size=3).map(lambda ts: tuple(sorted(ts)))
_sysctl_keys = st.sampled_from(["net.core.somaxconn", "net.ipv4.ip_forward", "net.ipv6.conf.all.disable_ipv6",
                                "kernel.shmmax", "kernel.msgmnb", "kernel.sem", "fs.mqueue.msg_max"])
_signal = st.one_of(st.just(""), st.sampled_from(sorted(SIGNALS)).map(lambda s: "SIG" + s),
                    st.integers(1, 64).map(str))


@st.composite
def container_settings(draw) -> ContainerSettings:
    caps = draw(_caps)
    split = draw(st.integers(0, len(caps)))
    return ContainerSettings(
        user=draw(st.sampled_from(["", "1000", "1000:1000", "app", "app:staff", "nobody:65534"])),
        working_dir=draw(st.just("") | _path),
        entrypoint=draw(st.none() | st.lists(_text, max_size=3).map(tuple)),
        cap_add=tuple(sorted(caps[:split])), cap_drop=tuple(sorted(caps[split:])),
        privileged=draw(st.booleans()),
        devices=draw(_devices),
        labels=tuple(sorted(draw(st.dictionaries(_name.map(lambda n: "com.example." + n), _text, max_size=3))
                            .items())),
        logging=draw(st.none() | st.builds(Logging, st.sampled_from(["json-file", "local", "syslog", "none"]),
                                           st.dictionaries(st.sampled_from(["max-size", "max-file", "tag"]),
                                                           _text, max_size=2).map(lambda d: tuple(sorted(d.items()))))),
        stop_signal=draw(_signal),
        stop_grace_period=draw(st.none() | st.integers(0, 300).map(float)),
        init=draw(st.none() | st.booleans()),
        ulimits=draw(_ulimits),
        read_only=draw(st.booleans()),
        tmpfs=draw(_tmpfs),
        hostname=draw(st.just("") | _host),
        extra_hosts=tuple(sorted(set(draw(st.lists(st.tuples(_host, _ip), max_size=3))))),
        shm_size=draw(st.just(0) | st.integers(1, 1 << 34)),
        sysctls=tuple(sorted(draw(st.dictionaries(_sysctl_keys, _text.filter(str.strip), max_size=3)).items())),
        cpu_shares=draw(st.just(0) | st.integers(2, 262144)),
    )


def engine_json(task: Task, policy: NodePolicy) -> tuple[dict, dict]:
    """What the engine would receive: the SDK's own HostConfig and ContainerConfig of our arguments."""
    host, create = create_args(task, "node1", policy)
    config = {k: v for k, v in create.items() if k != "name"}
    return HostConfig(version=API_VERSION, **host), ContainerConfig(API_VERSION, **config)


@settings(max_examples=200, deadline=None)
@given(container_settings(), st.booleans())
def test_valid_settings_go_from_request_to_the_engine_unchanged(box, node_init):
    body = container_body(box)
    spec = parse_task_request({**BASE, **body})
    assert spec.container == box  # the request spells them back (what GET shows, PUT reads)
    assert TaskSpec.from_dict(spec.to_dict()) == spec  # through the Raft log
    task = Task(id="t1", spec=spec, state="assigned", node_id="node1", generation=2)
    policy = NodePolicy(host_devices=box.host_devices, allow_privileged=True, init=node_init)
    host, config = engine_json(task, policy)

    assert config["User"] == (box.user or None)
    assert config["WorkingDir"] == (box.working_dir or None)
    assert config["Entrypoint"] == (None if box.entrypoint is None else list(box.entrypoint) or [""])
    assert config["Hostname"] == (box.hostname or None)
    assert config["StopSignal"] == (box.stop_signal or None)
    grace = box.stop_grace_period
    assert config["StopTimeout"] == (None if grace is None else math.ceil(grace))
    assert config["Labels"] == {**dict(box.labels), "orion.task": "t1", "orion.node": "node1",
                                "orion.generation": "2", "orion.managed": "1"}
    assert host.get("CapAdd") == (list(box.cap_add) or None)
    assert host.get("CapDrop") == (list(box.cap_drop) or None)
    assert bool(host.get("Privileged")) is box.privileged
    assert host.get("Devices", []) == [{"PathOnHost": d.source, "PathInContainer": d.target,
                                        "CgroupPermissions": d.permissions} for d in box.devices]
    assert bool(host.get("ReadonlyRootfs")) is box.read_only
    assert host.get("Sysctls") == (dict(box.sysctls) or None)
    assert [dict(u) for u in host.get("Ulimits", [])] == [{"Name": u.name, "Soft": u.soft, "Hard": u.hard}
                                                         for u in box.ulimits]
    assert host.get("ShmSize") == (box.shm_size or None)
    assert host.get("ExtraHosts") == ([f"{h}:{ip}" for h, ip in box.extra_hosts] or None)
    assert host.get("Tmpfs") == ({t.target: t.options() for t in box.tmpfs} or None)
    assert host.get("CpuShares") == (box.cpu_shares or None)
    log = host.get("LogConfig")
    assert (None if log is None else (log["Type"], log["Config"])) == (
        None if box.logging is None else (box.logging.driver, dict(box.logging.options)))
    assert host.get("Init") == (box.init if box.init is not None else (node_init or None))


@settings(max_examples=50, deadline=None)
@given(container_settings())
def test_a_service_shows_its_settings_as_the_body_that_declares_them(box):
    spec = parse_service_request("web", {**BASE, **container_body(box)})
    assert spec.task.container == box
    assert parse_service_request("web", spec_body(spec)) == spec
    view = task_view(Task(id="t1", spec=spec.task), detail=True)
    assert {k: view[k] for k in container_body(box)} == container_body(box)


def test_every_setting_changed_replaces_the_replicas_and_is_named():
    before = parse_service_request("web", BASE)
    changes = {"user": "1000", "workingDir": "/app", "entrypoint": ["tini"], "capAdd": ["NET_ADMIN"],
               "capDrop": ["MKNOD"], "privileged": True, "devices": ["/dev/fuse"], "labels": {"team": "a"},
               "logging": {"driver": "local"}, "stopSignal": "SIGQUIT", "stopGracePeriod": "30s", "init": False,
               "ulimits": {"nofile": 1024}, "readOnly": True, "tmpfs": ["/run"], "hostname": "web",
               "extraHosts": ["db:10.0.0.5"], "shmSize": "64M", "sysctls": {"net.core.somaxconn": "1024"},
               "cpuShares": 512}
    assert {f for f in changes} == {f for f in container_body(settings_of(**changes))}  # one of each
    for name, value in changes.items():
        diff = spec_diff(before, parse_service_request("web", {**BASE, name: value}))
        assert (diff.changed, diff.replace, diff.scale) == ((name,), True, False)


# -- what the node allows ----------------------------------------------------------------------
def test_a_node_refuses_a_device_it_does_not_hand_out_and_privilege_it_does_not_allow():
    spec = parse_task_request({**BASE, "devices": ["/dev/fuse", "/dev/kvm"], "privileged": True})
    task = Task(id="t1", spec=spec, state="assigned", node_id="node1", generation=1)
    with pytest.raises(RuntimeFailure, match=r"device /dev/kvm is not handed out by node node1 \(host_devices"):
        create_args(task, "node1", NodePolicy(host_devices=frozenset({"/dev/fuse"}), allow_privileged=True))
    with pytest.raises(RuntimeFailure, match="does not run privileged containers"):
        create_args(task, "node1", NodePolicy(host_devices=frozenset({"/dev/fuse", "/dev/kvm"})))


def test_extra_host_addresses_are_written_as_the_engine_reads_them():
    got = settings_of(extraHosts=["v6:[::1]", "gw:host-gateway", "v4=10.0.0.1"])
    assert got.extra_hosts == (("gw", "host-gateway"), ("v4", "10.0.0.1"), ("v6", "::1"))
    assert all(ip == "host-gateway" or ipaddress.ip_address(ip) for _, ip in got.extra_hosts)
