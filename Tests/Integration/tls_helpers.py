"""Helpers and fixtures for the tests over TLS: the TLS listener's (test_tls*.py), the browser's
(test_browser_tls.py), webhooks to https receivers and Redis over TLS.

- `TestPKI`: the one throwaway CA of a test run, and server certificates it signs, made with the
  `openssl` command in a tmp dir at test time (no key is ever committed): the default certificate
  (127.0.0.1, 127.0.0.2, localhost), another one for the same addresses (reloads), a.test,
  *.b.test, one that expired and one not valid yet (both through `openssl ca -startdate/-enddate`:
  openssl 3.0's `x509` has no `-not_after`, and `-days` cannot go negative), plus broken files
  (garbage PEM, a key that does not match). `issue()` signs more: other names (a wrong host), a
  chain file, a fresh key. `CertFiles.spki_sha256` is what Chromium's
  `--ignore-certificate-errors-spki-list` takes; `CertFiles.server_context()` serves the files.
- `TLSBridge`: a `pusher_bridge` server started with `--tls-port 0`, its TLS port read from the
  `listening on https://HOST:PORT` line the way conftest reads the plain one, and clients for
  it: the official `pusher` library over https, `PusherWS` over wss, raw TLS sockets
  (`tls_address` reads the listener of any BridgeProcess).
- `client_hello`: a real ClientHello from Python's ssl through memory BIOs, for the hostile tests.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import socket
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pusher
from pusher.requests import RequestsBackend

from conftest import Conn
from pusher_helpers import MASTER_KEY_B64, TIMEOUT, PusherServer, PusherWS, RawAPI, make_app

TLS_LISTENING_RE = re.compile(r"listening on https://([0-9.]+|localhost):(\d+) \(TLS")
RELOAD_FAILED = "certificates not reloaded"


@dataclass(frozen=True)
class CertFiles:
    cert: Path
    key: Path

    @property
    def der(self) -> bytes:
        """The leaf certificate in DER, as `SSLSocket.getpeercert(binary_form=True)` gives it."""
        return ssl.PEM_cert_to_DER_cert(self.cert.read_text().split("-----END CERTIFICATE-----")[0]
                                        + "-----END CERTIFICATE-----\n")

    def entry(self, *hostnames: str) -> dict:
        """One item of the config file's "tls-certificates"."""
        return {"hostnames": list(hostnames), "cert": str(self.cert), "key": str(self.key)}

    @property
    def spki_sha256(self) -> str:
        """base64(SHA-256(DER SubjectPublicKeyInfo)) of the leaf; a PEM public key is that DER
        in base64, so one openssl call is enough."""
        public_pem = openssl("x509", "-in", str(self.cert), "-noout", "-pubkey").decode()
        body = "".join(line for line in public_pem.splitlines() if not line.startswith("-----"))
        return base64.b64encode(hashlib.sha256(base64.b64decode(body)).digest()).decode()

    def server_context(self) -> ssl.SSLContext:
        """A Python server-side context that serves these files."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(str(self.cert), str(self.key))
        return context


def openssl(*args: str, cwd: Path | None = None) -> bytes:
    """The `openssl` command's output; the test fails with its stderr if it fails."""
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, timeout=60)
    assert result.returncode == 0, f"openssl {' '.join(args)}: {result.stderr.decode(errors='replace')}"
    return result.stdout


class TestPKI:
    """A CA and its certificates in `root`; see the module docstring for the list."""

    __test__ = False  # not a pytest test class

    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.ca = root / "ca.pem"
        self.ca_key = root / "ca.key"
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", str(self.ca_key), "-out", str(self.ca), "-days", "3",
                "-subj", "/CN=Bridge test CA",
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=root)
        self._prepare_ca_database()
        addresses = ["IP:127.0.0.1", "IP:127.0.0.2", "DNS:localhost"]
        self.server = self.issue("server", addresses)
        # RSA, so that TLS 1.2's ECDHE-RSA suites are exercised too.
        self.other = self.issue("other", addresses, rsa=True)
        self.a = self.issue("a", ["DNS:a.test"])
        self.b_wildcard = self.issue("b-wildcard", ["DNS:*.b.test"])
        self.expired = self.issue("expired", addresses, dates=("20200101000000Z", "20200102000000Z"))
        self.not_yet_valid = self.issue("future", addresses, dates=("20991231000000Z", "20991231235959Z"))
        self.garbage = CertFiles(root / "garbage.pem", self.server.key)
        self.garbage.cert.write_text("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n"
                                     "-----END CERTIFICATE-----\n")
        # Both P-256: the key parses and has the right type, it is just another key.
        self.mismatched = CertFiles(self.a.cert, self.server.key)
        # An RSA certificate with an EC key.
        self.mismatched_type = CertFiles(self.other.cert, self.server.key)

    def _prepare_ca_database(self) -> None:
        """What `openssl ca` needs: an index, a serial file and a minimal configuration."""
        (self.root / "index.txt").write_text("")
        (self.root / "serial").write_text("1000\n")
        (self.root / "issued").mkdir(exist_ok=True)
        self.ca_config = self.root / "ca.cnf"
        self.ca_config.write_text(
            "[ca]\ndefault_ca = test_ca\n"
            "[test_ca]\n"
            f"database = {self.root / 'index.txt'}\n"
            f"new_certs_dir = {self.root / 'issued'}\n"
            f"serial = {self.root / 'serial'}\n"
            "default_md = sha256\npolicy = any_name\nunique_subject = no\n"
            "[any_name]\ncommonName = supplied\n")

    def issue(self, name: str, alt_names: list[str], rsa: bool = False,
              dates: tuple[str, str] | None = None, chain: bool = False) -> CertFiles:
        """A server certificate signed by the CA, with a key of its own (P-256, or RSA 2048):
        valid from now for two days, or for `dates` (notBefore, notAfter as YYYYMMDDHHMMSSZ,
        which `openssl ca` takes). With `chain` the cert file holds the leaf then the CA, as a
        server sends them."""
        files = CertFiles(self.root / f"{name}.pem", self.root / f"{name}.key")
        csr = self.root / f"{name}.csr"
        extensions = self.root / f"{name}.ext"
        extensions.write_text("basicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature,keyEncipherment\n"
                              "extendedKeyUsage = serverAuth\n"
                              f"subjectAltName = {','.join(alt_names)}\n")
        key_options = ["-newkey", "rsa:2048"] if rsa else ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
        common_name = alt_names[0].split(":", 1)[1]
        openssl("req", "-new", *key_options, "-nodes", "-keyout", str(files.key), "-out", str(csr),
                "-subj", f"/CN={common_name}", cwd=self.root)
        if dates is None:
            openssl("x509", "-req", "-in", str(csr), "-CA", str(self.ca), "-CAkey", str(self.ca_key),
                    "-CAcreateserial", "-days", "2", "-extfile", str(extensions), "-out", str(files.cert),
                    cwd=self.root)
        else:
            openssl("ca", "-batch", "-notext", "-config", str(self.ca_config), "-cert", str(self.ca),
                    "-keyfile", str(self.ca_key), "-in", str(csr), "-out", str(files.cert),
                    "-startdate", dates[0], "-enddate", dates[1], "-extfile", str(extensions),
                    cwd=self.root)
        if chain:
            files.cert.write_bytes(files.cert.read_bytes() + self.ca.read_bytes())
        return files

    def client_context(self, alpn: list[str] | None = None, minimum: ssl.TLSVersion | None = None,
                       maximum: ssl.TLSVersion | None = None) -> ssl.SSLContext:
        """A client context that trusts only the test CA and checks host names."""
        context = ssl.create_default_context(cafile=str(self.ca))
        if alpn is not None:
            context.set_alpn_protocols(alpn)
        if minimum is not None:
            context.minimum_version = minimum
        if maximum is not None:
            context.maximum_version = maximum
        return context


@dataclass
class TLSExchange:
    """One request over TLS: the response bytes and what the handshake settled."""

    data: bytes
    version: str | None
    cipher: str
    alpn: str | None
    session: ssl.SSLSession | None
    session_reused: bool


def fingerprint(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()[:16]


class TrustingTestCA(RequestsBackend):
    """The official library's requests backend, verifying against the test CA: the library pins
    `verify` to its own bundle when `ssl=True`, so a backend (its documented hook) sets it."""

    def __init__(self, client: Any, ca: str, **options: Any):
        super().__init__(client, **options)
        self.options["verify"] = ca


def tls_address(proc) -> tuple[str, int]:
    """The host and port of a started BridgeProcess's TLS listener, from its log line."""
    match = proc.wait_for_log(TLS_LISTENING_RE, 10.0)
    assert match, f"no 'listening on https://' line:\n{proc.stderr_text}"
    return match.group(1), int(match.group(2))


class TLSBridge:
    """A running server with a TLS listener, and clients for both of its ports."""

    def __init__(self, server: PusherServer, pki: TestPKI):
        self.server = server
        self.proc = server.proc
        self.pki = pki
        self.tls_host, self.tls_port = tls_address(self.proc)
        assert 0 < self.tls_port < 65536 and self.tls_port != server.port

    @property
    def port(self) -> int:
        return self.server.port

    def rest(self, which: int | str = 0) -> pusher.Pusher:
        """The official library over https to the TLS listener, trusting the test CA."""
        app = self.server.app(which)
        return pusher.Pusher(app_id=str(app["id"]), key=app["key"], secret=app["secret"],
                             host=self.tls_host, port=self.tls_port, ssl=True, timeout=TIMEOUT,
                             encryption_master_key_base64=MASTER_KEY_B64, backend=TrustingTestCA,
                             ca=str(self.pki.ca))

    def api(self, which: int | str = 0) -> RawAPI:
        """Signed raw requests over https."""
        app = self.server.app(which)
        return RawAPI(self.tls_port, str(app["id"]), app["key"], app["secret"],
                      ssl_context=self.pki.client_context(), host=self.tls_host)

    def ws(self, which: int | str = 0, **kwargs: Any) -> PusherWS:
        """A PusherWS over wss://TLS_HOST:TLS_PORT, in TLS 1.2 unless `ssl_context` says otherwise.

        Why 1.2: the `websockets` sync client reads in a thread of its own from the moment the TLS
        handshake is done, while the caller's thread writes the upgrade request; CPython does not
        serialize SSL_read and SSL_write on one SSL object. In TLS 1.3 the server's session tickets
        arrive just then, so the reader is inside SSL_read as the request is written, and about one
        connection in 300 never sends its request (or the client crashes). The same happens against
        a `websockets` server, so it is the client's; in 1.2 the tickets come within the handshake.
        The raw TLS tests and pysher (one thread) run TLS 1.3."""
        app = self.server.app(which)
        kwargs.setdefault("key", app["key"])
        kwargs.setdefault("ssl_context", self.pki.client_context(maximum=ssl.TLSVersion.TLSv1_2))
        return PusherWS(self.tls_port, rest=self.rest(which), host=self.tls_host, **kwargs)

    def connect(self, context: ssl.SSLContext | None = None, server_hostname: str | None = None,
                timeout: float = TIMEOUT, **wrap: Any) -> ssl.SSLSocket:
        """A finished handshake to the TLS listener (host name checked against `server_hostname`,
        by default the listener's address)."""
        context = context or self.pki.client_context()
        raw = socket.create_connection((self.tls_host, self.tls_port), timeout=timeout)
        try:
            return context.wrap_socket(raw, server_hostname=server_hostname or self.tls_host, **wrap)
        except BaseException:
            raw.close()
            raise

    def conn(self, context: ssl.SSLContext | None = None, server_hostname: str | None = None,
             **wrap: Any) -> TLSConn:
        """conftest's raw HTTP/WebSocket helpers over a new TLS connection."""
        return TLSConn(self.connect(context, server_hostname, **wrap))

    def peer_certificate(self, server_hostname: str | None = None, verify: bool = True) -> bytes:
        """The DER leaf certificate the listener shows for `server_hostname` (SNI)."""
        context = self.pki.client_context()
        if not verify:
            context.check_hostname = False
        with self.connect(context, server_hostname) as tls:
            return tls.getpeercert(binary_form=True)

    def https_get(self, path: str, context: ssl.SSLContext | None = None, **wrap: Any) -> TLSExchange:
        """GET `path` with `Connection: close` over one TLS connection, read to the close."""
        with self.connect(context, **wrap) as tls:
            tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {self.tls_host}\r\nConnection: close\r\n\r\n".encode())
            data = bytearray()
            while chunk := tls.recv(65536):
                data += chunk
            return TLSExchange(bytes(data), tls.version(), tls.cipher()[0], tls.selected_alpn_protocol(),
                               tls.session, tls.session_reused)

    def fd_count(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))


class TLSConn(Conn):
    """conftest's `Conn` (HTTP and WebSocket helpers) over a finished TLS handshake."""

    def __init__(self, tls: ssl.SSLSocket):
        self.sock = tls
        self.buf = bytearray()
        self.eof = False


def tls_flags(files: CertFiles, *more: str) -> tuple[str, ...]:
    return ("--tls-port", "0", "--tls-cert", str(files.cert), "--tls-key", str(files.key), *more)


def tls_bridge_factory(pusher_bridge, pki: TestPKI):
    """The `tls_bridge` fixture of conftest.py: `start(*flags, cert=pki.server, apps=[app 1],
    options=None)` → TLSBridge (a `pusher_bridge` with `--tls-port 0` and that certificate)."""

    def start(*flags: str, cert: CertFiles | None = None, apps: list[dict] | None = None,
              options: dict | None = None) -> TLSBridge:
        server = pusher_bridge(apps or [make_app("1")], *tls_flags(cert or pki.server), *flags,
                               options=options)
        return TLSBridge(server, pki)

    return start


def client_hello(maximum: ssl.TLSVersion = ssl.TLSVersion.TLSv1_3, server_name: str = "localhost") -> bytes:
    """The bytes of a real ClientHello (one TLS record), as Python's ssl would send it."""
    context = ssl.create_default_context()
    context.maximum_version = maximum
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=server_name)
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = outgoing.read()
    assert hello[0] == 22 and len(hello) == 5 + int.from_bytes(hello[3:5], "big"), hello[:16]
    return hello
