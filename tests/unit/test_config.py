"""Configuration layering and the errors that name the fix."""

from __future__ import annotations

import pytest

from orion.config import ConfigError, load_config

SECRET = {"raft_secret": "s3cret"}


def test_defaults_apply_when_nothing_is_given():
    cfg = load_config(dict(SECRET), env={})
    assert (cfg.port, cfg.raft_port, cfg.gossip_port) == (8000, 7000, 6000)
    assert cfg.advertise == cfg.bind == "127.0.0.1"
    assert cfg.raft_addr == "127.0.0.1:7000"


def test_flags_beat_env_beat_file(tmp_path):
    path = tmp_path / "orion.toml"
    path.write_text('id = "from-file"\nport = 9000\nraft_port = 9100\nraft_secret = "f"\n')
    env = {"ORION_PORT": "9001", "ORION_LABELS": "disk=ssd,zone=a"}
    cfg = load_config({"config": str(path), "raft_port": 9200}, env=env)
    assert cfg.id == "from-file"
    assert cfg.port == 9001          # env beats file
    assert cfg.raft_port == 9200     # flag beats file
    assert cfg.labels == {"disk": "ssd", "zone": "a"}


def test_unset_flags_do_not_override():
    cfg = load_config({"port": None, "bootstrap": None, **SECRET}, env={"ORION_PORT": "8123"})
    assert cfg.port == 8123 and cfg.bootstrap is False


def test_raft_needs_a_secret_or_explicit_loopback_insecurity():
    with pytest.raises(ConfigError, match="--raft-secret"):
        load_config({}, env={})
    assert load_config({"insecure_raft": True}, env={}).raft_secret == ""
    with pytest.raises(ConfigError, match="loopback"):
        load_config({"insecure_raft": True, "bind": "10.1.2.3"}, env={})


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"port": 70000}, "outside 1-65535"),
        ({"bootstrap": True, "join": ["127.0.0.1:8000"]}, "exclude each other"),
        ({"bind": "0.0.0.0"}, "--advertise"),
        ({"port": "eighty"}, "not a valid int"),
        ({"durability": "sometimes"}, "durability: 'sometimes' is not fsync or none"),
    ],
)
def test_bad_settings_name_the_fix(flags, message):
    with pytest.raises(ConfigError, match=message):
        load_config({**SECRET, **flags}, env={})


def test_config_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config({"config": str(tmp_path / "missing.toml")}, env={})
    bad = tmp_path / "bad.toml"
    bad.write_text("colour = 'blue'\n")
    with pytest.raises(ConfigError, match="unknown setting"):
        load_config({"config": str(bad)}, env={})


def test_durability_is_fsync_unless_told_otherwise(tmp_path):
    assert load_config(dict(SECRET), env={}).durability == "fsync"
    assert load_config(dict(SECRET), env={"ORION_DURABILITY": "none"}).durability == "none"
    path = tmp_path / "orion.toml"
    path.write_text('durability = "none"\n')
    assert load_config({**SECRET, "config": str(path)}, env={}).durability == "none"
    assert load_config({**SECRET, "config": str(path), "durability": "fsync"}, env={}).durability == "fsync"
