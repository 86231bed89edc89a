"""A throw-away certificate authority for the TLS tests, made with the `openssl` command.

- `make_test_pki(directory)`: a test CA and, signed by it, a server certificate for 127.0.0.1
  (IP SAN), localhost and the test names bridge.test and app.test, as files in `directory` (a
  pytest tmp dir: nothing is committed). `issue(name)` signs one more server certificate with a key of its own.
- `spki_sha256(cert)`: base64 SHA-256 of the certificate's SubjectPublicKeyInfo, what Chromium's
  `--ignore-certificate-errors-spki-list` takes.
- `resolver_flag()`: Chromium's flag mapping the test names to 127.0.0.1.
- `server_context(cert)`: a Python server-side SSLContext for that certificate.
- `official_rest(port, app, ca)`: the official `pusher` library over https, trusting `ca` only.
- `tls_flags(cert)`: the `bridge serve` flags for a TLS listener on an ephemeral port with `cert`;
  `tls_port(process)` reads that port from the log.
"""

from __future__ import annotations

import re
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pusher
import pytest
from pusher.requests import RequestsBackend

from pusher_helpers import MASTER_KEY_B64, TIMEOUT

OPENSSL = "openssl"
TLS_LISTENING_RE = re.compile(r"listening on https://127\.0\.0\.1:(\d+) \(TLS")
LIFETIME_DAYS = "2"
# Names the test browser resolves to 127.0.0.1 (--host-resolver-rules). Unlike 127.0.0.1 and
# localhost they are not "potentially trustworthy" origins, so Chromium applies its mixed-content
# rules to them as to any site on the internet.
BRIDGE_NAME = "bridge.test"
APP_NAME = "app.test"
TEST_NAMES = (BRIDGE_NAME, APP_NAME)


def openssl(*args: str, stdin: bytes | None = None) -> bytes:
    done = subprocess.run([OPENSSL, *args], input=stdin, capture_output=True, timeout=30)
    if done.returncode != 0:
        pytest.fail(f"openssl {' '.join(args)}: exit {done.returncode}: {done.stderr.decode()}")
    return done.stdout


@dataclass
class Certificate:
    """A server certificate: `chain` is leaf then CA (what a server sends), `key` its key."""

    leaf: Path
    chain: Path
    key: Path


@dataclass
class TestPKI:
    __test__ = False  # not a pytest test class despite the name

    directory: Path
    ca_cert: Path
    ca_key: Path
    server: Certificate

    def issue(self, name: str) -> Certificate:
        """Another server certificate for the same names, signed by the same CA, with a fresh
        key: it differs from `server` only in its key (so in its SPKI hash)."""
        return issue_certificate(self.directory, name, self.ca_cert, self.ca_key)


def make_test_pki(directory: Path) -> TestPKI:
    directory.mkdir(parents=True, exist_ok=True)
    ca_cert, ca_key = directory / "ca.pem", directory / "ca.key"
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", str(ca_key), "-out", str(ca_cert), "-days", LIFETIME_DAYS,
            "-subj", "/CN=Bridge test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    server = issue_certificate(directory, "server", ca_cert, ca_key)
    return TestPKI(directory, ca_cert, ca_key, server)


def issue_certificate(directory: Path, name: str, ca_cert: Path, ca_key: Path) -> Certificate:
    key, request, leaf = directory / f"{name}.key", directory / f"{name}.csr", directory / f"{name}.pem"
    extensions = directory / f"{name}.ext"
    extensions.write_text("basicConstraints=critical,CA:FALSE\n"
                          "keyUsage=critical,digitalSignature\n"
                          "extendedKeyUsage=serverAuth\n"
                          f"subjectAltName=IP:127.0.0.1,DNS:localhost,{','.join('DNS:' + n for n in TEST_NAMES)}\n"
                          "subjectKeyIdentifier=hash\n"
                          "authorityKeyIdentifier=keyid,issuer\n")
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", str(key), "-out", str(request), "-subj", "/CN=127.0.0.1")
    openssl("x509", "-req", "-in", str(request), "-CA", str(ca_cert), "-CAkey", str(ca_key),
            "-CAcreateserial", "-days", LIFETIME_DAYS, "-extfile", str(extensions), "-out", str(leaf))
    chain = directory / f"{name}-chain.pem"
    chain.write_bytes(leaf.read_bytes() + ca_cert.read_bytes())
    return Certificate(leaf, chain, key)


def spki_sha256(cert: Path) -> str:
    """base64(SHA-256(DER SubjectPublicKeyInfo)) of a PEM certificate, by the openssl command."""
    public_pem = openssl("x509", "-in", str(cert), "-noout", "-pubkey")
    der = openssl("pkey", "-pubin", "-outform", "der", stdin=public_pem)
    digest = openssl("dgst", "-sha256", "-binary", stdin=der)
    return openssl("base64", "-A", stdin=digest).decode().strip()


def resolver_flag() -> str:
    """Chromium's flag that sends the test names to 127.0.0.1 (no DNS is asked)."""
    return "--host-resolver-rules=" + ",".join(f"MAP {name} 127.0.0.1" for name in TEST_NAMES)


def server_context(cert: Certificate) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(cert.chain), str(cert.key))
    return context


class TestCABackend(RequestsBackend):
    """The official library's requests backend, verifying against the test CA instead of the
    CA bundle it ships (which it sets whenever ssl=True)."""

    __test__ = False

    def __init__(self, client, ca: str, **options):
        super().__init__(client, **options)
        self.options["verify"] = ca


def official_rest(port: int, app: dict, ca: Path) -> pusher.Pusher:
    return pusher.Pusher(app_id=str(app["id"]), key=app["key"], secret=app["secret"],
                         host="127.0.0.1", port=port, ssl=True, timeout=TIMEOUT,
                         encryption_master_key_base64=MASTER_KEY_B64,
                         backend=TestCABackend, ca=str(ca))


def tls_port(server) -> int:
    """The port of a started BridgeProcess's TLS listener, from its log line."""
    match = server.wait_for_log(TLS_LISTENING_RE, 5)
    assert match is not None, f"no 'listening on https://' line:\n{server.stderr_text}"
    return int(match.group(1))


def tls_flags(cert: Certificate) -> tuple[str, ...]:
    return ("--tls-port", "0", "--tls-cert", str(cert.chain), "--tls-key", str(cert.key))


__all__ = ["APP_NAME", "BRIDGE_NAME", "Certificate", "TestPKI", "make_test_pki", "official_rest",
           "resolver_flag", "server_context", "spki_sha256", "tls_flags", "tls_port"]
