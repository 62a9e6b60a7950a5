"""The agent's start-up checks against real sockets on loopback and this host's /proc."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from orion.agent.preflight import PreflightError, find_holder, parse_proc_net, preflight
from orion.cli.agent_cmd import agent
from orion.config import ConfigError, load_config

# /proc/net/tcp as the kernel writes it: 127.0.0.1:8000 listening (0A), one connection to it.
PROC_NET_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 424242 1 0 100 0 0 10 0
   1: 0100007F:D431 0100007F:1F40 01 00000000:00000000 00:00000000 00000000  1000        0 515151 1 0 20 4 30 10 -1
"""


def test_proc_net_rows_give_port_state_uid_and_inode() -> None:
    rows = parse_proc_net(PROC_NET_TCP)
    assert [(r.port, r.state, r.uid, r.inode) for r in rows] == [(8000, "0A", 0, 424242), (54321, "01", 1000, 515151)]


def test_proc_net_skips_what_it_cannot_read() -> None:
    assert parse_proc_net("header\n  garbage line\n   0: 0100007F:ZZZZ x 0A a b c 0 0 1\n") == []


@pytest.fixture
def tcp_holder() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_the_holder_of_a_port_is_named_with_its_pid(tcp_holder: int) -> None:
    holder = find_holder("tcp", tcp_holder)
    assert holder is not None and holder.startswith(f"pid {os.getpid()} (")
    assert "\n" not in holder


def test_a_free_port_has_no_holder() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        free_udp = sock.getsockname()[1]
    assert find_holder("udp", free_udp) is None


def _config(tmp_path: Path, **ports: int) -> object:
    free = _free_ports(3)
    flags = {"id": "n1", "bind": "127.0.0.1", "insecure_raft": True, "data_dir": str(tmp_path / "data"),
             "port": free[0], "gossip_port": free[1], "raft_port": free[2], **ports}
    return load_config(flags, env={})


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for sock in socks:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in socks]
    for sock in socks:
        sock.close()
    return ports


def test_preflight_keeps_the_api_socket_listening(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    listener = preflight(cfg)
    try:
        assert listener.getsockname() == ("127.0.0.1", cfg.port)
        with socket.create_connection(("127.0.0.1", cfg.port), timeout=1):
            pass  # accepted into the backlog: the port is held before gunicorn starts
    finally:
        listener.close()
    assert (tmp_path / "data").is_dir()


@pytest.mark.parametrize(("flag", "kind"), [("--port", socket.SOCK_STREAM), ("--gossip-port", socket.SOCK_DGRAM),
                                            ("--gossip-port", socket.SOCK_STREAM), ("--raft-port", socket.SOCK_STREAM)])
def test_a_taken_port_names_its_flag_address_and_holder(tmp_path: Path, flag: str, kind: socket.SocketKind) -> None:
    with socket.socket(socket.AF_INET, kind) as taken:
        taken.bind(("127.0.0.1", 0))
        if kind == socket.SOCK_STREAM:
            taken.listen()
        port = taken.getsockname()[1]
        cfg = _config(tmp_path, **{flag[2:].replace("-", "_"): port})
        with pytest.raises(PreflightError) as caught:
            preflight(cfg)
    proto = "UDP" if kind == socket.SOCK_DGRAM else "TCP"
    text = str(caught.value)
    assert text.startswith(f"{flag} 127.0.0.1:{port} ({proto}) is already in use by pid {os.getpid()} (")
    assert text.endswith(f"); stop it or choose another {flag}")
    if flag != "--port":  # the API socket, bound before the failure, is released again
        with socket.socket() as again:
            again.bind(("127.0.0.1", cfg.port))


def test_a_data_dir_that_cannot_be_created_is_named(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    cfg = _config(tmp_path, data_dir=str(tmp_path / "file" / "data"))
    with pytest.raises(PreflightError, match=r"^--data-dir .*/file/data: cannot create it"):
        preflight(cfg)


def _agent(*args: str) -> tuple[int, str]:
    result = CliRunner(env={"ORION_RAFT_SECRET": None, "ORION_CONFIG": None}).invoke(agent, list(args))
    assert "Traceback" not in result.output
    return result.exit_code, result.stderr


@pytest.mark.parametrize(("args", "says"), [
    (["--tls-cert", "/nonexistent/cert.pem", "--tls-key", "/nonexistent/key.pem", "--insecure-raft"],
     "Error: --tls-cert: cannot read /nonexistent/cert.pem: No such file or directory"),
    (["--tls-cert", "/etc/hostname", "--insecure-raft"], "Error: --tls-cert needs --tls-key too"),
    (["--config", "/nonexistent.toml"], "Error: config file /nonexistent.toml does not exist"),
    (["--raft-secret-file", "/nonexistent/secret"], "Error: --raft-secret-file: cannot read /nonexistent/secret"),
    ([], "Error: raft_secret: the Raft port unpickles what it receives"),
    (["--insecure-raft", "--port", "7000", "--gossip-port", "7000"],
     "Error: --port and --gossip-port are both 7000; give each its own port"),
])
def test_a_setting_that_cannot_work_is_one_line_and_exit_2(args: list[str], says: str) -> None:
    code, stderr = _agent("--bind", "127.0.0.1", *args)
    assert code == 2
    assert stderr.startswith(says)
    assert stderr.count("\n") == 1, stderr


def test_a_taken_port_ends_the_agent_command_with_exit_2(tmp_path: Path, tcp_holder: int) -> None:
    code, stderr = _agent("--bind", "127.0.0.1", "--insecure-raft", "--data-dir", str(tmp_path),
                          "--raft-port", str(tcp_holder), "--port", str(_free_ports(1)[0]))
    assert code == 2
    assert stderr.startswith(f"Error: --raft-port 127.0.0.1:{tcp_holder} (TCP) is already in use by pid ")
    assert stderr.count("\n") == 1


def test_a_tokens_file_that_does_not_parse_stops_the_agent_naming_the_entry(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.toml"
    tokens.write_text('[[token]]\nname = "ci"\nscope = "root"\nsha256 = "' + "a" * 64 + '"\n')
    cfg = _config(tmp_path, api_token="t", api_tokens_file=str(tokens))
    with pytest.raises(PreflightError, match=r"^--api-tokens-file .*tokens.toml: token\[0\].scope: scope 'root'"):
        preflight(cfg)


def test_a_tokens_file_without_the_agents_own_token_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--api-tokens-file needs --api-token-file too"):
        _config(tmp_path, api_tokens_file=str(tmp_path / "tokens.toml"))


def test_an_audit_log_that_cannot_be_written_is_named_and_a_relative_one_lives_in_the_data_dir(
        tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(PreflightError, match=r"^audit_log .*/file/audit.log: cannot append to it"):
        preflight(_config(tmp_path, audit_log=str(tmp_path / "file" / "audit.log")))
    preflight(_config(tmp_path)).close()
    audit = tmp_path / "data" / "audit.log"
    assert audit.exists() and audit.stat().st_mode & 0o777 == 0o600
