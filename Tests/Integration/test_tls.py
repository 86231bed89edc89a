"""The TLS listener with real clients: every route of the plain listener over https and wss, the
official `pusher` library, `websockets` and pysher over TLS, and the protocol settings (versions,
ALPN, resumption, renegotiation, compression, close_notify, --tls-host).

Certificates come from the session's test CA (`pki` fixture, tls_helpers.py)."""

from __future__ import annotations

import json
import logging
import os
import socket
import ssl
import subprocess
import threading
import time

import pysher
import pytest

from conftest import OP_TEXT, Conn, get, http_request, retry_until
from pusher_helpers import TIMEOUT
from tls_helpers import TLSConn, client_hello

CHANNEL = "news"


def strip_date(head: bytes) -> bytes:
    return b"\r\n".join(line for line in head.split(b"\r\n") if not line.lower().startswith(b"date:"))


def test_log_line_and_every_route_answers_as_on_the_plain_port(tls_bridge):
    server = tls_bridge("--echo-path", "/echo")
    assert server.tls_host == "127.0.0.1"
    assert any(f"listening on https://127.0.0.1:{server.tls_port} (TLS" in line for line in server.proc.stderr_lines)
    requests = [
        http_request("GET", "/health"),
        http_request("GET", "/ready"),
        http_request("GET", "/js/pusher.js"),
        http_request("GET", "/no/such/route"),
        http_request("GET", "/apps/1/channels"),  # unsigned: 401
        http_request("POST", "/api/sessions", [("Content-Type", "application/json")], b"{}"),
    ]
    for request in requests:
        with Conn(server.port) as plain:
            plain.send(request)
            expected = plain.read_response()
        with server.conn() as tls:
            tls.send(request)
            got = tls.read_response()
        assert (got.status, got.body) == (expected.status, expected.body), request
        assert strip_date(got.head) == strip_date(expected.head), request
    health = get(server.port, "/health")
    assert health.status == 200
    # The signed HTTP API over https (our signer), and the echo WebSocket over wss.
    https_api = server.api()
    result = https_api.request("GET", "/apps/1/channels")
    assert result.status == 200 and result.json == {"channels": {}}, result
    with server.conn() as tls:
        tls.upgrade("/echo")
        tls.send_frame(OP_TEXT, b"over TLS")
        assert tls.read_message() == (OP_TEXT, b"over TLS")


def test_websockets_over_wss_receive_events_published_over_https(tls_bridge):
    server = tls_bridge()
    with server.ws() as ws:
        assert ws.url.startswith(f"wss://127.0.0.1:{server.tls_port}/app/")
        ws.subscribe_ok(CHANNEL)
        ws.subscribe_ok("private-room")
        server.api().trigger(CHANNEL, "over-https", json.dumps({"n": 1}))
        event = ws.wait_for("over-https", CHANNEL)
        assert json.loads(event["data"]) == {"n": 1}
        # Both listeners feed one hub: a publish on the plain port reaches the wss subscriber.
        server.server.api().trigger("private-room", "over-http", "plain")
        assert ws.wait_for("over-http", "private-room")["data"] == "plain"


def test_official_library_publishes_and_queries_over_https(tls_bridge):
    server = tls_bridge()
    rest = server.rest()
    with server.ws() as ws:
        ws.subscribe_ok("presence-lobby", user_id="u1", user_info={"name": "One"})
        ws.subscribe_ok(CHANNEL)
        assert rest.trigger(CHANNEL, "from-library", {"ok": True}) == {}
        assert json.loads(ws.wait_for("from-library", CHANNEL)["data"]) == {"ok": True}
        info = rest.channel_info("presence-lobby", ["user_count", "subscription_count"])
        assert info["occupied"] is True and info["user_count"] == 1, info
        listing = rest.channels_info(prefix_filter="presence-", attributes=["user_count"])
        assert listing == {"channels": {"presence-lobby": {"user_count": 1}}}, listing
        assert rest.users_info("presence-lobby") == {"users": [{"id": "u1"}]}


def test_official_library_does_not_trust_the_test_ca_by_default(tls_bridge):
    """The control for the test above: verification is on, so trusting the test CA is what works."""
    import pusher
    import requests

    server = tls_bridge()
    untrusting = pusher.Pusher(app_id="1", key="key-1", secret="secret-1", host=server.tls_host,
                               port=server.tls_port, ssl=True, timeout=TIMEOUT)
    with pytest.raises(requests.exceptions.SSLError):
        untrusting.trigger(CHANNEL, "never", "x")


def test_pysher_over_wss(tls_bridge):
    server = tls_bridge()
    app = server.server.app(0)
    client = pysher.Pusher(app["key"], secure=True, secret=app["secret"], custom_host=server.tls_host,
                           port=server.tls_port, log_level=logging.WARNING, reconnect_interval=1)
    assert client.url.startswith(f"wss://{server.tls_host}:{server.tls_port}/app/")
    # websocket-client's TLS options: pysher passes socket_kwargs to run_forever.
    client.connection.socket_kwargs["sslopt"] = {"ca_certs": str(server.pki.ca)}
    received: list = []
    try:
        client.connect()
        assert retry_until(lambda: client.connection.state == "connected" and client.connection.socket_id, TIMEOUT), \
            f"pysher not connected over wss (state {client.connection.state})"
        channel = client.subscribe(CHANNEL)
        channel.bind("pysher-event", received.append)
        time.sleep(0.3)  # pysher registers the channel after sending subscribe
        deadline = time.monotonic() + TIMEOUT
        while not received and time.monotonic() < deadline:
            server.rest().trigger(CHANNEL, "pysher-event", {"via": "wss"})
            retry_until(lambda: received, 0.5)
        assert received and json.loads(received[0]) == {"via": "wss"}, received
    finally:
        client.disconnect(timeout=0.5)


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_tls_1_2_and_1_3_are_served(tls_bridge, version):
    server = tls_bridge(cert=None)
    context = server.pki.client_context(minimum=version, maximum=version)
    exchange = server.https_get("/health", context)
    assert exchange.version == {ssl.TLSVersion.TLSv1_2: "TLSv1.2", ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]
    assert exchange.data.startswith(b"HTTP/1.1 200 ")
    # Forward-secret AEAD only.
    name = exchange.cipher
    assert name.startswith(("TLS_", "ECDHE-")) and ("GCM" in name or "CHACHA20" in name), name


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
def test_tls_1_0_and_1_1_are_refused_by_the_server(tls_bridge, version):
    server = tls_bridge()
    context = server.pki.client_context(minimum=version, maximum=version)
    context.set_ciphers("DEFAULT:@SECLEVEL=0")  # let this client offer them at all
    with pytest.raises(ssl.SSLError) as refused:
        server.connect(context)
    # The server's protocol_version alert, not a client that could not offer the version.
    assert refused.value.reason == "TLSV1_ALERT_PROTOCOL_VERSION", refused.value
    assert get(server.port, "/health").status == 200


@pytest.mark.parametrize("offered,selected", [
    (["h2", "http/1.1"], "http/1.1"),
    (["http/1.1"], "http/1.1"),
    (["h2", "spdy/3"], None),
    (None, None),
])
def test_alpn(tls_bridge, offered, selected):
    server = tls_bridge()
    exchange = server.https_get("/health", server.pki.client_context(alpn=offered))
    assert exchange.alpn == selected
    assert exchange.data.startswith(b"HTTP/1.1 200 "), exchange.data[:40]


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_session_tickets_resume(tls_bridge, version):
    server = tls_bridge()
    context = server.pki.client_context(minimum=version, maximum=version)
    # In TLS 1.3 the ticket follows the handshake: a whole response makes sure it arrived.
    first = server.https_get("/health", context)
    assert not first.session_reused and first.session is not None and first.session.has_ticket
    second = server.https_get("/health", context, session=first.session)
    assert second.session_reused, "a saved session was not resumed"
    assert second.data.startswith(b"HTTP/1.1 200 ")
    fresh = server.https_get("/health", context)
    assert not fresh.session_reused


def test_session_ticket_keys_rotate(tls_bridge):
    """--tls-ticket-key-hours: a ticket opens while its key is current or previous, not after two
    rotations (a rotation happens on the first ticket operation a lifetime after the last)."""
    lifetime = 1.0
    server = tls_bridge("--tls-ticket-key-hours", str(lifetime / 3600))
    context = server.pki.client_context(maximum=ssl.TLSVersion.TLSv1_2)
    old = server.https_get("/health", context)
    time.sleep(lifetime + 0.2)
    resumed = server.https_get("/health", context, session=old.session)  # rotates: old key is previous
    assert resumed.session_reused
    time.sleep(lifetime + 0.2)
    server.https_get("/health", context)  # rotates again: the old key is gone
    expired = server.https_get("/health", context, session=old.session)
    assert not expired.session_reused


def test_renegotiation_is_refused(tls_bridge):
    server = tls_bridge()
    # Python's ssl cannot renegotiate; openssl s_client does on a line "R" (TLS 1.2: 1.3 has none).
    result = subprocess.run(
        ["openssl", "s_client", "-connect", f"{server.tls_host}:{server.tls_port}", "-tls1_2",
         "-CAfile", str(server.pki.ca), "-verify_return_error"],
        input=b"R\n", capture_output=True, timeout=20)
    output = (result.stdout + result.stderr).decode(errors="replace")
    assert "Verify return code: 0 (ok)" in output, output
    assert "RENEGOTIATING" in output, output
    assert "no renegotiation" in output, output
    assert get(server.port, "/health").status == 200


def test_compression_is_never_selected(tls_bridge):
    """A TLS 1.2 ClientHello that offers DEFLATE before null gets null in the ServerHello."""
    server = tls_bridge()
    hello = bytearray(client_hello(maximum=ssl.TLSVersion.TLSv1_2))
    # record(5) | handshake type(1) length(3) | version(2) random(32) | session id | suites | compression
    offset = 5 + 4 + 2 + 32
    offset += 1 + hello[offset]
    offset += 2 + int.from_bytes(hello[offset:offset + 2], "big")
    assert hello[offset:offset + 2] == b"\x01\x00", hello[offset:offset + 2]
    hello[offset:offset + 2] = b"\x02\x01\x00"
    hello[3:5] = (int.from_bytes(hello[3:5], "big") + 1).to_bytes(2, "big")
    hello[6:9] = (int.from_bytes(hello[6:9], "big") + 1).to_bytes(3, "big")
    with Conn(server.tls_port) as raw:
        raw.send(bytes(hello))
        header = raw.read_exact(5)
        assert header[0] == 22, f"no handshake record but {header!r}: {raw.buf[:40]!r}"
        body = raw.read_exact(int.from_bytes(header[3:5], "big"))
    assert body[0] == 2, "not a ServerHello"
    offset = 4 + 2 + 32
    offset += 1 + body[offset]
    offset += 2  # the suite
    assert body[offset] == 0, f"compression method {body[offset]} selected"


def read_after_close(tls: ssl.SSLSocket) -> str:
    """How the stream ended: "close_notify" (recv gives b"" after the alert), "truncated" (TCP
    close without it) or "data"."""
    try:
        return "close_notify" if tls.recv(100) == b"" else "data"
    except ssl.SSLEOFError:
        return "truncated"


def test_the_close_check_tells_a_truncated_stream(pki):
    """The control for the next test: a TLS server that closes TCP without close_notify is seen
    as truncated by the same client setup."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.server.cert, pki.server.key)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve():
        raw, _ = listener.accept()
        tls = context.wrap_socket(raw, server_side=True)
        tls.sendall(b"bye")
        tls.recv(1)  # wait for the client to have read
        raw_fd = socket.socket(fileno=os.dup(tls.fileno()))
        raw_fd.shutdown(socket.SHUT_RDWR)  # under TLS: no close_notify
        raw_fd.close()
        tls.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        client = pki.client_context().wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT),
                                                  server_hostname="127.0.0.1", suppress_ragged_eofs=False)
        with client:
            assert client.recv(3) == b"bye"
            client.sendall(b"k")
            assert read_after_close(client) == "truncated"
    finally:
        thread.join(5)
        listener.close()


@pytest.mark.parametrize("initiator", ["client", "server"])
def test_websocket_close_ends_with_close_notify(tls_bridge, initiator):
    server = tls_bridge("--echo-path", "/echo")
    tls = server.connect(suppress_ragged_eofs=False)
    conn = TLSConn(tls)
    with conn:
        conn.upgrade("/echo")
        if initiator == "client":
            conn.send_frame(0x8, (1000).to_bytes(2, "big"))
            assert conn.read_close() == (1000, "")
        else:
            conn.send_frame(OP_TEXT, b"\xff\xfe")  # invalid UTF-8: the server closes with 1007
            assert conn.read_close()[0] == 1007
            conn.send_frame(0x8, (1007).to_bytes(2, "big"))
        assert not conn.buf
        assert read_after_close(tls) == "close_notify"


def test_tls_host_binds_the_tls_listener_elsewhere(tls_bridge):
    server = tls_bridge("--tls-host", "127.0.0.2")
    assert server.tls_host == "127.0.0.2"
    assert server.https_get("/health").data.startswith(b"HTTP/1.1 200 ")
    with server.ws() as ws:
        assert ws.url.startswith(f"wss://127.0.0.2:{server.tls_port}/")
        ws.subscribe_ok(CHANNEL)
    for address, port in (("127.0.0.1", server.tls_port), ("127.0.0.2", server.port)):
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((address, port), timeout=TIMEOUT).close()
    assert get(server.port, "/health").status == 200


def test_large_messages_to_a_slow_reader_arrive_intact(tls_bridge):
    """Output larger than a TLS record and than the socket buffer: every SSL_write that could
    not finish is repeated with the same bytes (else OpenSSL fails with "bad write retry")."""
    server = tls_bridge("--echo-path", "/echo")
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.settimeout(TIMEOUT * 2)
    raw.connect((server.tls_host, server.tls_port))
    conn = TLSConn(server.pki.client_context().wrap_socket(raw, server_hostname=server.tls_host))
    with conn:
        conn.upgrade("/echo")
        messages = [os.urandom(n) for n in (700_000, 16_384, 16_385, 1, 200_000)]
        for message in messages:
            conn.send_frame(0x2, message)
        time.sleep(0.5)  # let the server fill the socket and wait for it
        for message in messages:
            assert conn.read_message(timeout=TIMEOUT * 2) == (0x2, message)


def test_pipelined_requests_in_one_record_are_all_answered(tls_bridge):
    """Requests that arrive together in one TLS record are answered in order, none left in
    OpenSSL's buffer (the socket does not report those bytes again)."""
    server = tls_bridge()
    paths = ["/health", "/ready", "/no/such/route"] * 10
    with server.conn() as conn:
        conn.send(b"".join(http_request("GET", path) for path in paths))
        statuses = [conn.read_response().status for _ in paths]
    assert statuses == [200, 200, 404] * 10


def test_fan_out_to_many_wss_subscribers(tls_bridge):
    server = tls_bridge()  # two loops (the fixture's --threads 2)
    subscribers = [server.ws() for _ in range(40)]
    try:
        for ws in subscribers:
            ws.subscribe_ok(CHANNEL)
        api = server.api()
        payloads = [f"{index:04d}" + "x" * 4000 for index in range(25)]
        for payload in payloads:
            api.trigger(CHANNEL, "bulk", payload)
        for ws in subscribers:
            got = [ws.wait_for("bulk", CHANNEL)["data"] for _ in payloads]
            assert got == payloads
    finally:
        for ws in subscribers:
            ws.close()
