"""PeerHttp: how an agent calls a peer's API, over a real mTLS socket on loopback."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator

import pytest
import requests
from flask import Flask, jsonify, request
from werkzeug.serving import make_server

from orion.agent.compose import peer_http
from orion.config import load_config
from orion.peer_http import PeerHttp


def test_an_address_becomes_a_url_in_the_clusters_scheme():
    assert PeerHttp().url("10.0.0.5:8000", "/health") == "http://10.0.0.5:8000/health"
    assert PeerHttp(scheme="https").url("10.0.0.5:8000", "/cluster/members") == \
        "https://10.0.0.5:8000/cluster/members"
    assert PeerHttp(scheme="https").url("http://10.0.0.5:8000/", "/x") == "http://10.0.0.5:8000/x"


def test_the_agent_builds_its_peer_client_from_its_own_settings(tls):
    plain = peer_http(load_config({"raft_secret": "s", "api_token": "t"}, env={}))
    assert plain == PeerHttp(scheme="http", token="t")
    cfg = load_config({"raft_secret": "s", "tls_cert": str(tls.agent_cert), "tls_key": str(tls.agent_key),
                       "tls_client_ca": str(tls.ca)}, env={})
    assert peer_http(cfg) == PeerHttp(scheme="https", ca_file=str(tls.ca), client_cert=str(tls.agent_cert),
                                      client_key=str(tls.agent_key))


@pytest.fixture
def mtls_peer(tls) -> Iterator[int]:
    """A peer that requires a client certificate from the cluster CA and echoes what it saw."""
    app = Flask("peer")

    @app.get("/seen")
    def seen():  # noqa: ANN202
        cert = request.environ.get("werkzeug.socket").getpeercert()
        subject = dict(pair[0] for pair in cert["subject"])
        return jsonify({"client": subject["commonName"], "auth": request.headers.get("Authorization")})

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls.agent_cert, tls.agent_key)
    context.load_verify_locations(cafile=tls.ca)
    context.verify_mode = ssl.CERT_REQUIRED
    httpd = make_server("127.0.0.1", 0, app, threaded=True, ssl_context=context)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield httpd.server_port
    httpd.shutdown()
    thread.join()
    httpd.server_close()


def test_a_peer_call_carries_trust_identity_and_token(tls, mtls_peer, monkeypatch):
    # requests would let this override a Session's verify (psf/requests#3829): ours must win.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls.other_ca))
    peer = PeerHttp(scheme="https", ca_file=str(tls.ca), client_cert=str(tls.agent_cert),
                    client_key=str(tls.agent_key), token="t0ken")
    resp = peer.get(f"127.0.0.1:{mtls_peer}", "/seen", timeout=5)
    assert resp.json() == {"client": "agent", "auth": "Bearer t0ken"}


def test_a_peer_without_the_right_ca_or_certificate_fails_in_tls(tls, mtls_peer):
    addr = f"127.0.0.1:{mtls_peer}"
    with pytest.raises(requests.exceptions.SSLError):
        PeerHttp(scheme="https", ca_file=str(tls.other_ca), client_cert=str(tls.agent_cert),
                 client_key=str(tls.agent_key)).get(addr, "/seen", timeout=5)
    with pytest.raises(requests.exceptions.SSLError):
        PeerHttp(scheme="https", ca_file=str(tls.ca)).get(addr, "/seen", timeout=5)
