"""The agent's settings, first half: who this node is, where it listens, whom it trusts.

Each field declares one setting (``orion/config/setting.py``): its type, the
shipped default with the reason for it, its help, its checks. ``AgentConfig``
(``orion/config/agent.py``) adds the timings and limits of the parts.
"""

from __future__ import annotations

from dataclasses import dataclass

from orion.config.setting import at_least, port_number, setting


@dataclass(frozen=True)
class Identity:
    """The node's identity, addresses, cluster, secrets, TLS and what it offers to tasks."""

    id: str = setting(
        "", "Node id (default: hostname)",
        "Identity: the hostname is unique in any sane fleet and stable across restarts. "
        "Empty -> socket.gethostname().", flag=True)
    bind: str = setting(
        "127.0.0.1", "Address to listen on",
        "Loopback by default: an agent must be told explicitly to listen on a network.", flag=True)
    advertise: str = setting(
        "", "Address peers dial (default: --bind)",
        "What peers dial; empty -> the bind address (wrong for 0.0.0.0: config checks that).", flag=True)
    port: int = setting(
        8000, "HTTP API port", "The seed's ports: API 8000, gossip 6000, Raft 7000.",
        flag=True, checks=(port_number,))
    gossip_port: int = setting(
        6000, "Gossip port, UDP+TCP", "The seed's ports: API 8000, gossip 6000, Raft 7000.",
        flag=True, checks=(port_number,))
    raft_port: int = setting(
        7000, "Raft port", "The seed's ports: API 8000, gossip 6000, Raft 7000.",
        flag=True, checks=(port_number,))
    data_dir: str = setting(
        "./orion-data", "Raft journal and snapshots",
        "Beside the working directory, for a demo; the fleet role puts it in /var/lib/orion.",
        flag=True)
    docker_host: str = setting(
        "unix:///var/run/docker.sock", "Docker engine; docker's own DOCKER_HOST comes just above the default",
        "The engine's usual socket, used when neither Orion's settings nor docker's own DOCKER_HOST "
        "name one (orion/config/load.py); tests and the demo point elsewhere.", flag=True)
    bootstrap: bool = setting(
        False, "Accepted for the seed's command lines; it only refuses --join. A node with no --join and "
        "no state in --data-dir starts a new cluster by itself",
        "Accepted for the seed's command lines and only checked against \"join\": what forms a new "
        "cluster is a node with no \"join\" and no Raft state in data_dir (it starts as its own leader).", flag=True)
    join: tuple[str, ...] = setting(
        (), "Gossip address HOST:GOSSIP_PORT of any member to join (repeatable); an API address "
        "HOST:API_PORT works too",
        "None: a node without join and without Raft state forms a new cluster (see bootstrap).", flag=True,
        metavar="HOST:PORT")
    raft_secret: str = setting(
        "", "The shared Raft secret",
        "pysyncobj unpickles every frame: without a secret an open Raft port is remote code "
        "execution. Required unless insecure_raft is set and the bind address is loopback.",
        flag=True, secret=True)
    insecure_raft: bool = setting(
        False, "Allow no Raft secret (loopback only)",
        "Off: running the Raft port without a secret must be asked for, and only on loopback.", flag=True)
    api_token: str = setting(
        "", "The API bearer token",
        "Empty: the API asks for no token (loopback demos and tests); the fleet role always sets one.",
        flag=True, secret=True)
    api_tokens_file: str = setting(
        "", "Named API tokens and client certificates with their scopes (TOML or JSON)",
        "Empty: api_token alone, an admin token named \"default\", as before. The file names each "
        "token (stored as its SHA-256, never itself) and each client certificate subject with a scope, "
        "read, write or admin (docs/api.md, \"Tokens and scopes\"); it is read again when it changes, "
        "so revoking a token needs no restart.", flag=True)
    audit_log: str = setting(
        "audit.log", "JSON-lines audit log of every write (relative: inside --data-dir)",
        "Every write to the API, and every exec session, is recorded on the node that took it: who, "
        "what, when, the answer (docs/api.md, \"Audit log\"). Beside the Raft journal by default, "
        "a directory the agent already owns; the fleet role may point it at /var/log/orion.")
    audit_log_max_bytes: int = setting(
        16 << 20, "Size at which the audit log is rotated (bytes)",
        "A record is ~300-600 bytes, so 16 MiB holds ~30,000 writes, days of a busy cluster's "
        "deployments; small enough to open in a pager.", checks=(at_least(4096),))
    audit_log_files: int = setting(
        8, "Audit log files kept, the current one included",
        "8 x 16 MiB: at most 128 MiB of a node's disk, weeks to months of history; ship the "
        "rotated files elsewhere (journald, a SIEM) for longer.", checks=(at_least(1),))
    # -- TLS on the API (README "TLS") -------------------------------------------------------
    tls_cert: str = setting(
        "", "PEM certificate: serve the API over HTTPS (with --tls-key)",
        "Empty: plain HTTP, for loopback demos and tests. A certificate and its key make the API "
        "HTTPS, and the same pair is this agent's client certificate towards its peers (so give "
        "it extendedKeyUsage serverAuth and clientAuth, as Nomad's and Consul's guides do).", flag=True)
    tls_key: str = setting(
        "", "PEM private key of --tls-cert", "Empty: plain HTTP (see tls_cert).", flag=True)
    tls_client_ca: str = setting(
        "", "CA whose client certificates the API requires (mTLS)",
        "The CA whose client certificates the API requires (mTLS, Nomad's verify_https_client). "
        "Empty: any client may connect and the API token alone guards the API.", flag=True)
    tls_ca: str = setting(
        "", "CA verifying the peers' certificates (default: --tls-client-ca)",
        "The CA that signed the peers' server certificates, to verify them when joining and "
        "probing. Empty: tls_client_ca (one cluster CA signs both), else the system's trust store.", flag=True)
    labels: dict[str, str] = setting(
        {}, "Node label KEY=VALUE (repeatable)",
        "None: labels are the operator's words for a node (disk=ssd, zone=a), matched by task selectors.",
        flag="--label", metavar="KEY=VALUE")
    host_volumes: dict[str, str] = setting(
        {}, "Host volume NAME=PATH that tasks may mount by name (repeatable)",
        "Host volumes this node offers to tasks, name -> absolute path (Nomad's host_volume): a task "
        "mounts one by name and is placed only on nodes that declare it. None by default: handing "
        "part of the host's filesystem to containers is the operator's decision, path by path. The "
        "path must exist (the agent creates nothing: owner and mode are the operator's to choose).",
        flag="--host-volume", metavar="NAME=PATH")
    host_devices: tuple[str, ...] = setting(
        (), "Host device PATH that tasks may be handed (repeatable)",
        "Host devices this node hands to tasks that ask for them (\"devices\": /dev/fuse, a GPU, a "
        "serial port): a task asking for one is placed only on nodes that list it. None by default: "
        "a device is a door into the host's kernel, opened by the operator path by path. The path "
        "must exist and be a device (or a directory of them, like /dev/snd).",
        flag="--host-device", metavar="PATH")
    allow_privileged: bool = setting(
        False, "Run tasks that ask for privileged containers",
        "Off: a privileged container is root on the host (every device, every capability, no "
        "seccomp or AppArmor). Tasks that ask for one (\"privileged\": true) are placed only on "
        "nodes that allow it, so an operator opens a few nodes for them, never the fleet by default.",
        flag=True)
