"""The TLS listener's certificates: chosen by SNI from the config file's "tls-certificates",
reloaded on SIGHUP (a broken new one refused with one ERROR line, the old one kept), refused at
start when broken or expired, and the usage errors of the TLS options."""

from __future__ import annotations

import json
import shutil
import signal
import time
from pathlib import Path

import pytest

from pusher_helpers import make_app, run_bridge_once
from tls_helpers import RELOAD_FAILED, CertFiles, TestPKI, fingerprint, tls_flags

CHANNEL = "news"


def names(pki: TestPKI) -> dict[str, str]:
    """Certificate fingerprints → names, for readable assertion messages."""
    return {fingerprint(files.der): name for name, files in
            (("server", pki.server), ("other", pki.other), ("a", pki.a), ("b-wildcard", pki.b_wildcard))}


def sni_config(pki: TestPKI) -> dict:
    return {"tls-certificates": [pki.a.entry("a.test"), pki.b_wildcard.entry("*.b.test")]}


@pytest.mark.parametrize("server_name,expected", [
    ("a.test", "a"),
    ("A.TEST", "a"),
    ("x.b.test", "b-wildcard"),
    ("b.test", "server"),  # *.b.test covers one label, not the parent
    ("y.x.b.test", "server"),  # nor two
    ("other.test", "server"),  # no certificate for it: the default
    (None, "server"),  # an address: Python sends no SNI
])
def test_sni_chooses_the_certificate(tls_bridge, pki, server_name, expected):
    server = tls_bridge(options=sni_config(pki))
    assert "(TLS 1.2/1.3, 3 certificate(s))" in server.proc.stderr_text
    verify = expected != "server" or server_name is None
    der = server.peer_certificate(server_name, verify=verify)
    assert names(pki).get(fingerprint(der)) == expected


def test_sni_names_are_served_over_wss(tls_bridge, pki):
    """A client that asks for a.test by name completes a verified handshake and a Pusher session."""
    server = tls_bridge(options=sni_config(pki))
    conn = server.conn(server_hostname="a.test")
    with conn:
        conn.upgrade("/app/key-1?protocol=7")
        frame = conn.read_message()
        assert b"pusher:connection_established" in frame[1]


class LiveFiles:
    """Certificate files a test rewrites under the running server, as an operator would."""

    def __init__(self, directory: Path, name: str, initial: CertFiles):
        self.files = CertFiles(directory / f"{name}.pem", directory / f"{name}.key")
        self.put(initial)

    def put(self, source: CertFiles) -> None:
        for src, dst in ((source.cert, self.files.cert), (source.key, self.files.key)):
            tmp = dst.with_suffix(".tmp")
            shutil.copyfile(src, tmp)
            tmp.replace(dst)


def sighup(server) -> int:
    mark = len(server.proc.stderr_lines)
    server.proc.send_signal(signal.SIGHUP)
    return mark


def expect_reloaded(server, mark: int) -> None:
    assert server.proc.wait_for_log(r"INFO TLS: certificates reloaded", 10.0, start=mark), server.proc.stderr_text


def expect_refused(server, mark: int, mention: str) -> None:
    """One ERROR line saying the certificates were not reloaded (and why), nothing else."""
    line = server.proc.wait_for_log(rf"ERROR TLS: {RELOAD_FAILED}.*", 10.0, start=mark)
    assert line, f"no '{RELOAD_FAILED}' line:\n{server.proc.stderr_text}"
    assert mention in line.group(0), line.group(0)
    time.sleep(0.3)
    lines = server.proc.stderr_lines[mark:]
    assert len([entry for entry in lines if " ERROR " in entry]) == 1, lines
    assert not any("certificates reloaded" in entry for entry in lines), lines


def test_sighup_reloads_the_default_certificate_and_open_connections_keep_working(tls_bridge, pki, tmp_path):
    live = LiveFiles(tmp_path, "live", pki.server)
    server = tls_bridge(cert=live.files)
    with server.ws() as ws:
        ws.subscribe_ok(CHANNEL)
        live.put(pki.other)
        expect_reloaded(server, sighup(server))
        assert server.peer_certificate() == pki.other.der
        server.api().trigger(CHANNEL, "after-reload", "still here")
        assert ws.wait_for("after-reload", CHANNEL)["data"] == "still here"
        with server.ws() as fresh:
            fresh.subscribe_ok(CHANNEL)


# Certificates no reload and no start may take, and what the refusal names.
BROKEN = [
    ("garbage", "cannot load the certificate chain"),
    ("mismatched", "key values mismatch"),
    ("mismatched_type", "does not match"),
    ("expired", "has expired"),
    ("not_yet_valid", "is not valid yet"),
]


@pytest.mark.parametrize("broken,mention", BROKEN)
def test_a_broken_certificate_is_not_reloaded(tls_bridge, pki, tmp_path, broken, mention):
    live = LiveFiles(tmp_path, "live", pki.server)
    server = tls_bridge(cert=live.files)
    with server.ws() as ws:
        ws.subscribe_ok(CHANNEL)
        live.put(getattr(pki, broken))
        expect_refused(server, sighup(server), mention)
        assert server.peer_certificate() == pki.server.der, "the old certificate is no longer served"
        server.api().trigger(CHANNEL, "after-refusal", "ok")
        assert ws.wait_for("after-refusal", CHANNEL)["data"] == "ok"
        # Fixed files load on the next SIGHUP.
        live.put(pki.other)
        expect_reloaded(server, sighup(server))
        assert server.peer_certificate() == pki.other.der


def test_sighup_reloads_the_config_files_sni_certificates(tls_bridge, pki, tmp_path):
    live = LiveFiles(tmp_path, "a-live", pki.a)
    server = tls_bridge(options={"tls-certificates": [live.files.entry("a.test")]})
    assert server.peer_certificate("a.test") == pki.a.der
    config = dict(server.server.config)
    config["tls-certificates"] = [live.files.entry("a.test"), pki.b_wildcard.entry("*.b.test")]
    mark = len(server.proc.stderr_lines)
    server.server.write_config(config)
    server.proc.send_signal(signal.SIGHUP)
    expect_reloaded(server, mark)
    assert server.peer_certificate("x.b.test") == pki.b_wildcard.der
    # An SNI certificate that expired is refused: every certificate stays as it was.
    live.put(pki.expired)
    expect_refused(server, sighup(server), "has expired")
    assert server.peer_certificate("a.test") == pki.a.der
    assert server.peer_certificate("x.b.test") == pki.b_wildcard.der
    assert server.peer_certificate() == pki.server.der


def test_a_reload_is_all_or_nothing(tls_bridge, pki, tmp_path):
    """New default files beside a broken SNI entry: neither is taken."""
    default = LiveFiles(tmp_path, "default", pki.server)
    sni = LiveFiles(tmp_path, "sni", pki.a)
    server = tls_bridge(cert=default.files, options={"tls-certificates": [sni.files.entry("a.test")]})
    default.put(pki.other)
    sni.put(pki.garbage)
    expect_refused(server, sighup(server), "cannot load the certificate chain")
    assert server.peer_certificate() == pki.server.der
    assert server.peer_certificate("a.test") == pki.a.der


@pytest.mark.parametrize("broken,mention", BROKEN + [("missing", "No such file")])
@pytest.mark.parametrize("where", ["default", "sni"])
def test_a_broken_certificate_stops_the_start(pki, tmp_path, broken, mention, where):
    files = CertFiles(tmp_path / "missing.pem", pki.server.key) if broken == "missing" else getattr(pki, broken)
    config = tmp_path / "bridge.json"
    entries = [files.entry("a.test")] if where == "sni" else []
    config.write_text(json.dumps({"apps": [make_app("1")], "tls-certificates": entries}))
    default = pki.server if where == "sni" else files
    result = run_bridge_once(["serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", str(tmp_path / "data"),
                              "--config", str(config), *tls_flags(default)])
    stderr = result.stderr.decode(errors="replace")
    assert result.returncode == 1, (result.returncode, stderr)
    assert "cannot start" in stderr and mention in stderr, stderr
    assert str(files.cert) in stderr or str(files.key) in stderr, f"the file is not named: {stderr}"
    assert "listening on" not in stderr


@pytest.mark.parametrize("flags,mention", [
    (["--tls-port", "0"], "--tls-cert"),
    (["--tls-port", "0", "--tls-cert", "CERT"], "--tls-key"),
    (["--tls-port", "0", "--tls-key", "KEY"], "--tls-cert"),
    (["--tls-cert", "CERT", "--tls-key", "KEY"], "--tls-port"),
    (["--tls-host", "127.0.0.2"], "--tls-port"),
    (["--tls-port", "65536", "--tls-cert", "CERT", "--tls-key", "KEY"], "tls-port"),
    (["--port", "7123", "--tls-port", "7123", "--tls-cert", "CERT", "--tls-key", "KEY"], "must differ from --port"),
    (["--tls-port", "0", "--tls-cert", "CERT", "--tls-key", "KEY", "--tls-ticket-key-hours", "0"], "tls-ticket-key-hours"),
])
def test_tls_options_that_do_not_go_together_are_usage_errors(pki, tmp_path, flags, mention):
    flags = [str(pki.server.cert) if f == "CERT" else str(pki.server.key) if f == "KEY" else f for f in flags]
    result = run_bridge_once(["serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", str(tmp_path / "data"), *flags])
    lines = result.stderr.decode(errors="replace").splitlines()
    assert result.returncode == 2, (result.returncode, lines)
    assert len(lines) == 1 and lines[0].startswith("bridge: ") and mention in lines[0], lines


@pytest.mark.parametrize("entries,mention", [
    ({"hostnames": ["a.test"]}, "must be an array"),
    (["not an object"], "tls-certificates[0] must be an object"),
    ([{"hostnames": [], "cert": "CERT", "key": "KEY"}], "hostnames must be a non-empty array"),
    ([{"hostnames": ["a test"], "cert": "CERT", "key": "KEY"}], "hostnames must be a non-empty array"),
    ([{"hostnames": ["a.test"], "cert": "CERT"}], 'needs "cert" and "key"'),
    ([{"hostnames": ["a.test"], "cert": "CERT", "key": "KEY", "chain": "x"}], 'unknown key "chain"'),
], ids=["not-array", "not-object", "no-hostnames", "bad-hostname", "no-key", "unknown-key"])
def test_malformed_sni_certificates_are_usage_errors(pki, tmp_path, entries, mention):
    text = json.dumps(entries).replace('"CERT"', json.dumps(str(pki.a.cert))).replace('"KEY"', json.dumps(str(pki.a.key)))
    config = tmp_path / "bridge.json"
    config.write_text('{"tls-certificates": ' + text + "}")
    result = run_bridge_once(["serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", str(tmp_path / "data"),
                              "--config", str(config), "--tls-port", "0", "--tls-cert", str(pki.server.cert),
                              "--tls-key", str(pki.server.key)])
    lines = result.stderr.decode(errors="replace").splitlines()
    assert result.returncode == 2 and len(lines) == 1 and mention in lines[0], (result.returncode, lines)


def test_sni_certificates_without_a_tls_port_are_a_usage_error(pki, tmp_path):
    config = tmp_path / "bridge.json"
    config.write_text(json.dumps({"tls-certificates": [pki.a.entry("a.test")]}))
    result = run_bridge_once(["serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", str(tmp_path / "data"),
                              "--config", str(config)])
    lines = result.stderr.decode(errors="replace").splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "tls-certificates" in lines[0], (result.returncode, lines)
