"""A throwaway certificate authority for tests and benches, made with the ``openssl`` tool.

One cluster CA signs the agents' certificate (IP SAN 127.0.0.1, usable as server and
as client certificate, as an agent presents it to its peers) and an operator's client
certificate; a second CA signs nothing here, so trusting it must fail. EC P-256 keys:
the whole set takes a few tens of milliseconds.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

_OPENSSL_CNF = """\
[req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[agent]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth,clientAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[operator]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


@dataclass(frozen=True)
class TlsFiles:
    ca: Path            # the cluster CA's certificate
    agent_cert: Path    # the agents' certificate (serverAuth + clientAuth, IP 127.0.0.1)
    agent_key: Path
    client_cert: Path   # an operator's client certificate (clientAuth)
    client_key: Path
    other_ca: Path      # a CA that signed none of these


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _key(path: Path) -> Path:
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(path))
    return path


def _ca(root: Path, name: str, cnf: Path) -> tuple[Path, Path]:
    key, cert = _key(root / f"{name}.key"), root / f"{name}.pem"
    _openssl("req", "-x509", "-new", "-key", str(key), "-subj", f"/CN={name}", "-days", "2",
             "-config", str(cnf), "-extensions", "ca", "-out", str(cert))
    return cert, key


def _signed(root: Path, name: str, section: str, ca: tuple[Path, Path], cnf: Path) -> tuple[Path, Path]:
    key, csr, cert = _key(root / f"{name}.key"), root / f"{name}.csr", root / f"{name}.pem"
    _openssl("req", "-new", "-key", str(key), "-subj", f"/CN={name}", "-config", str(cnf), "-out", str(csr))
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]), "-CAcreateserial",
             "-days", "2", "-extfile", str(cnf), "-extensions", section, "-out", str(cert))
    return cert, key


def make_tls(root: Path) -> TlsFiles:
    root.mkdir(parents=True, exist_ok=True)
    cnf = root / "openssl.cnf"
    cnf.write_text(_OPENSSL_CNF)
    ca = _ca(root, "orion-test-ca", cnf)
    other_ca, _ = _ca(root, "other-ca", cnf)
    agent_cert, agent_key = _signed(root, "agent", "agent", ca, cnf)
    client_cert, client_key = _signed(root, "operator", "operator", ca, cnf)
    return TlsFiles(ca[0], agent_cert, agent_key, client_cert, client_key, other_ca)
