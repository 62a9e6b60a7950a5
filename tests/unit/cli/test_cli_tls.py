"""The `orion` CLI against an HTTPS API that requires client certificates (mTLS).

The server is the real app under werkzeug with a real TLS context, made from the
throwaway CA of ``tests/tls_kit.py``: every failure the CLI explains below is a
real handshake failing, and each message must name the option that fixes it.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator

import pytest
from click.testing import CliRunner, Result
from parts import api_deps
from werkzeug.serving import make_server

from orion.api.app import create_app
from orion.cli.main import main
from orion.domain.model import NodeInfo, Resources
from orion.state.commands import RegisterNode
from orion.store.local import LocalStore


def _store() -> LocalStore:
    store = LocalStore()
    node = NodeInfo(id="node1", api_addr="127.0.0.1:8000", raft_addr="127.0.0.1:7000",
                    capacity=Resources(memory=1 << 30, cpu_millis=1000))
    store.submit(RegisterNode(node=node), 1.0)
    return store


class TlsServer:
    def __init__(self, tls, require_client_cert: bool) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls.agent_cert, tls.agent_key)
        if require_client_cert:
            context.load_verify_locations(cafile=tls.ca)
            context.verify_mode = ssl.CERT_REQUIRED
        app = create_app(api_deps(_store()))
        self.httpd = make_server("127.0.0.1", 0, app, threaded=True, ssl_context=context)
        self.port = self.httpd.server_port
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.thread.join()
        self.httpd.server_close()


@pytest.fixture
def mtls(tls) -> Iterator[TlsServer]:
    srv = TlsServer(tls, require_client_cert=True)
    yield srv
    srv.close()


def orion(addr: str, *args: str, env: dict[str, str] | None = None) -> Result:
    env = {"ORION_ADDR": "", "ORION_API_TOKEN": "", "ORION_CACERT": "", "ORION_CLIENT_CERT": "",
           "ORION_CLIENT_KEY": "", **(env or {})}
    result = CliRunner(env=env).invoke(main, ["--addr", addr, *args])
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return result


def _identity(tls) -> list[str]:
    return ["--ca-cert", str(tls.ca), "--client-cert", str(tls.client_cert), "--client-key", str(tls.client_key)]


def test_nodes_over_mtls_with_flags_or_environment(mtls, tls) -> None:
    addr = f"https://127.0.0.1:{mtls.port}"
    result = orion(addr, *_identity(tls), "nodes")
    assert result.exit_code == 0, result.output
    assert "node1" in result.stdout
    env = {"ORION_CACERT": str(tls.ca), "ORION_CLIENT_CERT": str(tls.client_cert),
           "ORION_CLIENT_KEY": str(tls.client_key)}
    assert orion(addr, "nodes", env=env).exit_code == 0


def test_an_untrusted_agent_certificate_names_ca_cert(mtls, tls) -> None:
    addr = f"https://127.0.0.1:{mtls.port}"
    for args in ([], ["--ca-cert", str(tls.other_ca)]):
        result = orion(addr, *args, "ps")
        assert result.exit_code == 1
        assert result.stderr.strip() == (
            f"Error: TLS with Orion at {addr} failed: certificate verify failed: the agent's certificate "
            "is not signed by a CA this client trusts; pass --ca-cert / ORION_CACERT with the cluster's CA")


def test_a_missing_client_certificate_names_client_cert(mtls, tls) -> None:
    result = orion(f"https://127.0.0.1:{mtls.port}", "--ca-cert", str(tls.ca), "ps")
    assert result.exit_code == 1
    assert "requires a client certificate" in result.stderr
    assert "--client-cert and --client-key (ORION_CLIENT_CERT / ORION_CLIENT_KEY)" in result.stderr
    # A certificate the agent does not trust: signed by another CA (here: self-signed).
    result = orion(f"https://127.0.0.1:{mtls.port}", "--ca-cert", str(tls.ca), "--client-cert",
                   str(tls.other_ca), "--client-key", str(tls.other_ca.with_suffix(".key")), "ps")
    assert result.exit_code == 1
    assert "the agent refused the client certificate" in result.stderr


def test_the_wrong_scheme_either_way_says_which_to_use(mtls, tls) -> None:
    plain_to_tls = orion(f"http://127.0.0.1:{mtls.port}", "ps")
    assert plain_to_tls.exit_code == 1
    assert "use an https:// --addr" in plain_to_tls.stderr
    plain = make_server("127.0.0.1", 0, create_app(api_deps(_store())), threaded=True)
    thread = threading.Thread(target=plain.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        tls_to_plain = orion(f"https://127.0.0.1:{plain.server_port}", *_identity(tls), "ps")
    finally:
        plain.shutdown()
        thread.join()
        plain.server_close()
    assert tls_to_plain.exit_code == 1
    assert "the agent speaks plain HTTP, not TLS; use an http:// --addr" in tls_to_plain.stderr


def test_tls_option_mistakes_are_named(mtls, tls, tmp_path) -> None:
    addr = f"https://127.0.0.1:{mtls.port}"
    assert orion(addr, "--client-key", str(tls.client_key), "ps").exit_code == 2
    missing = orion(addr, "--ca-cert", str(tmp_path / "nope.pem"), "ps")
    assert missing.exit_code == 2 and "nope.pem" in missing.stderr
    mismatched = orion(addr, "--client-cert", str(tls.client_cert), "--client-key", str(tls.agent_key), "ps")
    assert mismatched.exit_code == 1
    assert "not a certificate and its matching key" in mismatched.stderr
