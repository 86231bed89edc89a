"""A cluster on Redis over TLS (issue 14): bridge nodes with `--redis-url rediss://…` and
`--redis-ca-file`, against one redis-server that takes TLS connections only.

The CA and the server's certificate (for 127.0.0.1 and localhost) are the run's test CA and its
default certificate (`pki`, tls_helpers.py, made with the `openssl` command in a temporary
directory); no key is kept anywhere else."""
from __future__ import annotations

import socket
import ssl
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from cluster_helpers import REDIS_SERVER, drain, free_port, wait_ready
from conftest import get, wait_until
from pusher_helpers import run_bridge_once
from tls_helpers import TestPKI

NODES = 3


class TLSRedisServer:
    """redis-server taking TLS connections only (`--port 0 --tls-port P`), clients not authenticated."""

    def __init__(self, workdir: Path, pki: TestPKI):
        self.workdir = workdir
        self.ca, self.cert, self.key = pki.ca, pki.server.cert, pki.server.key
        self.port = free_port()
        self.log = workdir / "redis-tls.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"rediss://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", "0", "--tls-port", str(self.port), "--bind", "127.0.0.1",
             "--tls-cert-file", str(self.cert), "--tls-key-file", str(self.key), "--tls-ca-cert-file", str(self.ca),
             "--tls-auth-clients", "no", "--save", "", "--appendonly", "no", "--dir", str(self.workdir),
             "--logfile", str(self.log)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self.answers_ping, 10, what="redis-server over TLS")

    def answers_ping(self) -> bool:
        """A PING over TLS, the certificate verified as bridge verifies it."""
        if self.proc.poll() is not None:
            raise RuntimeError(f"redis-server exited: {self.log.read_text() if self.log.exists() else ''}")
        context = ssl.create_default_context(cafile=str(self.ca))
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as raw:
                with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                    tls.sendall(b"PING\r\n")
                    return tls.recv(64) == b"+PONG\r\n"
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def tls_redis(tmp_path, pki):
    server = TLSRedisServer(tmp_path, pki)
    server.start()
    yield server
    server.stop()


def tls_flags(redis: TLSRedisServer, ca_file: bool = True) -> list[str]:
    flags = ["--adapter", "redis", "--redis-url", redis.url, "--redis-prefix", f"t{uuid.uuid4().hex[:8]}"]
    return flags + (["--redis-ca-file", str(redis.ca)] if ca_file else [])


def users(node, channel: str) -> list[str]:
    return sorted(user["id"] for user in node.rest().users_info(channel)["users"])


def test_three_nodes_share_events_and_presence_over_tls(pusher_bridge, tls_redis):
    flags = tls_flags(tls_redis)
    nodes = [pusher_bridge(None, *flags) for _ in range(NODES)]
    for node in nodes:
        wait_ready(node.port)
    subscribers = [node.ws() for node in nodes]
    members = [node.ws() for node in nodes]
    try:
        for ws in subscribers:
            ws.subscribe_ok("room")
        # A publish on each node reaches the subscribers of every node.
        for number, node in enumerate(nodes):
            assert node.api().trigger("room", "tick", f"from-{number}").status == 200
        for ws in subscribers:
            assert sorted(drain(ws, "tick", NODES)) == [f"from-{number}" for number in range(NODES)]

        # One presence member per node: every node counts all three.
        for number, ws in enumerate(members):
            ws.subscribe_ok("presence-room", f"u{number}", {"node": number})
        want = [f"u{number}" for number in range(NODES)]
        for node in nodes:
            wait_until(lambda: users(node, "presence-room") == want, 5, what=f"members on node :{node.port}")
            info = node.rest().channel_info("presence-room", ["user_count", "subscription_count"])
            assert info["user_count"] == NODES and info["subscription_count"] == NODES, info
    finally:
        for ws in subscribers + members:
            ws.close()


def test_a_node_without_the_ca_file_is_not_ready_and_says_why(pusher_bridge, tls_redis):
    node = pusher_bridge(None, *tls_flags(tls_redis, ca_file=False))
    assert node.proc.wait_for_log("TLS: certificate verify failed", 10), node.proc.stderr_text
    response = get(node.port, "/ready")
    assert response.status == 503, response
    # Local service goes on.
    with node.ws() as ws:
        ws.subscribe_ok("room")
        assert node.api().trigger("room", "tick", "local").status == 200
        assert ws.wait_for("tick", "room")["data"] == "local"
    # Still retried, still refused: never ready, and the process keeps running.
    time.sleep(1)
    assert get(node.port, "/ready").status == 503
    assert node.proc.proc.poll() is None


def test_redis_ca_file_is_checked_at_start(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello\n")
    base = ["serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", str(tmp_path), "--adapter", "redis"]
    cases = [
        (["--redis-url", "redis://127.0.0.1:6379/0", "--redis-ca-file", str(ca)], "needs a rediss://"),
        (["--redis-url", "rediss://127.0.0.1:6379/0", "--redis-ca-file", str(tmp_path / "missing.pem")], "cannot read"),
        (["--redis-url", "rediss://127.0.0.1:6379/0", "--redis-ca-file", str(not_pem)], "holds no PEM certificate"),
    ]
    for flags, message in cases:
        result = run_bridge_once(base + flags)
        lines = result.stderr.decode("utf-8", "replace").splitlines()
        assert result.returncode == 2, (flags, result.returncode, lines)
        assert len(lines) == 1 and lines[0].startswith("bridge: --redis-ca-file") and message in lines[0], lines
