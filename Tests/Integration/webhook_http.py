"""The HTTP side of webhook_receiver.py: what the receiver does with a request (`Reply`), one
request as it arrived (`Received`), and the threaded HTTP/1.1 server whose handler reads each
request (Content-Length or chunked body) and hands it to its owner, the `WebhookReceiver`.

With a TLS context the server wraps each accepted connection and does the handshake on that
connection's own thread, so a slow or refused handshake never holds up the accept loop; how each
handshake went is reported to the owner.
"""

from __future__ import annotations

import json
import socket
import ssl
import struct
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from webhook_receiver import WebhookReceiver


@dataclass
class Reply:
    """What the receiver does with one request."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    delay: float = 0.0      # wait this long before answering
    hang: bool = False      # hold the request until release()/stop() (or MAX_HANG), then close unanswered
    drop: bool = False      # close the connection (with a reset) without answering

    def describe(self) -> str:
        if self.drop:
            return "drop"
        if self.hang:
            return "hang"
        return str(self.status) + (f" after {self.delay}s" if self.delay else "")


def as_reply(value: Reply | int) -> Reply:
    return value if isinstance(value, Reply) else Reply(status=value)


@dataclass
class Received:
    """One request as it arrived."""

    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes
    wall: float              # time.time() when the body had been read
    mono: float              # time.monotonic() at the same moment
    reply: Reply | None = None
    answered: int | None = None   # the status actually written, None for drop/hang/write failure

    def header_all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]

    def header(self, name: str) -> str | None:
        """The first header called `name` (case-insensitive), or None."""
        values = self.header_all(name)
        return values[0] if values else None

    @property
    def id(self) -> str | None:
        return self.header("X-Bridge-Webhook-Id")

    @property
    def attempt(self) -> int | None:
        value = self.header("X-Bridge-Webhook-Attempt")
        return int(value) if value is not None and value.isdigit() else None

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def events(self) -> list[dict]:
        return self.json["events"]

    @property
    def delivered(self) -> bool:
        return self.answered is not None and 200 <= self.answered < 300

    def __repr__(self) -> str:
        return (f"<{self.method} {self.path} id={self.id} attempt={self.attempt} "
                f"answered={self.answered} body={self.body[:200]!r}>")


class HookServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True   # SO_REUSEADDR: listen again on the same port after stop()
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], owner: WebhookReceiver, tls: ssl.SSLContext | None):
        self.owner = owner
        self.tls = tls
        super().__init__(address, _Handler)

    def get_request(self):
        conn, address = super().get_request()
        if self.tls is not None:
            # The handshake happens on the connection's own thread (`_Handler.setup`), so a slow
            # or refused one never holds up the accept loop.
            conn = self.tls.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
        return conn, address


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"   # keep-alive, and 100-continue handled by the base class
    server: HookServer

    handshake_failed = False

    def setup(self) -> None:
        super().setup()
        self.server.owner.track_connection(self.connection, True)
        if isinstance(self.connection, ssl.SSLSocket):
            self.connection.settimeout(10)
            try:
                self.connection.do_handshake()
                self.server.owner.record_tls_handshake(None)
            except (ssl.SSLError, OSError) as error:
                self.handshake_failed = True
                self.server.owner.record_tls_handshake(error)
            self.connection.settimeout(None)

    def handle(self) -> None:
        if not self.handshake_failed:
            super().handle()

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        self.server.owner.track_connection(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base class signature
        pass

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            body = bytearray()
            while True:
                size = int(self.rfile.readline(1024).split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(body)
                body += self.rfile.read(size)
                self.rfile.readline(16)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        body = self._read_body()
        request = Received(self.command, self.path, list(self.headers.items()), body,
                           time.time(), time.monotonic())
        self.server.owner.serve(self, request)

    do_POST = do_GET = do_PUT = do_DELETE = do_PATCH = _handle


def reset_connection(conn: socket.socket) -> None:
    """Close with SO_LINGER 0 (a TCP reset), ignoring a socket that is already gone."""
    try:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        conn.close()
    except OSError:
        pass
