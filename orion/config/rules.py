"""What relates several settings, and the files they name: checked once every layer is read.

A value on its own is checked by its declaration (``setting.py``); these rules need
two settings or the filesystem (both TLS files or neither, three distinct ports, a
secret read from its file). Checked before gunicorn starts, so a mistake is one
sentence naming the flag and, where there is one, the file.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import ssl
import stat
from dataclasses import fields
from pathlib import Path
from typing import Any

from orion.config.agent import BY_NAME, SETTINGS, AgentConfig
from orion.config.setting import ConfigError
from orion.domain.resources import VOLUME_NAME_RE


def finish(values: dict[str, Any]) -> AgentConfig:
    """The merged layers -> the config: derived values filled in, every rule checked."""
    if not values["id"]:
        values["id"] = socket.gethostname()
    if not values["advertise"]:
        if values["bind"] in ("0.0.0.0", "::"):
            raise ConfigError("advertise: bind is a wildcard; set --advertise to the address peers should dial")
        values["advertise"] = values["bind"]
    ports = [(key, int(values[key])) for key in ("port", "gossip_port", "raft_port")]
    for i, (key, port) in enumerate(ports):
        for other, other_port in ports[i + 1:]:
            if port == other_port:  # gossip listens on TCP too: no two of the three may share
                raise ConfigError(f"{_flag(key)} and {_flag(other)} are both {port}; give each its own port")
    for companion in SETTINGS:
        if companion.file_of:
            _read_secret(values, companion.file_of)
    _check_key_file(values["cluster_key_file"])
    _check_tls(values)
    if values["api_tokens_file"] and not values["api_token"]:
        raise ConfigError(f"{_flag('api_tokens_file')} needs {_flag('api_token_file')} too: the agents call "
                          "each other with that token (the admin token named \"default\"), which the tokens "
                          "file, holding only hashes, cannot give them")
    if values["bootstrap"] and values["join"]:
        raise ConfigError("--bootstrap and --join exclude each other: bootstrap the first node, join the rest")
    if not values["raft_secret"]:
        if not values["insecure_raft"]:
            raise ConfigError(
                "raft_secret: the Raft port unpickles what it receives, so it needs a shared secret; "
                "set --raft-secret-file (or ORION_RAFT_SECRET), or --insecure-raft on loopback only"
            )
        if not _is_loopback(values["bind"]):
            raise ConfigError("--insecure-raft is allowed only with a loopback --bind; set --raft-secret-file")
    if values["raft_election_min"] >= values["raft_election_max"]:
        raise ConfigError("raft_election_min must be below raft_election_max")
    if values["restart_max_delay"] < values["restart_delay"]:
        raise ConfigError("restart_delay must be positive and at most restart_max_delay")
    _check_host_volumes(values["host_volumes"])
    _check_network(values)
    _check_host_devices(values["host_devices"])
    return AgentConfig(**{f.name: values[f.name] for f in fields(AgentConfig)})


def _flag(name: str) -> str:
    return BY_NAME[name].named


def _is_loopback(addr: str) -> bool:
    try:
        return ipaddress.ip_address(addr).is_loopback
    except ValueError:
        return addr == "localhost"


def _read_secret(values: dict[str, Any], key: str) -> None:
    """``raft_secret_file`` -> ``raft_secret``: the file's text without its trailing newline."""
    path = values[key + "_file"]
    if not path:
        return
    if values[key]:
        raise ConfigError(f"{_flag(key)} and {_flag(key + '_file')} are both set; keep only the file "
                          f"(or {BY_NAME[key].env}): a secret on the command line is visible in ps")
    try:
        secret = Path(path).read_text().rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{_flag(key + '_file')}: cannot read {path}: {getattr(exc, 'strerror', exc)}") from exc
    if not secret:
        raise ConfigError(f"{_flag(key + '_file')}: {path} is empty")
    problem = BY_NAME[key].problem(secret)
    if problem:
        raise ConfigError(f"{_flag(key + '_file')}: {path}: {problem}")
    values[key] = secret


def _check_key_file(path: str) -> None:
    """The cluster key file is the agent's alone: mode 0600 (or stricter), as ssh wants of a key."""
    if not path:
        return
    mode = os.stat(path).st_mode & 0o777
    if mode & 0o077:
        raise ConfigError(f"--cluster-key-file: {path} is mode {mode:04o}; others must not read the cluster "
                          f"key: chmod 600 {path}")


def _check_host_volumes(volumes: dict[str, str]) -> None:
    """Each name a volume name, each path absolute and present: a typo found at start, not when
    the first task that mounts it fails on this node."""
    for name, path in volumes.items():
        if not VOLUME_NAME_RE.match(name):
            raise ConfigError(f"host_volumes: {name!r} is not a volume name; use letters, digits, '_', '.', '-' "
                              "(start alphanumeric, at least two characters)")
        if not os.path.isabs(path):
            raise ConfigError(f"host_volumes.{name}: {path!r} must be an absolute path")
        if not os.path.exists(path):
            raise ConfigError(f"host_volumes.{name}: {path} does not exist; create it with the owner and mode "
                              "the tasks need (the agent creates nothing)")


def _check_network(values: dict[str, Any]) -> None:
    """The overlay's two ranges apart and the host prefix inside the cluster's: a typo here would
    otherwise be fixed into the cluster by the first InitNetwork. (Each value alone: network.py.)"""
    cluster, services = (ipaddress.IPv4Network(values[key]) for key in ("network_cidr", "service_cidr"))
    if cluster.overlaps(services):
        raise ConfigError(f"--service-cidr {services} overlaps --network-cidr {cluster}; "
                          "VIPs and task addresses must not share a range")
    prefix = values["network_host_prefix"]
    if not cluster.prefixlen < prefix <= 28:
        raise ConfigError(f"network_host_prefix {prefix} must be longer than --network-cidr's "
                          f"/{cluster.prefixlen} and at most /28 (a host needs room for tasks)")


def _check_host_devices(devices: tuple[str, ...]) -> None:
    """Each an absolute path to a device (or a directory of them), found at start."""
    for path in devices:
        if not os.path.isabs(path) or ".." in path.split("/"):
            raise ConfigError(f"host_devices: {path!r} must be an absolute path without '..'")
        try:
            mode = os.stat(path).st_mode
        except OSError as exc:
            raise ConfigError(f"host_devices: {path}: {exc.strerror}") from None
        if not (stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISDIR(mode)):
            raise ConfigError(f"host_devices: {path} is not a device (nor a directory of devices)")


def _check_tls(values: dict[str, Any]) -> None:
    """Both cert and key or neither; every file readable and what it claims to be."""
    cert, key = values["tls_cert"], values["tls_key"]
    if bool(cert) != bool(key):
        given, missing = ("tls_cert", "tls_key") if cert else ("tls_key", "tls_cert")
        raise ConfigError(f"{_flag(given)} needs {_flag(missing)} too: the API serves HTTPS with a "
                          "certificate and its private key, or plain HTTP with neither")
    if not cert:
        for ca in ("tls_client_ca", "tls_ca"):
            if values[ca]:
                raise ConfigError(f"{_flag(ca)} needs --tls-cert and --tls-key: it only means something "
                                  "when the API serves HTTPS")
        return
    for name in ("tls_cert", "tls_key", "tls_client_ca", "tls_ca"):
        if values[name]:
            try:
                Path(values[name]).open("rb").close()
            except OSError as exc:
                raise ConfigError(f"{_flag(name)}: cannot read {values[name]}: {exc.strerror}") from exc
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key, password=_no_passphrase)
    except ssl.SSLError as exc:
        raise ConfigError(f"--tls-cert {cert} and --tls-key {key} are not a PEM certificate and its "
                          f"matching unencrypted private key ({getattr(exc, 'reason', None) or exc})") from exc
    for name in ("tls_client_ca", "tls_ca"):
        if values[name]:
            try:
                context.load_verify_locations(cafile=values[name])
            except ssl.SSLError as exc:
                raise ConfigError(f"{_flag(name)}: {values[name]} holds no PEM CA certificate "
                                  f"({getattr(exc, 'reason', None) or exc})") from exc
    values["tls_ca"] = values["tls_ca"] or values["tls_client_ca"]


def _no_passphrase() -> str:
    """An encrypted key would make OpenSSL prompt on the terminal: refuse it instead."""
    raise ssl.SSLError("the key is encrypted; the agent has no way to ask for its passphrase")
