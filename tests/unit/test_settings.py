"""A setting is declared once (orion/config/): flags, ORION_*, TOML, the parts' values, the
tests' shipped values and docs/settings.md all follow from the declaration, and agree."""

from __future__ import annotations

import base64
import inspect
import itertools
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import click
import jinja2
import pytest
import yaml

from orion.api.app import ApiDeps
from orion.api.exec import ExecDeps
from orion.api.logs import LogsDeps
from orion.cli.agent_cmd import agent, argv_secret_warning
from orion.config import SETTINGS, AgentConfig, ConfigError, load_config, shipped
from orion.config.agent import BY_NAME
from orion.config.doc import render
from orion.control.drain import DrainSettings
from orion.control.healing_loop import HealingLoop
from orion.control.lease_reclaim_loop import LeaseReclaimLoop
from orion.control.placement_loop import PlacementLoop
from orion.control.restart import RestartConfig
from orion.membership.autopilot import AutopilotConfig
from orion.membership.liveness import GossipLiveness
from orion.node import capacity
from orion.node.readiness_loop import ReadinessLoop
from orion.node.reconcile_loop import ReconcileLoop
from orion.raft.engine import RaftSettings
from orion.runtime.tmpfs import TaskFileStore

ROOT = Path(__file__).resolve().parents[2]
SEED_FLAGS = ("--id", "--port", "--gossip-port", "--raft-port", "--bootstrap", "--join")
# What the wiring (orion/agent/) builds with ``cfg.part(name)``: the part's config or constructor.
PARTS: dict[str, Any] = {
    "restart": RestartConfig, "autopilot": AutopilotConfig, "drain": DrainSettings, "api": ApiDeps,
    "logs": LogsDeps, "raft": RaftSettings, "reconcile": ReconcileLoop, "readiness": ReadinessLoop,
    "placement": PlacementLoop, "healing": HealingLoop, "liveness": GossipLiveness, "capacity": capacity.probe,
    "leases": LeaseReclaimLoop,
    "exec": ExecDeps,
    "task_files": TaskFileStore,
}


def test_every_setting_says_what_it_is_and_why_its_default():
    for declared in SETTINGS:
        assert declared.help[:1].isupper() or declared.help.startswith("fsync"), declared.name
        assert len(declared.why) > 20, f"{declared.name}: the reason for its default"
        assert declared.problem(declared.default) is None, f"{declared.name}: the default fails its own checks"


def test_spellings_follow_from_the_name_and_are_unique():
    assert BY_NAME["gossip_port"].flag == "--gossip-port"
    assert BY_NAME["gossip_port"].env == "ORION_GOSSIP_PORT"
    assert BY_NAME["gossip_port"].toml == "gossip_port"
    assert BY_NAME["labels"].flag == "--label" and BY_NAME["host_volumes"].flag == "--host-volume"
    for spelling in ("flag", "env", "toml"):
        values = [getattr(s, spelling) for s in SETTINGS]
        assert len(values) == len(set(values)), spelling


def test_the_config_holds_every_declared_setting_but_the_secret_files():
    fields = set(AgentConfig.__dataclass_fields__)
    assert fields == {s.name for s in SETTINGS if not s.file_of}
    assert {s.name for s in SETTINGS if s.file_of} == {"raft_secret_file", "api_token_file", "gossip_key_file",
                                                               "cluster_key_file"}


def test_the_agent_command_has_one_option_per_flagged_setting_and_the_seed_flags():
    options = {p.name: p for p in agent.params}
    assert set(options) == {"config"} | {s.name for s in SETTINGS if s.has_flag}
    for declared in SETTINGS:
        if declared.has_flag:
            assert options[declared.name].opts == [declared.flag]
            assert options[declared.name].default in (None, ())  # unset never overrides env or file
    flags = {opt for p in agent.params for opt in p.opts}
    assert set(SEED_FLAGS) <= flags


# -- every layer reaches every setting ------------------------------------------------------------
# Three valid values for a setting whose values cannot be made from its default (a CIDR, say).
SAMPLES: dict[str, list[Any]] = {
    "gossip_key": [base64.b64encode(bytes([i]) * 16).decode() for i in (1, 2, 3)],
    "cluster_key": [base64.b64encode(bytes([i]) * 32).decode() for i in (1, 2, 3)],
    "network_cidr": ["10.50.0.0/16", "10.51.0.0/16", "10.52.0.0/16"],
    "service_cidr": ["10.60.0.0/16", "10.61.0.0/16", "10.62.0.0/16"],
    "network_mtu": [1400, 1450, 9000],
}


def _samples(declared, tmp_path: Path) -> list[Any]:
    """Three valid values other than the default (so precedence can be seen), or [] to skip."""
    samples = SAMPLES.get(declared.name) or _made_from_default(declared, tmp_path)
    bad = [(value, declared.problem(value)) for value in samples if declared.problem(value)]
    assert not bad, f"{declared.name}: samples {bad} fail its checks; give it three valid ones in SAMPLES"
    return samples


def test_the_samples_name_settings():
    assert set(SAMPLES) <= set(BY_NAME)


def _made_from_default(declared, tmp_path: Path) -> list[Any]:
    if declared.name.startswith("tls_") or declared.file_of:
        return []  # need real files: tests/unit/test_config.py reads them through every layer
    if declared.name == "api_tokens_file":
        return []  # needs api_token beside it (a rule): tests/unit/agent/test_preflight.py reads one
    if declared.choices:
        others = [c for c in declared.choices if c != declared.default]
        return (others * 3)[:3] if len(others) >= 3 else []
    if declared.kind is bool:
        return []  # two values only: below
    if declared.kind is int:
        return [declared.default + i for i in (1, 2, 3)]
    if declared.kind is float:
        return [round(declared.default * f, 3) if declared.default else f / 10 for f in (1.1, 1.2, 1.3)]
    if declared.kind == tuple[str, ...]:
        if declared.name == "host_devices":  # devices that exist on every Linux host
            return [("/dev/null",), ("/dev/zero",), ("/dev/null", "/dev/zero")]
        return [(f"10.0.0.{i}:6000",) for i in (1, 2, 3)]
    if declared.kind == dict[str, str]:
        if declared.name == "host_volumes":
            for i in (1, 2, 3):
                (tmp_path / f"v{i}").mkdir(exist_ok=True)
            return [{f"v{i}": str(tmp_path / f"v{i}")} for i in (1, 2, 3)]
        return [{"zone": f"z{i}"} for i in (1, 2, 3)]
    return [f"{declared.default}x{i}" if declared.name != "bind" else f"127.0.0.{i + 1}" for i in (1, 2, 3)]


def _env_text(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(value)
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items())
    return str(value).lower() if isinstance(value, bool) else str(value)


def _argv(declared, value: Any) -> list[str]:
    if isinstance(value, bool):
        return [declared.flag] if value else []
    if isinstance(value, tuple):
        return [a for item in value for a in (declared.flag, item)]
    if isinstance(value, dict):
        return [a for k, v in value.items() for a in (declared.flag, f"{k}={v}")]
    return [declared.flag, str(value)]


def _cli_flags(args: list[str]) -> dict[str, Any]:
    """The flags as ``orion agent`` hands them to load_config (click parses, nothing starts)."""
    params = agent.make_context("agent", args).params
    return {name: value for name, value in params.items() if value not in (None, ())}


BASE = {"raft_secret": "s3cret"}
LOOPBACK = {"insecure_raft": True}  # so raft_secret itself can be set by each layer


@pytest.mark.parametrize("declared", [s for s in SETTINGS], ids=lambda s: s.name)
def test_toml_env_and_flag_each_set_the_setting_in_that_order(declared, tmp_path):
    samples = _samples(declared, tmp_path)
    if not samples:
        pytest.skip("checked with real files in test_config.py" if declared.kind is not bool else "bool: below")
    in_file, in_env, on_argv = samples
    toml = tmp_path / "orion.toml"
    toml.write_text(f"{declared.toml} = {_toml(in_file)}\n")
    assert getattr(load_config({**LOOPBACK, "config": str(toml)}, env={}), declared.name) == in_file
    env = {declared.env: _env_text(in_env)}
    assert getattr(load_config({**LOOPBACK, "config": str(toml)}, env=env), declared.name) == in_env
    if declared.has_flag:
        flags = _cli_flags(_argv(declared, on_argv))
        assert getattr(load_config({**LOOPBACK, **flags, "config": str(toml)}, env=env), declared.name) == on_argv


@pytest.mark.parametrize("declared", [s for s in SETTINGS if s.kind is bool], ids=lambda s: s.name)
def test_a_switch_is_set_by_each_layer(declared, tmp_path):
    toml = tmp_path / "orion.toml"
    toml.write_text(f"{declared.toml} = true\n")
    assert getattr(load_config({**BASE, "config": str(toml)}, env={}), declared.name) is True
    assert getattr(load_config({**BASE, "config": str(toml)}, env={declared.env: "no"}), declared.name) is False
    if declared.has_flag:
        assert getattr(load_config({**BASE, **_cli_flags([declared.flag])}, env={}), declared.name) is True


def _toml(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in value.items()) + " }"
    if isinstance(value, tuple):
        return json.dumps(list(value))
    return json.dumps(value)


@pytest.mark.parametrize("declared", [s for s in SETTINGS if s.checks or s.choices], ids=lambda s: s.name)
def test_a_value_its_checks_refuse_is_one_line_naming_how_it_was_given(declared, tmp_path):
    bad = _refused(declared)
    with pytest.raises(ConfigError) as from_env:
        load_config(BASE, env={declared.env: str(bad)})
    assert str(from_env.value).startswith(f"{declared.env}: ") and "\n" not in str(from_env.value)
    toml = tmp_path / "orion.toml"
    toml.write_text(f"{declared.toml} = {json.dumps(bad)}\n")
    with pytest.raises(ConfigError, match=f"^{declared.toml}: "):
        load_config({**BASE, "config": str(toml)}, env={})


def _refused(declared) -> Any:
    if declared.choices:
        return "sometimes"
    for candidate in (-1, 0, 70000, 1.5):
        if isinstance(candidate, float) and declared.kind is int:
            continue
        if declared.problem(declared.kind(candidate)) is not None:
            return declared.kind(candidate)
    raise AssertionError(f"{declared.name}: no value its checks refuse")


def test_a_key_value_flag_written_wrong_is_one_line_exit_2():
    from click.testing import CliRunner

    result = CliRunner().invoke(agent, ["--insecure-raft", "--label", "zone"])
    assert result.exit_code == 2
    assert result.stderr == "Error: --label: 'zone' is not KEY=VALUE\n"


def test_the_argv_warning_names_every_secret_flag_its_file_and_variable():
    secrets = [s for s in SETTINGS if s.secret and s.has_flag]
    assert {s.name for s in secrets} == {"raft_secret", "api_token", "cluster_key"}
    warning = argv_secret_warning({"api_token": "t"})
    assert warning is not None and warning.startswith("--api-token given on the command line")
    for declared in secrets:
        assert f"{declared.flag}-file" in warning and declared.env in warning


# -- the parts get their values from the declaration ------------------------------------------------
def test_every_part_takes_exactly_the_values_declared_for_it():
    declared_parts = {target.partition(".")[0] for s in SETTINGS for target in s.parts}
    assert declared_parts == set(PARTS), "a part named in a declaration that the wiring does not build"
    for name, builder in PARTS.items():
        params = inspect.signature(builder).parameters
        missing = set(shipped(name)) - set(params)
        assert not missing, f"{name}: declared values {missing} are not parameters of {builder.__qualname__}"


def test_a_part_gets_the_configured_value_not_the_default():
    cfg = load_config({**BASE, "restart_delay": 2.5, "write_timeout": 9.0}, env={})
    assert cfg.part("restart")["delay"] == 2.5 and shipped("restart")["delay"] == 1.0
    assert cfg.part("api")["write_timeout"] == cfg.part("reconcile")["write_timeout"] == 9.0
    with pytest.raises(KeyError):
        cfg.part("no-such-part")


# -- the docs and the fleet role ------------------------------------------------------------------
def test_docs_settings_md_is_the_declarations():
    text = (ROOT / "docs/settings.md").read_text()
    assert text == render(), "docs/settings.md is stale: run `python -m orion.config.doc`"
    for declared in SETTINGS:
        assert f"| `{declared.toml}` |" in text and f"`{declared.env}`" in text


TEMPLATE = ROOT / "roles/orion/templates/orion.toml.j2"


def _render_role_config(**switches: Any) -> str:
    """The role's orion.toml with the role's defaults (roles/orion/defaults/main.yml: a variable the
    template gains is there too) and the facts and switches the role's tasks would set."""
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters["to_json"] = json.dumps
    env.filters["bool"] = bool
    values = {
        **yaml.safe_load((ROOT / "roles/orion/defaults/main.yml").read_text()),
        "ansible_managed": "Ansible managed", "orion__config_file": "/etc/orion/orion.toml",
        "orion_node_id": "node1", "orion_bind_address": "10.0.0.5", "orion_advertise_address": "10.0.0.5",
        "orion__join": ["10.0.0.6:8000"],
        "orion__cert_file": "/etc/orion/tls/node.crt", "orion__key_file": "/etc/orion/tls/node.key",
        "orion__ca_file": "/etc/orion/tls/ca.crt", "orion__api_token_file": "/etc/orion/api-token",
        "orion__raft_secret_file": "/etc/orion/raft-secret", "orion__raft_secret": "r" * 32,
        "orion__cluster_key_file": "/etc/orion/cluster-key",
        **switches,
    }
    return env.from_string(TEMPLATE.read_text()).render(**values)


def test_every_key_the_fleet_template_can_render_is_a_declared_setting_with_a_valid_value():
    rendered: set[str] = set()
    for tls, mtls, token, bootstrap in itertools.product((True, False), (True, False), ("", "t0ken"), (True, False)):
        text = _render_role_config(orion__tls=tls, orion__mtls=mtls, orion__api_token=token, orion__bootstrap=bootstrap)
        for key, value in tomllib.loads(text).items():
            assert key in BY_NAME, f"the role renders {key!r}, which the agent does not accept"
            BY_NAME[key].parse(key, value)  # the value is one the agent takes, too
            rendered.add(key)
    written = set(re.findall(r"^([a-z_]+) = ", TEMPLATE.read_text(), flags=re.MULTILINE))
    assert written and written <= rendered, f"keys no combination rendered: {written - rendered}"


def test_the_roles_extra_keys_reach_the_agent_as_settings(tmp_path):
    key = tmp_path / "cluster-key"
    key.write_text(base64.b64encode(bytes(32)).decode() + "\n")  # as `openssl rand -base64 32` writes it
    key.chmod(0o600)
    text = _render_role_config(orion__tls=False, orion__mtls=False, orion__api_token="", orion__bootstrap=True,
                               orion_extra_config={"voter_cap": 3, "engine_down_grace": 12.5},
                               orion_bind_address="127.0.0.1", orion_advertise_address="127.0.0.1",
                               orion__cluster_key_file=str(key))
    path = tmp_path / "orion.toml"
    path.write_text(text)
    cfg = load_config({"config": str(path), "data_dir": str(tmp_path)}, env={})
    assert (cfg.voter_cap, cfg.engine_down_grace, cfg.bootstrap) == (3, 12.5, True)
    assert cfg.cluster_key == base64.b64encode(bytes(32)).decode()


def test_a_secret_read_from_its_file_is_checked_like_any_value(tmp_path):
    (tmp_path / "gossip-key").write_text("not base64!\n")
    with pytest.raises(ConfigError, match=r"^gossip_key_file: .*gossip-key: key 1 is not base64$"):
        load_config({**BASE, "gossip_key_file": str(tmp_path / "gossip-key")}, env={})
    (tmp_path / "gossip-key").write_text("MDEyMzQ1Njc4OWFiY2RlZg==\n")  # 16 bytes
    cfg = load_config({**BASE}, env={"ORION_GOSSIP_KEY_FILE": str(tmp_path / "gossip-key")})
    assert cfg.gossip_key == "MDEyMzQ1Njc4OWFiY2RlZg=="


def test_a_switch_on_by_default_gets_its_no_form():
    from dataclasses import dataclass

    from click.testing import CliRunner

    from orion.cli.agent_cmd import options_for
    from orion.config.setting import declarations, setting

    @dataclass(frozen=True)
    class Switches:
        overlay: bool = setting(True, "Join the overlay", "On by default: reaching a service by name is the point.",
                                flag=True)
        quiet: bool = setting(False, "Say less", "Off: an operator reads what the agent did.", flag=True)

    @click.command()
    @options_for(declarations(Switches))
    def command(**flags: Any) -> None:
        click.echo(json.dumps(flags, sort_keys=True))

    def run(*args: str) -> dict:
        return json.loads(CliRunner().invoke(command, list(args)).output)

    assert run() == {"overlay": None, "quiet": None}  # unset: the env, the file or the default decide
    assert run("--no-overlay", "--quiet") == {"overlay": False, "quiet": True}
    assert run("--overlay")["overlay"] is True
    assert CliRunner().invoke(command, ["--no-quiet"]).exit_code == 2  # off already: no --no- form
