"""Issue 13's hostile inputs, each driven against a real server: numbers at the ends of their
range, floods that must not pin memory, and rate limits. Every test ends by showing the server
still answers (the fixture also fails a test whose server crashed)."""

from __future__ import annotations

import json
import time

import pytest

from conftest import OP_BINARY, OP_PING, OP_PONG, OP_TEXT, Conn, encode_frame, get, wait_until
from pusher_helpers import PusherWS, channel_auth, make_app, rss_bytes
from seed_helpers import seeded

EVENT = {"name": "ev", "data": "x", "channel": "room"}
INT64_MIN = -9223372036854775808
INT64_MAX = 9223372036854775807


def assert_alive(server) -> None:
    assert get(server.port, "/health").status == 200


# ----------------------------------------------------------------------------------------------
# Numbers at the ends of their range
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("timestamp", [INT64_MIN, INT64_MAX, INT64_MIN + 1, -1, 0])
@pytest.mark.parametrize("route", ["channels", "events", "terminate"])
def test_api_timestamp_at_int_limits_is_401(pusher_bridge, timestamp, route):
    server = pusher_bridge([make_app("1")])
    api = server.api()
    if route == "channels":
        result = api.get("/channels", timestamp=timestamp)
    elif route == "events":
        result = api.events(EVENT, timestamp=timestamp)
    else:
        result = api.post("/users/42/terminate_connections", {}, timestamp=timestamp)
    assert result.status == 401, result
    assert b"Timestamp expired" in result.body
    assert_alive(server)
    assert api.get("/channels").status == 200


@pytest.mark.parametrize("timestamp", ["9223372036854775808", "-9223372036854775809", "1e3", "0x10", " 1", ""])
def test_api_timestamp_that_is_no_int64_is_401(pusher_bridge, timestamp):
    server = pusher_bridge([make_app("1")])
    result = server.api().request("GET", "/apps/1/channels", sign=False, params={
        "auth_key": "key-1", "auth_timestamp": timestamp, "auth_version": "1.0", "auth_signature": "x"})
    assert result.status == 401, result
    assert_alive(server)


# ----------------------------------------------------------------------------------------------
# Seed mode never touches encrypted channels
# ----------------------------------------------------------------------------------------------


def test_seed_mode_cannot_subscribe_to_encrypted_channels_without_auth(seed_bridge):
    s = seeded(seed_bridge)
    with s.ws(s.jwt, "ann") as ann:
        ann.subscribe("private-encrypted-room")
        ann.expect_subscription_error("private-encrypted-room", "AuthError", 401)
        ann.assert_open()
        # Seed mode still covers private channels: the refusal is about encryption only.
        ann.subscribe("private-room")
        ann.wait_for_subscription("private-room")


def test_seed_mode_cannot_inject_into_encrypted_channels(seed_bridge):
    s = seeded(seed_bridge)
    channel = "private-encrypted-room"
    with s.ws(s.jwt, "ann") as ann, s.ws() as listener:
        for ws in (ann, listener):
            ws.subscribe(channel, auth=channel_auth(s.app["key"], s.app["secret"], ws.socket_id, channel))
            ws.wait_for_subscription(channel)
        ann.client_event(channel, "new_message", {"text": "plaintext"})
        ann.expect_error(4301)
        ann.client_event(channel, "client-note", {"text": "plaintext"})
        ann.expect_error(4301)
        listener.assert_silent(0.3, what=lambda e: e.get("channel") == channel and not e["event"].startswith("pusher"))


# ----------------------------------------------------------------------------------------------
# Output a client does not read: bounded by cost, whatever it sends
# ----------------------------------------------------------------------------------------------

BOUND = 64 * 1024
FLOODERS = 40


def peak_rss(pid: int) -> int:
    return rss_bytes(pid, "VmHWM")


def flood(port: int, path: str, frames: bytes, repeat: int, handshake_frames: bytes = b"") -> list[Conn]:
    """FLOODERS connections that upgrade on `path`, send `handshake_frames` then `frames` ×
    `repeat`, and read nothing (a 4 KiB receive buffer keeps the server's output queued)."""
    conns = []
    blob = frames * repeat
    for _ in range(FLOODERS):
        conn = Conn(port, timeout=10, rcvbuf=4096)
        conn.upgrade(path)
        conns.append(conn)
    for conn in conns:
        try:
            conn.send(handshake_frames + blob)
        except (BrokenPipeError, ConnectionResetError):
            pass  # cut as a slow consumer before the flood was all sent: that is the point
    return conns


def assert_pinned_at_most_the_bound(server, conns: list[Conn], baseline: int) -> None:
    """The server's peak RSS grew by no more than FLOODERS × (bound + a frame) plus slack."""
    time.sleep(0.5)  # let the server read what is still in flight
    grown = peak_rss(server.pid) - baseline
    allowed = FLOODERS * (BOUND + 64 * 1024) + 16 * 1024 * 1024
    for conn in conns:
        conn.close()
    assert grown <= allowed, f"peak RSS grew by {grown} bytes, allowed {allowed}"


def warmed_baseline(server, path: str) -> int:
    for _ in range(3):
        with Conn(server.port) as conn:
            conn.upgrade(path)
    time.sleep(0.2)
    return peak_rss(server.pid)


def test_echo_flood_of_tiny_messages_pins_at_most_the_bound(bridge):
    server = bridge("--max-outbound-bytes", str(BOUND))
    baseline = warmed_baseline(server, "/echo")
    # 40 × 60,000 one-byte echoes: counted by payload alone, 180 KB per client fit "the bound"
    # three times over while their buffers pinned ~6 MB each.
    conns = flood(server.port, "/echo", encode_frame(OP_TEXT, b"x"), 60_000)
    assert_pinned_at_most_the_bound(server, conns, baseline)
    assert get(server.port, "/health").status == 200


def test_ping_flood_keeps_a_few_pongs_and_answers_the_latest(bridge):
    server = bridge("--max-outbound-bytes", str(BOUND))
    baseline = warmed_baseline(server, "/echo")
    pings = 50_000
    conns = flood(server.port, "/echo", encode_frame(OP_PING, b""), pings)
    assert_pinned_at_most_the_bound(server, conns, baseline)
    # One client that stops reading, pings, then reads: its pongs end with the latest ping's.
    with Conn(server.port, timeout=10, rcvbuf=4096) as conn:
        conn.upgrade("/echo")
        conn.send(b"".join(encode_frame(OP_PING, str(n).encode()) for n in range(20_000)))
        last = None
        deadline = time.monotonic() + 10
        while last != b"19999" and time.monotonic() < deadline:
            frame = conn.read_frame(timeout=max(0.1, deadline - time.monotonic()))
            assert frame.opcode == OP_PONG, frame
            last = frame.payload
        assert last == b"19999"
        conn.send_frame(OP_TEXT, b"still here")
        assert conn.read_message() == (OP_TEXT, b"still here")


def pusher_frame(event: dict) -> bytes:
    return encode_frame(OP_TEXT, json.dumps(event).encode())


@pytest.mark.parametrize("kind", ["pusher-ping", "subscribe", "bad-json"])
def test_pusher_floods_pin_at_most_the_bound(pusher_bridge, kind):
    server = pusher_bridge([make_app("1")], "--max-outbound-bytes", str(BOUND))
    path = "/app/key-1?protocol=7"
    baseline = warmed_baseline(server.proc, path)
    if kind == "pusher-ping":
        frames = pusher_frame({"event": "pusher:ping", "data": {}})
    elif kind == "subscribe":
        frames = b"".join(pusher_frame({"event": "pusher:subscribe", "data": {"channel": f"room-{n}"}})
                          for n in range(200))
    else:
        frames = encode_frame(OP_TEXT, b"{")
    conns = flood(server.port, path, frames, 20_000 if kind != "subscribe" else 100)
    assert_pinned_at_most_the_bound(server.proc, conns, baseline)
    with server.ws() as ws:
        ws.subscribe_ok("after")


# ----------------------------------------------------------------------------------------------
# A single frame of the largest allowed size never trips the slow-consumer bound
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY])
def test_echo_of_a_message_of_the_default_maximum_size(bridge, opcode):
    server = bridge()  # the defaults: --max-message-bytes = --max-outbound-bytes = 1 MiB
    payload = b"a" * (1 << 20)
    with Conn(server.port, timeout=10) as conn:
        conn.upgrade()
        conn.send_frame(opcode, payload)
        assert conn.read_message(timeout=10) == (opcode, payload)
        conn.send_frame(opcode, payload)  # and again: the first one was written
        assert conn.read_message(timeout=10) == (opcode, payload)


# ----------------------------------------------------------------------------------------------
# Rate limits and caps a tenant cannot get around
# ----------------------------------------------------------------------------------------------


def collect(ws, until: float) -> list:
    frames = []
    while time.monotonic() < until:
        try:
            frames.append(ws.recv(max(0.05, until - time.monotonic())))
        except TimeoutError:
            break
    return frames


def test_subscribe_requests_are_rate_limited_per_connection(pusher_bridge):
    server = pusher_bridge([make_app("1", max_subscriptions_per_sec=2)])  # bursts of 20
    with server.ws() as ws, server.ws() as other:
        for n in range(30):
            ws.subscribe(f"room-{n}")
        frames = collect(ws, time.monotonic() + 1.5)
        succeeded = [f for f in frames if f["event"] == "pusher_internal:subscription_succeeded"]
        refused = [f for f in frames if f["event"] == "pusher:subscription_error"]
        errors = [f for f in frames if f["event"] == "pusher:error"]
        assert 20 <= len(succeeded) <= 23, [f.raw for f in frames]
        assert len(refused) == 30 - len(succeeded)
        assert all(json.loads(f["data"])["status"] == 429 for f in refused)
        assert len(errors) == len(refused) and all(f["data"]["code"] == 4301 for f in errors)
        ws.assert_open()
        other.subscribe_ok("room-0")  # the limit is the connection's, not the app's
        time.sleep(1.0)
        ws.subscribe_ok("later")  # refilled


def test_publishing_to_new_cache_channels_stops_at_the_cap(pusher_bridge):
    server = pusher_bridge([make_app("1", max_cache_channels=3, max_event_batch_size=5)])
    api = server.api()
    for n in range(3):
        assert api.events({"name": "ev", "data": "x", "channel": f"cache-{n}"}).status == 200
    refused = api.events({"name": "ev", "data": "x", "channel": "cache-new"})
    assert refused.status == 403 and b"max_cache_channels" in refused.body, refused
    batch = api.batch([{"name": "ev", "data": "x", "channel": "cache-new-2"}])
    assert batch.status == 403, batch
    # Replacing a cached event and publishing to other channels still work.
    assert api.events({"name": "ev", "data": "y", "channel": "cache-1"}).status == 200
    assert api.events({"name": "ev", "data": "y", "channel": "plain"}).status == 200
    with server.ws() as ws:
        ws.subscribe_ok("cache-new")
        ws.wait_for("pusher:cache_miss", "cache-new")
        ws.subscribe_ok("cache-1")
        assert ws.wait_for("ev", "cache-1")["data"] == "y"


def test_cache_channels_free_their_place_when_the_ttl_passes(pusher_bridge):
    server = pusher_bridge([make_app("1", max_cache_channels=1, cache_ttl=1)])
    api = server.api()
    assert api.events({"name": "ev", "data": "x", "channel": "cache-a"}).status == 200
    assert api.events({"name": "ev", "data": "x", "channel": "cache-b"}).status == 403
    wait_until(lambda: api.events({"name": "ev", "data": "x", "channel": "cache-b"}).status == 200,
               timeout=5, what="cache-a's place freed after its TTL")


def test_seed_events_to_new_cache_channels_stop_at_the_cap(seed_bridge):
    s = seeded(seed_bridge, max_cache_channels=1)
    assert s.publish("ev", {"channel": "cache-a", "text": "x"}).status == 200
    refused = s.publish("ev", {"channel": "cache-b", "text": "x"})
    assert refused.status == 403 and b"max_cache_channels" in refused.body, refused


def test_seed_event_endpoint_is_rate_limited_per_organization(seed_bridge):
    s = seeded(seed_bridge, "--seed-events-per-sec", "5")
    other_org = s.server.create_org("other-org")
    other_app = s.server.create_app("other-org", "chat")
    other_jwt = s.server.jwt(other_org)
    statuses = [s.publish("ev", {"text": str(n)}).status for n in range(12)]
    assert statuses.count(200) in range(5, 11) and 403 in statuses, statuses
    refused = s.publish("ev", {"text": "x"})
    if refused.status == 403:
        assert b"rate limit" in refused.body
    # Another organization has its own budget.
    assert s.server.publish("other-org", other_app["key"], "ev", {"text": "x"}, jwt=other_jwt).status == 200


def test_seed_event_with_too_many_fields_is_400(seed_bridge):
    s = seeded(seed_bridge)
    body = "&".join(f"f{n}=x" for n in range(1001)).encode()
    result = s.publish("ev", raw=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert result.status == 400 and b"1001 fields" in result.body, result
    result = s.publish("ev", raw=b"&".join([b"text=x"] * 20000),
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert result.status == 400, result


# ----------------------------------------------------------------------------------------------
# The memory guard
# ----------------------------------------------------------------------------------------------


def test_over_the_memory_threshold_new_connections_and_subscriptions_are_refused(bridge):
    # Start well under the threshold, then pin memory with clients that do not read.
    probe = bridge("--max-memory-mb", "0")
    baseline_mb = rss_bytes(probe.pid) >> 20
    server = bridge("--max-memory-mb", str(baseline_mb + 40), "--max-outbound-bytes", str(4 << 20))
    assert get(server.port, "/ready").status == 200
    with PusherWS(server.port, key="app-key") as ws:
        ws.subscribe_ok("before")
        hogs = []
        try:
            payload = b"a" * (1 << 20)
            for _ in range(120):  # up to 120 MiB of echoes nobody reads, bounded
                if get(server.port, "/ready").status == 503:
                    break
                hog = Conn(server.port, timeout=10, rcvbuf=4096)
                hog.upgrade()
                hogs.append(hog)
                for _ in range(3):
                    hog.send_frame(OP_BINARY, payload)
            wait_until(lambda: get(server.port, "/ready").status == 503, timeout=5, what="/ready 503")
            ready = get(server.port, "/ready")
            assert b"memory" in ready.body, ready.body
            ws.subscribe("after")
            frames = collect(ws, time.monotonic() + 1)
            assert any(f["event"] == "pusher:subscription_error" and json.loads(f["data"])["status"] == 503
                       for f in frames), [f.raw for f in frames]
            assert any(f["event"] == "pusher:error" and f["data"]["code"] == 4100 for f in frames)
            with Conn(server.port) as conn:
                conn.send(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                response = conn.read_response()
                assert response.status == 503 and b"memory" in response.body, response
        finally:
            for hog in hogs:
                hog.close()
