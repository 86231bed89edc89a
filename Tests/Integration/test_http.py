"""HTTP/1.1 behaviour of `bridge serve`, over raw loopback sockets."""

from __future__ import annotations

import json
import os
import time

import pytest

from conftest import (
    OP_TEXT,
    Closed,
    Conn,
    assert_date,
    assert_json_error,
    get,
    http_request,
    retry_until,
    send_ignoring_reset,
    wait_readable,
)


def assert_ok_json(response, body: bytes) -> None:
    assert response.status == 200, response.head
    # The contract fixes these bodies byte for byte.
    assert response.body == body
    assert int(response.header("Content-Length")) == len(body)
    assert "json" in (response.header("Content-Type") or ""), response.head
    assert_date(response)


# --- endpoints ---------------------------------------------------------------------------------


def test_health(bridge):
    server = bridge()
    assert_ok_json(get(server.port, "/health"), b'{"status":"ok"}')


def test_ready(bridge):
    server = bridge()
    assert_ok_json(get(server.port, "/ready"), b'{"status":"ready"}')


def test_unknown_path_is_404_json_with_exact_length(bridge):
    server = bridge()
    with Conn(server.port) as conn:
        conn.send(http_request("GET", "/no/such/path", [("Connection", "close")]))
        raw = conn.wait_closed(5)
    head, sep, body = raw.partition(b"\r\n\r\n")
    assert sep, f"no end of head in {raw!r}"
    assert head.startswith(b"HTTP/1.1 404 "), head
    lengths = [line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")[1:]
               if line.lower().startswith(b"content-length:")]
    assert lengths == [str(len(body)).encode()], (head, body)
    doc = json.loads(body)
    assert set(doc) == {"error"} and isinstance(doc["error"], str) and doc["error"]


def test_404_then_keepalive_still_works(bridge):
    server = bridge()
    with Conn(server.port) as conn:
        conn.send(http_request("GET", "/nope"))
        assert_json_error(conn.read_response(), 404)
        conn.send(http_request("GET", "/health"))
        assert_ok_json(conn.read_response(), b'{"status":"ok"}')


@pytest.mark.parametrize("method", ["POST", "DELETE", "PUT"])
def test_wrong_method_is_405_with_allow(bridge, method):
    server = bridge()
    with Conn(server.port) as conn:
        conn.send(http_request(method, "/health", body=b"x" if method != "DELETE" else b""))
        response = conn.read_response()
    assert_json_error(response, 405)
    assert response.has_token("Allow", "GET"), response.head
    assert not response.has_token("Allow", method), response.head


def test_date_header_on_responses(bridge):
    server = bridge()
    for path in ("/health", "/ready", "/missing"):
        assert_date(get(server.port, path))


# --- connection management ---------------------------------------------------------------------


def test_keepalive_two_requests_on_one_connection(bridge):
    server = bridge()
    with Conn(server.port) as conn:
        conn.send(http_request("GET", "/health"))
        assert_ok_json(conn.read_response(), b'{"status":"ok"}')
        conn.send(http_request("GET", "/ready"))
        assert_ok_json(conn.read_response(), b'{"status":"ready"}')
        assert conn.is_open(0.2)


def test_http10_without_keepalive_closes(bridge):
    server = bridge()
    with Conn(server.port) as conn:
        conn.send(b"GET /health HTTP/1.0\r\n\r\n")
        response = conn.read_response()
        assert response.status == 200
        assert response.body == b'{"status":"ok"}'
        assert conn.wait_closed(3) == b""


def test_connection_close_closes(bridge):
    server = bridge()
    with Conn(server.port) as conn:
        conn.send(http_request("GET", "/health", [("Connection", "close")]))
        response = conn.read_response()
        assert response.status == 200
        assert response.body == b'{"status":"ok"}'
        assert conn.wait_closed(3) == b""


def test_pipelined_requests_answered_in_order(bridge):
    server = bridge()
    with Conn(server.port) as conn:
        conn.send(http_request("GET", "/health") + http_request("GET", "/nope")
                  + http_request("GET", "/ready"))
        first, second, third = (conn.read_response() for _ in range(3))
    assert_ok_json(first, b'{"status":"ok"}')
    assert_json_error(second, 404)
    assert_ok_json(third, b'{"status":"ready"}')


def test_request_sent_one_byte_at_a_time(bridge):
    server = bridge()
    request = http_request("GET", "/health", [("User-Agent", "trickle")])
    assert len(request) < 200
    with Conn(server.port) as conn:
        for byte in request:
            conn.send(bytes([byte]))
            time.sleep(0.005)
        assert_ok_json(conn.read_response(), b'{"status":"ok"}')


# --- limits and timeouts -----------------------------------------------------------------------


def test_slowloris_gets_408_and_close(bridge):
    server = bridge("--request-timeout", "1")
    with Conn(server.port) as conn:
        started = time.monotonic()
        conn.send(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        answered = False
        for _ in range(30):  # 30 × 0.3 s = 9 s at most
            if wait_readable(conn.sock, 0.3):
                answered = True
                break
            if not send_ignoring_reset(conn, b"a"):
                break
        elapsed = time.monotonic() - started
        assert answered, f"no answer to a trickled request after {elapsed:.1f}s"
        assert 0.8 <= elapsed <= 4.0, f"408 after {elapsed:.2f}s with --request-timeout 1"
        response = conn.read_response(3)
        assert_json_error(response, 408)
        conn.wait_closed(3)


def test_header_too_large_is_431_and_close(bridge):
    server = bridge()
    with Conn(server.port) as conn:
        request = http_request("GET", "/health", [("X-Big", "a" * 17_000)])
        send_ignoring_reset(conn, request)
        assert_json_error(conn.read_response(), 431)
        conn.wait_closed(3)


def padded_request(total: int) -> bytes:
    """A GET /health whose head, final CRLFCRLF included, is exactly `total` bytes."""
    base = http_request("GET", "/health", [("X-Pad", "")])
    request = http_request("GET", "/health", [("X-Pad", "p" * (total - len(base)))])
    assert len(request) == total
    return request


def test_head_exactly_at_limit_is_accepted(bridge):
    server = bridge()
    with Conn(server.port) as conn:
        conn.send(padded_request(16384))
        assert_ok_json(conn.read_response(), b'{"status":"ok"}')


def test_head_with_explicit_limit(bridge):
    server = bridge("--max-header-bytes", "4096")
    with Conn(server.port) as conn:
        conn.send(padded_request(4096))
        assert_ok_json(conn.read_response(), b'{"status":"ok"}')
    with Conn(server.port) as conn:
        send_ignoring_reset(conn, padded_request(4200))
        assert_json_error(conn.read_response(), 431)
        conn.wait_closed(3)


def many_headers(count: int) -> bytes:
    """A request with `count` header fields in total, Host included."""
    return http_request("GET", "/health", [(f"X-H{i}", "v") for i in range(count - 1)])


def test_101_headers_is_431(bridge):
    server = bridge()
    with Conn(server.port) as conn:
        send_ignoring_reset(conn, many_headers(101))
        assert_json_error(conn.read_response(), 431)
        conn.wait_closed(3)


def test_100_headers_is_accepted(bridge):
    server = bridge()
    with Conn(server.port) as conn:
        conn.send(many_headers(100))
        assert_ok_json(conn.read_response(), b'{"status":"ok"}')


def test_body_over_limit_is_413_and_close(bridge):
    server = bridge("--max-body-bytes", "1000")
    with Conn(server.port) as conn:
        send_ignoring_reset(conn, http_request("POST", "/health", body=b"x" * 1001))
        assert_json_error(conn.read_response(), 413)
        conn.wait_closed(3)


def test_chunked_body_over_limit_is_413_and_close(bridge):
    server = bridge("--max-body-bytes", "1000")
    chunk = b"258\r\n" + b"y" * 600 + b"\r\n"
    with Conn(server.port) as conn:
        head = http_request("POST", "/health", [("Transfer-Encoding", "chunked")])
        send_ignoring_reset(conn, head + chunk + chunk + b"0\r\n\r\n")
        assert_json_error(conn.read_response(), 413)
        conn.wait_closed(3)


def test_body_at_limit_is_not_413(bridge):
    server = bridge("--max-body-bytes", "1000")
    with Conn(server.port) as conn:
        conn.send(http_request("POST", "/health", body=b"x" * 1000) + http_request("GET", "/health"))
        response = conn.read_response()
        assert_json_error(response, 405)
        assert_ok_json(conn.read_response(), b'{"status":"ok"}')


def test_chunked_body_is_consumed_before_next_request(bridge):
    # No route takes a POST body, so the chunked POST gets 405; the pipelined GET after it
    # proves the whole chunked body (with an extension and a trailer) was consumed.
    server = bridge()
    body = (b"5;ext=1\r\nhello\r\n" b"7\r\n, world\r\n" b"0\r\n" b"X-Trailer: t\r\n" b"\r\n")
    with Conn(server.port) as conn:
        conn.send(http_request("POST", "/health", [("Transfer-Encoding", "chunked")]) + body
                  + http_request("GET", "/health"))
        response = conn.read_response()
        assert_json_error(response, 405)
        assert response.has_token("Allow", "GET")
        assert_ok_json(conn.read_response(), b'{"status":"ok"}')
        assert conn.is_open(0.2)


def test_content_length_body_is_consumed_before_next_request(bridge):
    server = bridge()
    with Conn(server.port) as conn:
        conn.send(http_request("POST", "/ready", body=b"GET /nope HTTP/1.1\r\n\r\n")
                  + http_request("GET", "/ready"))
        assert_json_error(conn.read_response(), 405)
        assert_ok_json(conn.read_response(), b'{"status":"ready"}')


@pytest.mark.parametrize("line", [
    b"THIS IS NOT HTTP AT ALL\r\n\r\n",
    b"GET /health HTTX/1.1\r\nHost: x\r\n\r\n",
    b"GET\r\n\r\n",
    b"\x00\x01\x02\x03\r\n\r\n",
    b"GET /health HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n",
])
def test_malformed_request_is_400_and_close(bridge, line):
    server = bridge()
    with Conn(server.port) as conn:
        send_ignoring_reset(conn, line)
        assert_json_error(conn.read_response(), 400)
        conn.wait_closed(3)


def test_conflicting_content_lengths_is_400(bridge):
    # RFC 9112 §6.3 (5): differing Content-Length values make the framing invalid.
    server = bridge()
    with Conn(server.port) as conn:
        send_ignoring_reset(conn, b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
                                  b"Content-Length: 5\r\n\r\nabcde")
        assert_json_error(conn.read_response(), 400)
        conn.wait_closed(3)


def test_expect_100_continue(bridge):
    server = bridge()
    with Conn(server.port) as conn:
        conn.send(http_request("GET", "/health", [("Content-Length", "5"),
                                                  ("Expect", "100-continue")]))
        interim = conn.read_response(3)
        assert (interim.version, interim.status) == ("HTTP/1.1", 100), interim.head
        assert interim.head.startswith(b"HTTP/1.1 100 Continue\r\n"), interim.head
        conn.send(b"hello")
        assert_ok_json(conn.read_response(), b'{"status":"ok"}')


def test_cors_preflight(bridge):
    server = bridge()
    with Conn(server.port) as conn:
        conn.send(http_request("OPTIONS", "/health", [
            ("Origin", "http://app.example"),
            ("Access-Control-Request-Method", "GET"),
            ("Access-Control-Request-Headers", "content-type"),
        ]))
        response = conn.read_response()
        assert response.status == 204, response.head
        assert response.header("Access-Control-Allow-Origin") in ("*", "http://app.example")
        assert response.has_token("Access-Control-Allow-Methods", "GET"), response.head
        assert response.header("Access-Control-Allow-Headers") is not None, response.head
        assert int(response.header("Access-Control-Max-Age")) > 0, response.head
        assert response.header("Content-Length") in (None, "0")
        assert_date(response)
        # A 204 has no body (RFC 9110 §15.3.5): the next response must parse cleanly.
        conn.send(http_request("GET", "/health"))
        assert_ok_json(conn.read_response(), b'{"status":"ok"}')


def test_cors_simple_request_carries_allow_origin(bridge):
    server = bridge()
    response = get(server.port, "/health", [("Origin", "http://app.example")])
    assert response.status == 200
    assert response.header("Access-Control-Allow-Origin") in ("*", "http://app.example")


def test_cors_origin_not_in_list(bridge):
    server = bridge("--cors-origins", "http://good.example,http://other.example")
    good = get(server.port, "/health", [("Origin", "http://other.example")])
    assert good.header("Access-Control-Allow-Origin") == "http://other.example"
    bad = get(server.port, "/health", [("Origin", "http://evil.example")])
    assert bad.status == 200
    assert bad.header("Access-Control-Allow-Origin") is None, bad.head


def test_keepalive_idle_timeout_closes(bridge):
    server = bridge("--keepalive-timeout", "1")
    with Conn(server.port) as conn:
        conn.send(http_request("GET", "/health"))
        assert conn.read_response().status == 200
        started = time.monotonic()
        assert conn.wait_closed(5) == b""
        elapsed = time.monotonic() - started
        assert elapsed >= 0.5, f"closed after {elapsed:.2f}s with --keepalive-timeout 1"


def test_connection_that_never_sends_is_closed(bridge):
    server = bridge("--keepalive-timeout", "1", "--request-timeout", "1")
    with Conn(server.port) as conn:
        data = conn.wait_closed(6)
        # Closing silently or with a 408 are both fine; anything else is not.
        assert data == b"" or data.startswith(b"HTTP/1.1 408 "), data


def test_server_keeps_serving_after_each_error(bridge):
    server = bridge("--max-body-bytes", "10")
    for request in (b"garbage\r\n\r\n", http_request("POST", "/health", body=b"z" * 50)):
        with Conn(server.port) as conn:
            send_ignoring_reset(conn, request)
            conn.read_response()
    assert get(server.port, "/health").status == 200


# --- connection limit --------------------------------------------------------------------------


def try_health(port: int) -> int | None:
    try:
        with Conn(port, timeout=2) as conn:
            send_ignoring_reset(conn, http_request("GET", "/health"))
            return conn.read_response(2).status
    except (Closed, TimeoutError, OSError):
        return None


def test_connection_limit(bridge):
    server = bridge("--max-connections", "5")
    held: list[Conn] = []
    try:
        # Three idle keep-alive HTTP connections and two WebSocket connections.
        for _ in range(3):
            conn = Conn(server.port)
            conn.send(http_request("GET", "/health"))
            assert conn.read_response().status == 200
            held.append(conn)
        for _ in range(2):
            conn = Conn(server.port)
            conn.upgrade("/echo")
            held.append(conn)

        with Conn(server.port) as sixth:
            send_ignoring_reset(sixth, http_request("GET", "/health"))
            assert_json_error(sixth.read_response(3), 503)
            sixth.wait_closed(3)

        # The five held connections are still served.
        for conn in held[:3]:
            conn.send(http_request("GET", "/health"))
            assert conn.read_response().status == 200
        for conn in held[3:]:
            conn.send_frame(OP_TEXT, b"still here")
            assert conn.read_message() == (OP_TEXT, b"still here")

        # Closing one frees a slot; the release is asynchronous, so poll (bounded).
        held.pop(0).close()
        assert retry_until(lambda: try_health(server.port) == 200, timeout=5), \
            "a new connection was not accepted after one of five closed"
    finally:
        for conn in held:
            conn.close()


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_out_of_file_descriptors_sheds_without_spinning(bridge):
    # 64 fds for the whole process: the loops take about a dozen, so the rest of 80 clients
    # hit EMFILE. The server must shed them (accept + close via its spare fd), not spin on a
    # listener that stays readable, and must serve again once fds are free.
    server = bridge("--max-connections", "1000", fd_limit=64)
    held: list[Conn] = []
    try:
        for _ in range(80):
            held.append(Conn(server.port))
        assert server.wait_for_log("out of file descriptors", timeout=5) is not None
        before = _cpu_seconds(server.pid)
        time.sleep(1.0)
        assert _cpu_seconds(server.pid) - before < 0.5, "server busy-loops at the fd limit"
    finally:
        for conn in held:
            conn.close()
    assert retry_until(lambda: try_health(server.port) == 200, timeout=5)
