"""Agent configuration: flags > ``ORION_*`` environment > TOML file > defaults.

``docker_host`` has one more layer: docker's own ``DOCKER_HOST``, just above
the default socket (flag > ``ORION_DOCKER_HOST`` > file > ``DOCKER_HOST`` > default).

One function builds the final value so every entry point (CLI, systemd, tests)
gets the same precedence and the same error messages.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import ssl
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from orion.defaults import DEFAULTS
from orion.domain.resources import VOLUME_NAME_RE


class ConfigError(ValueError):
    """A setting is wrong; the message names it and says what to do."""


@dataclass(frozen=True)
class AgentConfig:
    """The agent's settings, every one required: their defaults (and the reasons for
    them) live once, in ``orion/defaults.py``, and ``load_config`` fills them in."""

    id: str
    bind: str
    advertise: str
    port: int
    gossip_port: int
    raft_port: int
    data_dir: str
    docker_host: str
    bootstrap: bool
    join: tuple[str, ...]
    raft_secret: str
    insecure_raft: bool
    api_token: str
    tls_cert: str
    tls_key: str
    tls_client_ca: str
    tls_ca: str
    labels: dict[str, str]
    host_volumes: dict[str, str]
    log_level: str
    http_threads: int
    max_log_follows: int
    max_body_bytes: int
    write_timeout: float
    placement_wait: float
    raft_election_min: float
    raft_election_max: float
    raft_compaction_entries: int
    durability: str
    reconcile_interval: float
    schedule_interval: float
    reserve_memory: int
    reserve_memory_fraction: float
    reserve_cpu_millis: int
    stop_timeout: float
    shutdown_timeout: float
    gossip_key: str
    gossip_probe_interval: float
    node_dead_after: float
    failover_grace: float
    restart_delay: float
    restart_max_delay: float
    restart_limit: int
    restart_window: float
    restart_local_attempts: int
    voter_cap: int
    dead_voter_cleanup: float
    heal_interval: float
    leave_on_terminate: bool
    drain_timeout: float
    restart_grace: float
    engine_down_grace: float
    engine_probe_interval: float
    drain_max_parallel: int
    drain_deadline: float
    drain_min_running: float
    network: bool
    network_cidr: str
    network_host_prefix: int
    network_vni: int
    network_port: int
    network_mtu: int
    service_cidr: str
    dns_resolv_conf: str
    dns_port: int
    datapath_interval: float

    @property
    def api_scheme(self) -> str:
        return "https" if self.tls_cert else "http"

    @property
    def api_addr(self) -> str:
        return f"{self.advertise}:{self.port}"

    @property
    def raft_addr(self) -> str:
        return f"{self.advertise}:{self.raft_port}"

    @property
    def gossip_addr(self) -> str:
        return f"{self.advertise}:{self.gossip_port}"


_BOOL_TRUE = {"1", "true", "yes", "on"}
_BOOL_FALSE = {"0", "false", "no", "off", ""}


def _coerce(name: str, value: Any, default: Any) -> Any:
    """Turn a string (env) or TOML value into the default's type, or say why not."""
    try:
        if isinstance(default, bool):
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in _BOOL_TRUE:
                return True
            if text in _BOOL_FALSE:
                return False
            raise ValueError(value)
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, list):
            if isinstance(value, str):
                return [v.strip() for v in value.split(",") if v.strip()]
            return [str(v) for v in value]
        if isinstance(default, dict):
            if isinstance(value, str):
                pairs = [p.split("=", 1) for p in value.split(",") if p.strip()]
                return {k.strip(): v.strip() for k, v in pairs}
            return {str(k): str(v) for k, v in dict(value).items()}
        return str(value)
    except (TypeError, ValueError) as exc:
        kind = type(default).__name__
        raise ConfigError(f"{name}: {value!r} is not a valid {kind}") from exc


def load_config(
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    config_file: str | None = None,
) -> AgentConfig:
    """Merge the layers and check the result. ``flags`` holds only flags the user gave."""
    env = os.environ if env is None else env
    values: dict[str, Any] = dict(DEFAULTS)
    # Docker's own variable is the engine every docker client on the host uses: a better
    # guess than the default socket, yet below every Orion setting (flag, ORION_*, file).
    if env.get("DOCKER_HOST"):
        values["docker_host"] = env["DOCKER_HOST"]
    path = (flags or {}).get("config") or env.get("ORION_CONFIG") or config_file
    if path:
        try:
            data = tomllib.loads(Path(path).read_text())
        except FileNotFoundError as exc:
            raise ConfigError(f"config file {path} does not exist; fix --config or ORION_CONFIG") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
        data = data.get("agent", data)
        unknown = sorted(set(data) - set(DEFAULTS))
        if unknown:
            raise ConfigError(f"config file {path}: unknown setting(s) {', '.join(unknown)}")
        for key, val in data.items():
            if key == "host_volumes" and isinstance(val, dict):
                val = {name: _volume_path(name, v) for name, v in val.items()}
            values[key] = _coerce(key, val, DEFAULTS[key])
    for key in DEFAULTS:
        env_key = "ORION_" + key.upper()
        if env_key in env:
            values[key] = _coerce(env_key, env[env_key], DEFAULTS[key])
    for key, val in (flags or {}).items():
        if key == "config" or val is None or key not in DEFAULTS:
            continue
        if isinstance(val, tuple | list) and not val and key in ("join",):
            continue
        values[key] = _coerce("--" + key.replace("_", "-"), val, DEFAULTS[key])
    return _finish(values)


def _volume_path(name: str, value: Any) -> Any:
    """A host volume in TOML: ``data = "/srv/data"``, or a table ``[host_volumes.data] path = ...``."""
    if not isinstance(value, dict):
        return value
    unknown = sorted(set(value) - {"path"})
    if unknown or "path" not in value:
        raise ConfigError(f"host_volumes.{name}: write path = \"/srv/{name}\" (and nothing else"
                          f"{'; read_only is set per mount, by the task' if 'read_only' in unknown else ''})")
    return value["path"]


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
    """The overlay's settings, checked before anything starts: a typo here would otherwise be
    fixed into the cluster by the first InitNetwork."""
    nets = {}
    for key in ("network_cidr", "service_cidr"):
        try:
            nets[key] = ipaddress.IPv4Network(values[key])
        except ValueError as exc:
            raise ConfigError(f"{_flag(key)}: {values[key]!r} is not an IPv4 network ({exc})") from exc
    if nets["network_cidr"].overlaps(nets["service_cidr"]):
        raise ConfigError(f"--service-cidr {nets['service_cidr']} overlaps --network-cidr {nets['network_cidr']}; "
                          "VIPs and task addresses must not share a range")
    prefix = values["network_host_prefix"]
    if not nets["network_cidr"].prefixlen < prefix <= 28:
        raise ConfigError(f"network_host_prefix {prefix} must be longer than --network-cidr's "
                          f"/{nets['network_cidr'].prefixlen} and at most /28 (a host needs room for tasks)")
    if not 0 < values["network_vni"] < 1 << 24:
        raise ConfigError(f"network_vni {values['network_vni']} is not a VXLAN id (1..16777215)")
    for key in ("network_port", "dns_port"):
        if not 1 <= values[key] <= 65535:
            raise ConfigError(f"{key} {values[key]} is outside 1-65535")
    if values["network_mtu"] and not 576 <= values["network_mtu"] <= 65485:
        raise ConfigError(f"--network-mtu {values['network_mtu']} must be 0 (the underlay's minus 50) "
                          "or from 576 to 65485")
    if values["datapath_interval"] <= 0:
        raise ConfigError("datapath_interval must be positive")


def _is_loopback(addr: str) -> bool:
    try:
        return ipaddress.ip_address(addr).is_loopback
    except ValueError:
        return addr == "localhost"


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def _read_secret(values: dict[str, Any], key: str) -> None:
    """``raft_secret_file`` -> ``raft_secret``: the file's text without its trailing newline."""
    path = values[key + "_file"]
    if not path:
        return
    if values[key]:
        raise ConfigError(f"{_flag(key)} and {_flag(key + '_file')} are both set; keep only the file "
                          f"(or ORION_{key.upper()}): a secret on the command line is visible in ps")
    try:
        secret = Path(path).read_text().rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{_flag(key + '_file')}: cannot read {path}: {getattr(exc, 'strerror', exc)}") from exc
    if not secret:
        raise ConfigError(f"{_flag(key + '_file')}: {path} is empty")
    values[key] = secret


def _check_tls(values: dict[str, Any]) -> None:
    """Both cert and key or neither; every file readable and what it claims to be. Checked
    here, before gunicorn starts, so a mistake is one sentence naming the flag and the file."""
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


def _finish(values: dict[str, Any]) -> AgentConfig:
    if not values["id"]:
        values["id"] = socket.gethostname()
    if not values["advertise"]:
        if values["bind"] in ("0.0.0.0", "::"):
            raise ConfigError("advertise: bind is a wildcard; set --advertise to the address peers should dial")
        values["advertise"] = values["bind"]
    for port_key in ("port", "gossip_port", "raft_port"):
        if not 1 <= int(values[port_key]) <= 65535:
            raise ConfigError(f"--{port_key.replace('_', '-')}: {values[port_key]} is outside 1-65535")
    ports = [(key, int(values[key])) for key in ("port", "gossip_port", "raft_port")]
    for i, (key, port) in enumerate(ports):
        for other, other_port in ports[i + 1:]:
            if port == other_port:  # gossip listens on TCP too: no two of the three may share
                raise ConfigError(f"{_flag(key)} and {_flag(other)} are both {port}; give each its own port")
    for key in ("raft_secret", "api_token"):
        _read_secret(values, key)
    _check_tls(values)
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
    if values["durability"] not in ("fsync", "none"):
        raise ConfigError(f"durability: {values['durability']!r} is not fsync or none")
    if values["voter_cap"] < 1:
        raise ConfigError("voter_cap must be at least 1 (odd numbers: 3 or 5)")
    if values["restart_delay"] <= 0 or values["restart_max_delay"] < values["restart_delay"]:
        raise ConfigError("restart_delay must be positive and at most restart_max_delay")
    _check_host_volumes(values["host_volumes"])
    _check_network(values)
    if not 0 <= values["max_log_follows"] < values["http_threads"]:
        raise ConfigError(f"max_log_follows ({values['max_log_follows']}) must be from 0 to below http_threads "
                          f"({values['http_threads']}): each follow holds a request thread")
    if values["drain_max_parallel"] < 1:
        raise ConfigError("drain_max_parallel must be at least 1 (a drain must be able to move something)")
    names = {f.name for f in fields(AgentConfig)}
    values = {k: v for k, v in values.items() if k in names}
    values["join"] = tuple(values["join"])
    return AgentConfig(**values)
