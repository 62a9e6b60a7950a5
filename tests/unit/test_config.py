"""Configuration layering and the errors that name the fix."""

from __future__ import annotations

import subprocess

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


def test_docker_host_flag_beats_orion_env_beats_file_beats_docker_host_beats_default(tmp_path):
    default = "unix:///var/run/docker.sock"
    assert load_config(dict(SECRET), env={}).docker_host == default
    env = {"DOCKER_HOST": "tcp://docker-env:2375"}
    assert load_config(dict(SECRET), env=env).docker_host == "tcp://docker-env:2375"
    assert load_config(dict(SECRET), env={"DOCKER_HOST": ""}).docker_host == default  # empty: unset
    path = tmp_path / "orion.toml"
    path.write_text('docker_host = "unix:///from/file.sock"\n')
    assert load_config({"config": str(path), **SECRET}, env=env).docker_host == "unix:///from/file.sock"
    env["ORION_DOCKER_HOST"] = "unix:///orion/env.sock"
    assert load_config({"config": str(path), **SECRET}, env=env).docker_host == "unix:///orion/env.sock"
    flags = {"config": str(path), "docker_host": "unix:///flag.sock", **SECRET}
    assert load_config(flags, env=env).docker_host == "unix:///flag.sock"


# -- secrets from files, never argv (issue #13) ----------------------------------------------------
def test_secrets_come_from_files_without_their_trailing_newline(tmp_path):
    (tmp_path / "raft").write_text("r-secret\n")
    (tmp_path / "token").write_text("t0ken\r\n")
    cfg = load_config({"raft_secret_file": str(tmp_path / "raft")},
                      env={"ORION_API_TOKEN_FILE": str(tmp_path / "token")})
    assert (cfg.raft_secret, cfg.api_token) == ("r-secret", "t0ken")
    toml = tmp_path / "orion.toml"
    toml.write_text(f'raft_secret_file = "{tmp_path / "raft"}"\napi_token_file = "{tmp_path / "token"}"\n')
    cfg = load_config({"config": str(toml)}, env={})
    assert (cfg.raft_secret, cfg.api_token) == ("r-secret", "t0ken")


def test_secrets_from_the_environment():
    cfg = load_config({}, env={"ORION_RAFT_SECRET": "from-env", "ORION_API_TOKEN": "tok"})
    assert (cfg.raft_secret, cfg.api_token) == ("from-env", "tok")


def test_secret_file_errors_name_the_flag_and_file(tmp_path):
    with pytest.raises(ConfigError, match=r"--raft-secret-file: cannot read .*missing"):
        load_config({"raft_secret_file": str(tmp_path / "missing")}, env={})
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError, match=r"--api-token-file: .*empty is empty"):
        load_config({**SECRET, "api_token_file": str(tmp_path / "empty")}, env={})
    (tmp_path / "raft").write_text("x")
    with pytest.raises(ConfigError, match="both set"):
        load_config({"raft_secret_file": str(tmp_path / "raft")}, env={"ORION_RAFT_SECRET": "y"})


def test_a_secret_on_argv_is_warned_about_once():
    from orion.cli.agent_cmd import argv_secret_warning

    assert argv_secret_warning({"raft_secret_file": "/etc/orion/raft", "api_token": None}) is None
    warning = argv_secret_warning({"raft_secret": "s", "api_token": "t"})
    assert warning is not None and warning.count("--raft-secret and --api-token") == 1
    assert "--raft-secret-file" in warning and "ORION_RAFT_SECRET" in warning


# -- TLS on the API (issue #11) -----------------------------------------------------------------------
def _tls_flags(tls, **more):
    return {**SECRET, "tls_cert": str(tls.agent_cert), "tls_key": str(tls.agent_key), **more}


def test_tls_from_flags_env_and_file(tls, tmp_path):
    cfg = load_config(_tls_flags(tls, tls_client_ca=str(tls.ca)), env={})
    assert (cfg.tls_cert, cfg.tls_key, cfg.api_scheme) == (str(tls.agent_cert), str(tls.agent_key), "https")
    assert cfg.tls_ca == cfg.tls_client_ca == str(tls.ca)   # peers verified with the client CA by default
    env = {"ORION_TLS_CERT": str(tls.agent_cert), "ORION_TLS_KEY": str(tls.agent_key),
           "ORION_TLS_CA": str(tls.other_ca)}
    cfg = load_config(dict(SECRET), env=env)
    assert (cfg.tls_client_ca, cfg.tls_ca) == ("", str(tls.other_ca))
    toml = tmp_path / "orion.toml"
    toml.write_text(f'raft_secret = "s"\ntls_cert = "{tls.agent_cert}"\ntls_key = "{tls.agent_key}"\n'
                    f'tls_client_ca = "{tls.ca}"\n')
    cfg = load_config({"config": str(toml)}, env={})
    assert (cfg.api_scheme, cfg.tls_client_ca) == ("https", str(tls.ca))


def test_plain_http_without_tls_settings():
    cfg = load_config(dict(SECRET), env={})
    assert (cfg.api_scheme, cfg.tls_cert, cfg.tls_ca) == ("http", "", "")


@pytest.mark.parametrize(
    ("which", "message"),
    [
        ({"tls_cert": "cert"}, "--tls-cert needs --tls-key too"),
        ({"tls_key": "key"}, "--tls-key needs --tls-cert too"),
        ({"tls_client_ca": "ca"}, "--tls-client-ca needs --tls-cert and --tls-key"),
        ({"tls_ca": "ca"}, "--tls-ca needs --tls-cert and --tls-key"),
    ],
)
def test_tls_settings_come_in_pairs(tls, which, message):
    paths = {"cert": str(tls.agent_cert), "key": str(tls.agent_key), "ca": str(tls.ca)}
    with pytest.raises(ConfigError, match=message):
        load_config({**SECRET, **{k: paths[v] for k, v in which.items()}}, env={})


def test_unreadable_or_wrong_tls_files_are_named(tls, tmp_path):
    with pytest.raises(ConfigError, match=r"--tls-key: cannot read .*nope\.key"):
        load_config(_tls_flags(tls, tls_key=str(tmp_path / "nope.key")), env={})
    with pytest.raises(ConfigError, match=r"--tls-client-ca: cannot read .*nope\.pem"):
        load_config(_tls_flags(tls, tls_client_ca=str(tmp_path / "nope.pem")), env={})
    with pytest.raises(ConfigError, match="not a PEM certificate and its matching"):
        load_config(_tls_flags(tls, tls_key=str(tls.client_key)), env={})
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    with pytest.raises(ConfigError, match=r"--tls-ca: .*junk\.pem holds no PEM CA certificate"):
        load_config(_tls_flags(tls, tls_ca=str(tmp_path / "junk.pem")), env={})


def test_an_encrypted_key_is_refused_not_prompted_for(tls, tmp_path):
    encrypted = tmp_path / "encrypted.key"
    subprocess.run(["openssl", "pkey", "-in", str(tls.agent_key), "-aes256", "-passout", "pass:pw",
                    "-out", str(encrypted)], check=True, capture_output=True)
    with pytest.raises(ConfigError, match="not a PEM certificate and its matching unencrypted"):
        load_config(_tls_flags(tls, tls_key=str(encrypted)), env={})


def test_durability_is_fsync_unless_told_otherwise(tmp_path):
    assert load_config(dict(SECRET), env={}).durability == "fsync"
    assert load_config(dict(SECRET), env={"ORION_DURABILITY": "none"}).durability == "none"
    path = tmp_path / "orion.toml"
    path.write_text('durability = "none"\n')
    assert load_config({**SECRET, "config": str(path)}, env={}).durability == "none"
    assert load_config({**SECRET, "config": str(path), "durability": "fsync"}, env={}).durability == "fsync"


def test_host_volumes_from_flags_env_and_both_toml_spellings(tmp_path):
    data, logs = tmp_path / "data", tmp_path / "logs"
    data.mkdir(), logs.mkdir()
    path = tmp_path / "orion.toml"
    path.write_text(f'raft_secret = "f"\nhost_volumes = {{data = "{data}"}}\n')
    assert load_config({"config": str(path)}, env={}).host_volumes == {"data": str(data)}
    path.write_text(f'raft_secret = "f"\n[host_volumes.data]\npath = "{data}"\n[host_volumes.logs]\npath = "{logs}"\n')
    assert load_config({"config": str(path)}, env={}).host_volumes == {"data": str(data), "logs": str(logs)}
    env = {"ORION_HOST_VOLUMES": f"logs={logs}"}
    assert load_config({"config": str(path)}, env=env).host_volumes == {"logs": str(logs)}
    flags = {"host_volumes": {"data": str(data)}, **SECRET}
    assert load_config(flags, env=env).host_volumes == {"data": str(data)}
    assert load_config(dict(SECRET), env={}).host_volumes == {}


@pytest.mark.parametrize(("volumes", "message"), [
    ({"data": "relative/path"}, "host_volumes.data: 'relative/path' must be an absolute path"),
    ({"data": "/nonexistent/orion-volume"}, "host_volumes.data: /nonexistent/orion-volume does not exist"),
    ({"a/b": "/tmp"}, "'a/b' is not a volume name"),
    ({"x": "/tmp"}, "'x' is not a volume name"),
])
def test_bad_host_volumes_name_the_fix(volumes, message):
    with pytest.raises(ConfigError, match=message):
        load_config({"host_volumes": volumes, **SECRET}, env={})


def test_host_devices_and_privilege_are_the_operators_to_give(tmp_path):
    plain = load_config(dict(SECRET), env={})
    assert (plain.host_devices, plain.allow_privileged) == ((), False)  # nothing handed out by default
    path = tmp_path / "orion.toml"
    path.write_text('raft_secret = "f"\nhost_devices = ["/dev/null", "/dev/zero"]\nallow_privileged = true\n')
    got = load_config({"config": str(path)}, env={})
    assert (got.host_devices, got.allow_privileged) == (("/dev/null", "/dev/zero"), True)
    env = {"ORION_HOST_DEVICES": "/dev/zero", "ORION_ALLOW_PRIVILEGED": "0"}
    got = load_config({"config": str(path)}, env=env)
    assert (got.host_devices, got.allow_privileged) == (("/dev/zero",), False)
    assert load_config({**SECRET, "host_devices": ("/dev/null",)}, env=env).host_devices == ("/dev/null",)


@pytest.mark.parametrize(("devices", "message"), [
    (("dev/null",), "host_devices: 'dev/null' must be an absolute path"),
    (("/dev/orion-nonexistent",), "host_devices: /dev/orion-nonexistent: No such file or directory"),
    (("/etc/hostname",), "host_devices: /etc/hostname is not a device"),
])
def test_bad_host_devices_name_the_fix(devices, message):
    with pytest.raises(ConfigError, match=message):
        load_config({"host_devices": devices, **SECRET}, env={})


def test_a_host_volume_table_takes_a_path_only(tmp_path):
    path = tmp_path / "orion.toml"
    path.write_text('raft_secret = "f"\n[host_volumes.data]\npath = "/tmp"\nread_only = true\n')
    with pytest.raises(ConfigError, match="read_only is set per mount"):
        load_config({"config": str(path)}, env={})
