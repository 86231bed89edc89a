"""Pusher protocol 7 over WebSocket (/app/{key}): handshake, errors, heartbeats, subscriptions,
presence, client events, signin and server-to-user messages, watchlists, authorized connections,
cache channels, subscription_count, slow consumers and byte-exact payloads.

The reference is shared/PROTOCOL.md Part 1 §1.1–§1.14 and the Part 4 checklist."""

from __future__ import annotations

import json
import signal
import time

import pytest

from conftest import Closed as SocketClosed
from conftest import OP_CLOSE, OP_TEXT, Conn, parse_close
from pusher_helpers import (
    DEFAULT_QUERY,
    SOCKET_ID_RE,
    Closed,
    PusherWS,
    assert_error_frame,
    channel_auth,
    connect_error,
    make_app,
    retry_until,
    user_auth,
)

APP = make_app("1")


def start(pusher_bridge, options=None, **settings):
    """A server with one app (id 1, key key-1) with `settings`, and server `options`."""
    return pusher_bridge([make_app("1", **settings)], options=options)


# ----------------------------------------------------------------------------------------------
# Handshake
# ----------------------------------------------------------------------------------------------


def test_connection_established_frame(pusher_bridge):
    server = start(pusher_bridge)
    with server.ws(established=False) as ws:
        frame = ws.recv()
    assert set(frame) == {"event", "data"}, frame.raw
    assert frame["event"] == "pusher:connection_established"
    assert isinstance(frame["data"], str), f"data must be a JSON string: {frame.raw}"
    info = json.loads(frame["data"])
    assert SOCKET_ID_RE.match(info["socket_id"]), info
    assert info["activity_timeout"] == 120, info


def test_activity_timeout_is_the_apps_setting(pusher_bridge):
    server = start(pusher_bridge, activity_timeout=7)
    with server.ws() as ws:
        assert ws.activity_timeout == 7


def test_socket_ids_are_unique(pusher_bridge):
    server = start(pusher_bridge)
    sockets = [server.ws() for _ in range(60)]
    try:
        ids = [ws.socket_id for ws in sockets]
        assert len(set(ids)) == len(ids), ids
    finally:
        for ws in sockets:
            ws.close()


@pytest.mark.parametrize("protocol", ["4", "5", "6", "7"])
def test_supported_protocol_versions(pusher_bridge, protocol):
    server = start(pusher_bridge)
    with server.ws(query=f"protocol={protocol}&client=py&version=1.0") as ws:
        ws.assert_open()


@pytest.mark.parametrize("query,code", [
    ("client=py&version=1.0", 4008),
    ("protocol=seven&client=py&version=1.0", 4006),
    ("protocol=7.5&client=py&version=1.0", 4006),
    ("protocol=3&client=py&version=1.0", 4007),
    ("protocol=8&client=py&version=1.0", 4007),
], ids=["missing", "word", "fraction", "too-old", "too-new"])
def test_bad_protocol_param(pusher_bridge, query, code):
    server = start(pusher_bridge)
    connect_error(server.port, f"{APP['key']}?{query}", code)


def test_unknown_key_4001(pusher_bridge):
    server = start(pusher_bridge)
    connect_error(server.port, f"no-such-key?{DEFAULT_QUERY}", 4001)
    with server.ws() as ws:  # the server is still fine
        ws.assert_open()


def test_disabled_app_4003(pusher_bridge):
    server = pusher_bridge([make_app("1"), make_app("2", enabled=False)])
    connect_error(server.port, f"key-2?{DEFAULT_QUERY}", 4003)
    with server.ws(0) as ws:
        ws.assert_open()


def test_app_over_max_connections_4004(pusher_bridge):
    server = pusher_bridge([make_app("1", max_connections=2), make_app("2")])
    first, second = server.ws(0), server.ws(0)
    try:
        connect_error(server.port, f"key-1?{DEFAULT_QUERY}", 4004)
        with server.ws(1) as other:  # the quota is per app
            other.assert_open()
        first.assert_open()
        second.assert_open()
        first.close()
        # A closed connection frees its place in the quota.
        third = retry_until(lambda: _try_connect(server), 5)
        assert third, "no connection accepted after one of the two closed"
        third.close()
    finally:
        first.close()
        second.close()


def test_node_over_capacity_4100(pusher_bridge):
    # At --max-connections the server still reads a WebSocket upgrade and answers in the
    # protocol's own terms: close 4100, "back off and retry", instead of an HTTP 503.
    server = start(pusher_bridge, options={"max-connections": 2})
    first, second = server.ws(), server.ws()
    try:
        connect_error(server.port, f"key-1?{DEFAULT_QUERY}", 4100)
        first.assert_open()
        second.close()
        third = retry_until(lambda: _try_connect(server), 5)
        assert third, "no connection accepted after one of the two closed"
        third.close()
    finally:
        first.close()
        second.close()


def _try_connect(server):
    try:
        return server.ws(0)
    except (AssertionError, OSError):
        return None


# ----------------------------------------------------------------------------------------------
# Heartbeats and shutdown
# ----------------------------------------------------------------------------------------------


def test_ping_pong(pusher_bridge):
    server = start(pusher_bridge)
    with server.ws() as ws:
        ws.send({"event": "pusher:ping", "data": {}})
        frame = ws.recv()
        assert frame["event"] == "pusher:pong", frame.raw
        assert frame["data"] == "{}" or json.loads(frame["data"]) == {}, frame.raw
        assert isinstance(frame["data"], str), frame.raw


def test_server_pings_after_activity_timeout_then_closes_4201(pusher_bridge):
    server = start(pusher_bridge, options={"ws-pong-timeout": 1}, activity_timeout=1)
    with server.ws() as ws:
        assert ws.activity_timeout == 1
        began = time.monotonic()
        ping = ws.recv(5)
        assert ping["event"] == "pusher:ping", ping.raw
        assert isinstance(ping["data"], str) and json.loads(ping["data"]) == {}, ping.raw
        assert time.monotonic() - began >= 0.5, "pinged long before activity_timeout"
        ws.expect_close(4201, 5)
        assert time.monotonic() - began < 8


def test_answering_server_pings_keeps_the_connection(pusher_bridge):
    server = start(pusher_bridge, options={"ws-pong-timeout": 1}, activity_timeout=1)
    with server.ws() as ws:
        ws.subscribe_ok("room")
        pings = 0
        deadline = time.monotonic() + 4.5
        while time.monotonic() < deadline:
            try:
                frame = ws.recv(max(0.05, deadline - time.monotonic()))
            except TimeoutError:
                break
            if frame["event"] == "pusher:ping":
                pings += 1
                ws.send({"event": "pusher:pong", "data": {}})
        assert pings >= 2, f"only {pings} server pings in 4.5 s with activity_timeout 1"
        server.rest().trigger("room", "still-here", {"n": 1})
        assert ws.wait_for("still-here", "room")["data"] == '{"n": 1}'


def test_sigterm_closes_pusher_connections_4200(pusher_bridge):
    server = start(pusher_bridge)
    first, second = server.ws(), server.ws()
    first.subscribe_ok("room")
    server.proc.send_signal(signal.SIGTERM)
    first.expect_close(4200, 10)
    second.expect_close(4200, 10)
    assert server.proc.wait(10) is not None, "bridge still running 10 s after SIGTERM"


# ----------------------------------------------------------------------------------------------
# Subscriptions
# ----------------------------------------------------------------------------------------------


def test_public_subscribe_success_frame(pusher_bridge):
    server = start(pusher_bridge)
    with server.ws() as ws:
        ws.subscribe("room")
        frame = ws.recv()
    assert frame["event"] == "pusher_internal:subscription_succeeded", frame.raw
    assert frame["channel"] == "room"
    assert isinstance(frame["data"], str) and json.loads(frame["data"]) == {}, frame.raw


def test_public_subscribe_ignores_auth(pusher_bridge):
    server = start(pusher_bridge)
    with server.ws() as ws:
        ws.subscribe("room", auth="key-1:not-a-signature")
        ws.wait_for_subscription("room")
        ws.subscribe("lobby", auth="")
        ws.wait_for_subscription("lobby")


@pytest.mark.parametrize("channel", [
    "private-a", "private-cache-a", "private-encrypted-a", "private-encrypted-cache-a",
])
def test_private_kinds_subscribe_with_library_auth(pusher_bridge, channel):
    server = start(pusher_bridge)
    with server.ws() as ws:
        payload = ws.auth_for(channel)
        ws.subscribe(channel, payload["auth"])
        frame = ws.wait_for_subscription(channel)
        assert json.loads(frame["data"]) == {}


@pytest.mark.parametrize("case", ["bad-signature", "missing-auth", "other-socket", "wrong-secret",
                                  "wrong-key"])
def test_private_subscription_auth_errors(pusher_bridge, case):
    server = start(pusher_bridge)
    with server.ws() as ws:
        channel = "private-secret"
        auth = {
            "bad-signature": "key-1:" + "0" * 64,
            "missing-auth": None,
            "other-socket": channel_auth("key-1", "secret-1", "1234.5678", channel),
            "wrong-secret": channel_auth("key-1", "not-the-secret", ws.socket_id, channel),
            "wrong-key": channel_auth("key-2", "secret-1", ws.socket_id, channel),
        }[case]
        ws.subscribe(channel, auth)
        error, data = ws.expect_subscription_error(channel, "AuthError", 401)
        if case in ("bad-signature", "wrong-secret", "other-socket"):
            expected = f"Expected HMAC SHA256 hex digest of {ws.socket_id}:{channel}"
            assert expected in error["data"]["message"], error.raw
        # The connection stays open and can subscribe with a good signature.
        ws.subscribe_ok(channel)


def test_presence_bad_signature_message_names_channel_data(pusher_bridge):
    server = start(pusher_bridge)
    with server.ws() as ws:
        channel = "presence-room"
        channel_data = json.dumps({"user_id": "1", "user_info": {"name": "Ann"}})
        # Signed without channel_data: the private-channel string, wrong for presence.
        ws.subscribe(channel, channel_auth("key-1", "secret-1", ws.socket_id, channel), channel_data)
        error, _ = ws.expect_subscription_error(channel, "AuthError", 401)
        expected = f"Expected HMAC SHA256 hex digest of {ws.socket_id}:{channel}:{channel_data}"
        assert expected in error["data"]["message"], error.raw
        ws.assert_open()


def test_presence_signature_covers_exact_channel_data(pusher_bridge):
    server = start(pusher_bridge)
    with server.ws() as ws:
        channel = "presence-room"
        signed = '{"user_id":"1"}'
        sent = '{"user_id": "1"}'  # same JSON, other bytes
        ws.subscribe(channel, channel_auth("key-1", "secret-1", ws.socket_id, channel, signed), sent)
        ws.expect_subscription_error(channel, "AuthError", 401)
        # Our own signature over the exact bytes sent works.
        ws.subscribe(channel, channel_auth("key-1", "secret-1", ws.socket_id, channel, sent), sent)
        data = ws.wait_for_subscription(channel).data_json()
        assert data["presence"]["ids"] == ["1"]


@pytest.mark.parametrize("channel,kind,status", [
    ("bad channel", "InvalidChannel", 400),
    ("bad*chars", "InvalidChannel", 400),
    ("x" * 165, "LimitReached", None),
], ids=["space", "star", "too-long"])
def test_bad_channel_names(pusher_bridge, channel, kind, status):
    server = start(pusher_bridge)
    with server.ws() as ws:
        ws.subscribe(channel)
        ws.expect_subscription_error(channel, kind, status)
        ws.subscribe_ok("x" * 164)  # the longest allowed name works, and the connection is open


def test_channel_name_limit_is_the_apps_setting(pusher_bridge):
    server = start(pusher_bridge, max_channel_name_length=20)
    with server.ws() as ws:
        ws.subscribe_ok("c" * 20)
        ws.subscribe("c" * 21)
        ws.expect_subscription_error("c" * 21, "LimitReached")


def test_resubscribe_is_acknowledged_and_not_duplicated(pusher_bridge):
    server = start(pusher_bridge)
    with server.ws() as ws:
        ws.subscribe_ok("room")
        ws.subscribe_ok("room")
        server.rest().trigger("room", "once", "1")
        assert ws.wait_for("once", "room")["data"] == "1"
        ws.assert_silent(0.3, what=lambda e: e.get("event") == "once")


def test_a_connection_holds_at_most_1000_subscriptions(pusher_bridge):
    server = start(pusher_bridge, max_subscriptions_per_sec=200)  # bursts of 2,000
    with server.ws() as ws:
        for n in range(1000):
            ws.send({"event": "pusher:subscribe", "data": {"channel": f"many-{n}"}})
        ws.wait_for_subscription("many-999")
        ws.send({"event": "pusher:subscribe", "data": {"channel": "many-1000"}})
        ws.expect_subscription_error("many-1000", "LimitReached")
        ws.assert_open()


def test_unsubscribe_stops_delivery(pusher_bridge):
    server = start(pusher_bridge)
    with server.ws() as leaving, server.ws() as staying:
        leaving.subscribe_ok("room")
        staying.subscribe_ok("room")
        leaving.send({"event": "pusher:unsubscribe", "data": {"channel": "room"}})
        # No answer to an unsubscribe: the next frame is the pong of the barrier.
        assert leaving.frames_until_pong() == []
        server.rest().trigger("room", "after", "x")
        staying.wait_for("after", "room")
        leaving.assert_silent(0.3)


def test_unsubscribe_then_subscribe_again(pusher_bridge):
    server = start(pusher_bridge)
    with server.ws() as ws:
        ws.subscribe_ok("room")
        ws.send({"event": "pusher:unsubscribe", "data": {"channel": "room"}})
        ws.subscribe_ok("room")
        server.rest().trigger("room", "back", "x")
        assert ws.wait_for("back", "room")["data"] == "x"


# ----------------------------------------------------------------------------------------------
# Presence
# ----------------------------------------------------------------------------------------------


def test_presence_success_lists_members_including_self(pusher_bridge):
    server = start(pusher_bridge)
    with server.ws() as ann, server.ws() as bob:
        first = ann.subscribe_ok("presence-room", "1", {"name": "Ann"})
        assert first == {"presence": {"ids": ["1"], "hash": {"1": {"name": "Ann"}}, "count": 1}}
        second = bob.subscribe_ok("presence-room", "2", {"name": "Bob"})
        presence = second["presence"]
        assert sorted(presence["ids"]) == ["1", "2"]
        assert presence["hash"] == {"1": {"name": "Ann"}, "2": {"name": "Bob"}}
        assert presence["count"] == 2


def test_presence_member_added_goes_to_others_only(pusher_bridge):
    server = start(pusher_bridge)
    with server.ws() as ann, server.ws() as bob:
        ann.subscribe_ok("presence-room", "1", {"name": "Ann"})
        bob.subscribe_ok("presence-room", "2", {"name": "Bob"})
        added = ann.wait_for("pusher_internal:member_added", "presence-room")
        assert isinstance(added["data"], str), added.raw
        assert json.loads(added["data"]) == {"user_id": "2", "user_info": {"name": "Bob"}}
        bob.assert_silent(0.2, what=lambda e: e["event"].startswith("pusher_internal:member"))


def test_presence_numeric_user_id_becomes_a_string(pusher_bridge):
    server = start(pusher_bridge)
    with server.ws() as ann, server.ws() as bob:
        ann.subscribe_ok("presence-room", "1")
        data = bob.subscribe_ok("presence-room", 7, {"n": 7})
        assert sorted(data["presence"]["ids"]) == ["1", "7"]
        assert data["presence"]["hash"]["7"] == {"n": 7}
        added = ann.wait_for("pusher_internal:member_added", "presence-room")
        assert json.loads(added["data"])["user_id"] == "7", added.raw


def test_presence_two_connections_of_one_user(pusher_bridge):
    server = start(pusher_bridge)
    watcher, tab1, tab2 = server.ws(), server.ws(), server.ws()
    try:
        channel = "presence-room"
        watcher.subscribe_ok(channel, "2")
        tab1.subscribe_ok(channel, "1", {"tab": 1})
        assert json.loads(watcher.wait_for("pusher_internal:member_added", channel)["data"])["user_id"] == "1"
        # The second connection of user 1: a full list, and no member_added for anyone.
        data = tab2.subscribe_ok(channel, "1", {"tab": 1})
        assert sorted(data["presence"]["ids"]) == ["1", "2"] and data["presence"]["count"] == 2
        member_event = lambda e: e["event"].startswith("pusher_internal:member")  # noqa: E731
        watcher.assert_silent(0.3, what=member_event)
        tab1.assert_silent(0.1, what=member_event)
        # One of user 1's connections leaves: user 1 is still there.
        tab1.send({"event": "pusher:unsubscribe", "data": {"channel": channel}})
        tab1.assert_open()
        watcher.assert_silent(0.3, what=member_event)
        users = server.rest().users_info(channel)["users"]
        assert sorted(user["id"] for user in users) == ["1", "2"], users
        # The last one disconnects: member_removed with only the user id.
        tab2.close()
        removed = watcher.wait_for("pusher_internal:member_removed", channel)
        assert isinstance(removed["data"], str) and json.loads(removed["data"]) == {"user_id": "1"}, removed.raw
    finally:
        for ws in (watcher, tab1, tab2):
            ws.close()


def test_presence_member_removed_on_unsubscribe(pusher_bridge):
    server = start(pusher_bridge)
    with server.ws() as ann, server.ws() as bob:
        ann.subscribe_ok("presence-room", "1")
        bob.subscribe_ok("presence-room", "2")
        ann.wait_for("pusher_internal:member_added", "presence-room")
        bob.send({"event": "pusher:unsubscribe", "data": {"channel": "presence-room"}})
        removed = ann.wait_for("pusher_internal:member_removed", "presence-room")
        assert json.loads(removed["data"]) == {"user_id": "2"}


def test_presence_without_channel_data_fails(pusher_bridge):
    server = start(pusher_bridge)
    with server.ws() as ws:
        ws.subscribe("presence-room", channel_auth("key-1", "secret-1", ws.socket_id, "presence-room"))
        ws.expect_subscription_error("presence-room", None)
        ws.subscribe_ok("presence-room", "1")


def test_presence_member_limit(pusher_bridge):
    server = start(pusher_bridge, max_presence_members_per_channel=2)
    sockets = [server.ws() for _ in range(3)]
    try:
        sockets[0].subscribe_ok("presence-room", "1")
        sockets[1].subscribe_ok("presence-room", "2")
        payload = sockets[2].auth_for("presence-room", "3")
        sockets[2].subscribe("presence-room", payload["auth"], payload["channel_data"])
        sockets[2].expect_subscription_error("presence-room", "LimitReached")
        sockets[2].subscribe_ok("presence-other", "3")  # still connected, other channels work
    finally:
        for ws in sockets:
            ws.close()


def test_presence_member_info_size_limit(pusher_bridge):
    server = start(pusher_bridge, max_presence_member_size_in_kb=1)
    with server.ws() as ws:
        payload = ws.auth_for("presence-room", "1", {"blob": "x" * 2000})
        ws.subscribe("presence-room", payload["auth"], payload["channel_data"])
        ws.expect_subscription_error("presence-room", "LimitReached")
        ws.subscribe_ok("presence-room", "1", {"blob": "x" * 100})


# ----------------------------------------------------------------------------------------------
# Client events
# ----------------------------------------------------------------------------------------------


def test_client_event_on_private_channel(pusher_bridge):
    server = start(pusher_bridge)
    with server.ws() as sender, server.ws() as receiver:
        sender.subscribe_ok("private-chat")
        receiver.subscribe_ok("private-chat")
        data_text = '{"z": 1, "a": [true, null], "s": "é\\n"}'
        sender.send('{"event":"client-typing","channel":"private-chat","data":%s}' % data_text)
        frame = receiver.wait_for("client-typing", "private-chat")
        assert frame["data"] == json.loads(data_text), frame.raw
        assert data_text in frame.raw, f"data not forwarded byte for byte: {frame.raw}"
        assert "user_id" not in frame, frame.raw
        sender.assert_silent(0.3, what=lambda e: e["event"] == "client-typing")  # never echoed


def test_client_event_with_string_data(pusher_bridge):
    server = start(pusher_bridge)
    with server.ws() as sender, server.ws() as receiver:
        sender.subscribe_ok("private-chat")
        receiver.subscribe_ok("private-chat")
        sender.client_event("private-chat", "client-note", "just a string")
        frame = receiver.wait_for("client-note", "private-chat")
        assert frame["data"] == "just a string", frame.raw


def test_client_event_on_presence_channel_carries_authenticated_user_id(pusher_bridge):
    server = start(pusher_bridge)
    with server.ws() as sender, server.ws() as receiver:
        sender.subscribe_ok("presence-chat", "alice")
        receiver.subscribe_ok("presence-chat", "bob")
        sender.client_event("presence-chat", "client-hi", {"on": True}, user_id="mallory")
        frame = receiver.wait_for("client-hi", "presence-chat")
        assert frame["user_id"] == "alice", frame.raw
        assert frame["data"] == {"on": True}, frame.raw
        sender.assert_silent(0.2, what=lambda e: e["event"] == "client-hi")


@pytest.mark.parametrize("channel", ["public-room", "private-encrypted-room"])
def test_client_event_refused_on_public_and_encrypted_channels(pusher_bridge, channel):
    server = start(pusher_bridge)
    with server.ws() as sender, server.ws() as receiver:
        sender.subscribe_ok(channel)
        receiver.subscribe_ok(channel)
        sender.client_event(channel, "client-x", {"a": 1})
        sender.expect_error(4301)
        sender.assert_open()
        receiver.assert_silent(0.2, what=lambda e: e["event"] == "client-x")


def test_client_event_refused_when_app_disables_client_messages(pusher_bridge):
    server = start(pusher_bridge, enable_client_messages=False)
    with server.ws() as sender, server.ws() as receiver:
        sender.subscribe_ok("private-chat")
        receiver.subscribe_ok("private-chat")
        sender.client_event("private-chat", "client-x", {"a": 1})
        sender.expect_error(4301)
        sender.assert_open()
        receiver.assert_silent(0.2, what=lambda e: e["event"] == "client-x")


def test_client_event_refused_when_not_subscribed(pusher_bridge):
    server = start(pusher_bridge)
    with server.ws() as outsider, server.ws() as receiver:
        receiver.subscribe_ok("private-chat")
        outsider.client_event("private-chat", "client-x", {"a": 1})
        outsider.expect_error(4009)
        outsider.assert_open()
        receiver.assert_silent(0.2, what=lambda e: e["event"] == "client-x")


def test_client_event_name_and_payload_limits(pusher_bridge):
    server = start(pusher_bridge, max_event_name_length=20, max_event_payload_in_kb=1)
    with server.ws() as sender, server.ws() as receiver:
        sender.subscribe_ok("private-chat")
        receiver.subscribe_ok("private-chat")
        sender.client_event("private-chat", "client-" + "n" * 14, {"a": 1})  # 21 characters
        sender.expect_error(4301)
        sender.client_event("private-chat", "client-big", {"blob": "x" * 2000})
        sender.expect_error(4301)
        sender.client_event("private-chat", "client-" + "n" * 13, {"blob": "x" * 500})  # 20 chars, 0.5 KB
        frame = receiver.wait_for("client-" + "n" * 13, "private-chat")
        assert frame["data"] == {"blob": "x" * 500}
        receiver.assert_silent(0.2, what=lambda e: e["event"] in ("client-big", "client-" + "n" * 14))


def test_client_event_rate_limit(pusher_bridge):
    server = start(pusher_bridge, max_client_events_per_sec=10)
    with server.ws() as sender, server.ws() as receiver:
        sender.subscribe_ok("private-chat")
        receiver.subscribe_ok("private-chat")
        for n in range(30):
            sender.client_event("private-chat", "client-burst", {"n": n})
        errors = 0
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            try:
                frame = sender.recv(max(0.05, deadline - time.monotonic()))
            except TimeoutError:
                break
            if frame["event"] == "pusher:error":
                assert_error_frame(frame, 4301)
                errors += 1
        delivered = 0
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            try:
                frame = receiver.recv(max(0.05, deadline - time.monotonic()))
            except TimeoutError:
                break
            if frame["event"] == "client-burst":
                delivered += 1
        assert errors >= 1, "30 client events at once with a limit of 10/s: none refused"
        # A limiter with a one-second window can let through up to twice the limit across a boundary.
        assert 1 <= delivered <= 20, f"{delivered} of 30 delivered with a limit of 10 per second"
        assert errors + delivered == 30, f"{errors} refused + {delivered} delivered != 30"
        sender.assert_open()


# ----------------------------------------------------------------------------------------------
# Signin, server-to-user, terminate, watchlist, authorized connections
# ----------------------------------------------------------------------------------------------


def test_signin_success(pusher_bridge):
    server = start(pusher_bridge)
    with server.ws() as ws:
        frame = ws.signin({"id": "42", "user_info": {"name": "Ann"}})
        user_data = json.loads(json.loads(frame["data"])["user_data"])
        assert user_data["id"] == "42"


def test_signin_bad_signature_4009_keeps_connection(pusher_bridge):
    server = start(pusher_bridge)
    with server.ws() as ws:
        user_data = json.dumps({"id": "42"})
        ws.send({"event": "pusher:signin",
                 "data": {"auth": user_auth("key-1", "wrong", ws.socket_id, user_data), "user_data": user_data}})
        ws.expect_error(4009)
        ws.assert_open()
        ws.signin({"id": "42"})  # and a good signin still works


@pytest.mark.parametrize("user_data", ['{"name":"no id"}', '{"id":""}', '{"id":42}', 'not json',
                                       '{"id":"%s"}' % ("u" * 129)],
                         ids=["no-id", "empty-id", "number-id", "not-json", "id-over-128-characters"])
def test_signin_user_data_without_string_id(pusher_bridge, user_data):
    server = start(pusher_bridge)
    with server.ws() as ws:
        ws.send({"event": "pusher:signin",
                 "data": {"auth": user_auth("key-1", "secret-1", ws.socket_id, user_data), "user_data": user_data}})
        ws.expect_error(4009)


def test_signin_id_of_128_characters_is_accepted(pusher_bridge):
    server = start(pusher_bridge)
    with server.ws() as ws:
        ws.signin({"id": "u" * 128})


def test_signin_again_as_another_user_is_refused(pusher_bridge):
    server = start(pusher_bridge)
    with server.ws() as ws:
        ws.signin({"id": "42"})
        payload = ws.rest.authenticate_user(socket_id=ws.socket_id, user_data={"id": "43"})
        ws.send({"event": "pusher:signin", "data": payload})
        ws.expect_error(4009)
        # The contract doesn't say whether this closes; if it stays open it is still user 42.
        try:
            ws.subscribe("#server-to-user-43")
            ws.expect_subscription_error("#server-to-user-43", "AuthError")
            ws.subscribe_ok("#server-to-user-42")
        except Closed:
            pass


def test_server_to_user_channel_needs_signin_as_that_user(pusher_bridge):
    server = start(pusher_bridge)
    with server.ws() as anonymous, server.ws() as other, server.ws() as owner:
        anonymous.subscribe("#server-to-user-42", auth="")
        anonymous.expect_subscription_error("#server-to-user-42", "AuthError")
        other.signin({"id": "43"})
        other.subscribe("#server-to-user-42", auth="")
        other.expect_subscription_error("#server-to-user-42", "AuthError")
        owner.signin({"id": "42"})
        owner.subscribe("#server-to-user-42", auth="")
        owner.wait_for_subscription("#server-to-user-42")


def test_send_to_user_reaches_every_connection_of_that_user(pusher_bridge):
    server = start(pusher_bridge)
    subscribed, plain, stranger, anonymous = (server.ws() for _ in range(4))
    try:
        subscribed.signin({"id": "42"})
        subscribed.subscribe_ok("#server-to-user-42")
        plain.signin({"id": "42"})  # signed in, but not subscribed to #server-to-user-42
        stranger.signin({"id": "43"})
        server.rest().send_to_user("42", "note", {"text": "hi"})
        for ws in (subscribed, plain):
            frame = ws.wait_for("note")
            assert frame.get("channel") == "#server-to-user-42", frame.raw
            assert frame["data"] == '{"text": "hi"}', frame.raw
        subscribed.assert_silent(0.2, what=lambda e: e["event"] == "note")  # once, not twice
        for ws in (stranger, anonymous):
            ws.assert_silent(0.1, what=lambda e: e["event"] == "note")
    finally:
        for ws in (subscribed, plain, stranger, anonymous):
            ws.close()


def test_terminate_user_connections_via_official_library(pusher_bridge):
    """Note: pusher 3.3.4 sends POST /users/{id}/terminate_connections (no /apps/{id} prefix)."""
    server = start(pusher_bridge)
    first, second, stranger, presence_only = (server.ws() for _ in range(4))
    try:
        first.signin({"id": "42"})
        second.signin({"id": "42"})
        stranger.signin({"id": "43"})
        presence_only.subscribe_ok("presence-room", "42")  # in presence as 42, but not signed in
        assert server.rest().terminate_user_connections("42") == {}
        first.expect_close(4009)
        second.expect_close(4009)
        stranger.assert_open()
        presence_only.assert_open()
    finally:
        for ws in (first, second, stranger, presence_only):
            ws.close()


def test_terminate_user_connections_documented_path(pusher_bridge):
    server = start(pusher_bridge)
    with server.ws() as target, server.ws() as stranger:
        target.signin({"id": "42"})
        stranger.signin({"id": "43"})
        result = server.api().post("/users/42/terminate_connections", {})
        assert result.status == 200 and result.json == {}, result
        target.expect_close(4009)
        stranger.assert_open()


def _watchlist(frame) -> dict[str, list[str]]:
    assert frame["event"] == "pusher_internal:watchlist_events", frame.raw
    assert isinstance(frame["data"], str), f"watchlist_events data must be a string: {frame.raw}"
    parsed = json.loads(frame["data"])
    result: dict[str, list[str]] = {}
    for event in parsed["events"]:
        result.setdefault(event["name"], []).extend(event["user_ids"])
    return result


def test_watchlist_events(pusher_bridge):
    server = start(pusher_bridge)
    watcher, b1, b2, c = (server.ws() for _ in range(4))
    try:
        b1.signin({"id": "b"})
        b2.signin({"id": "b"})
        watcher.signin({"id": "a", "watchlist": ["b", "c"]})
        initial = _watchlist(watcher.recv())  # right after signin_success
        assert initial.get("online") == ["b"], initial
        assert set(initial.get("offline", [])) <= {"c"}, initial
        c.signin({"id": "c"})
        assert _watchlist(watcher.wait_for("pusher_internal:watchlist_events")) == {"online": ["c"]}
        b1.close()  # b still has a connection
        watcher.assert_silent(0.4, what=lambda e: e["event"] == "pusher_internal:watchlist_events")
        b2.close()
        assert _watchlist(watcher.wait_for("pusher_internal:watchlist_events")) == {"offline": ["b"]}
    finally:
        for ws in (watcher, b1, b2, c):
            ws.close()


def test_watchlist_over_100_ids_4302(pusher_bridge):
    server = start(pusher_bridge)
    with server.ws() as ws:
        ws.signin({"id": "a", "watchlist": [f"u{n}" for n in range(150)]})
        ws.expect_error(4302)
        ws.assert_open()


def test_authorized_connections_timeout(pusher_bridge):
    server = start(pusher_bridge, enable_user_authentication=True, user_authentication_timeout=1000)
    began = time.monotonic()
    idle, public, signed, private, presence = (server.ws() for _ in range(5))
    try:
        public.subscribe_ok("room")
        signed.signin({"id": "42"})
        private.subscribe_ok("private-room")
        presence.subscribe_ok("presence-room", "7")
        idle.expect_close(4009, 5)
        assert time.monotonic() - began >= 0.8, "closed before user_authentication_timeout"
        public.expect_close(4009, 5)
        time.sleep(max(0.0, began + 1.5 - time.monotonic()))
        for ws in (signed, private, presence):
            ws.assert_open()
    finally:
        for ws in (idle, public, signed, private, presence):
            ws.close()


def test_no_authorization_timeout_by_default(pusher_bridge):
    server = start(pusher_bridge, user_authentication_timeout=500)
    with server.ws() as ws:
        time.sleep(1.2)
        ws.assert_open()


# ----------------------------------------------------------------------------------------------
# Cache channels
# ----------------------------------------------------------------------------------------------


CACHE_CHANNELS = ["cache-news", "private-cache-news", "presence-cache-news", "private-encrypted-cache-news"]


def _subscribe_any(ws, channel):
    if channel.startswith("presence-"):
        return ws.subscribe_ok(channel, "1")
    return ws.subscribe_ok(channel)


@pytest.mark.parametrize("channel", CACHE_CHANNELS)
def test_cache_miss(pusher_bridge, channel):
    server = start(pusher_bridge)
    with server.ws() as ws:
        _subscribe_any(ws, channel)
        frame = ws.recv()
        assert frame == {"event": "pusher:cache_miss", "channel": channel}, frame.raw


@pytest.mark.parametrize("channel", CACHE_CHANNELS)
def test_cache_replays_last_http_event(pusher_bridge, channel):
    server = start(pusher_bridge)
    api = server.api()
    api.trigger(channel, "first", '{"v":1}')
    api.trigger(channel, "second", '{"v":2}')
    with server.ws() as ws:
        _subscribe_any(ws, channel)
        frame = ws.recv()
        assert frame["event"] == "second" and frame["channel"] == channel, frame.raw
        assert frame["data"] == '{"v":2}', frame.raw
        ws.assert_silent(0.2, what=lambda e: e["event"] in ("first", "second", "pusher:cache_miss"))


def test_client_events_are_not_cached(pusher_bridge):
    server = start(pusher_bridge)
    with server.ws() as sender, server.ws() as other:
        sender.subscribe_ok("private-cache-chat")
        other.subscribe_ok("private-cache-chat")
        sender.client_event("private-cache-chat", "client-x", {"a": 1})
        other.wait_for("client-x", "private-cache-chat")
        with server.ws() as late:
            late.subscribe_ok("private-cache-chat")
            assert late.recv() == {"event": "pusher:cache_miss", "channel": "private-cache-chat"}


def test_cache_ttl_expires(pusher_bridge):
    server = start(pusher_bridge, cache_ttl=1)
    server.api().trigger("cache-news", "old", "x")
    with server.ws() as early:
        early.subscribe_ok("cache-news")
        assert early.recv()["event"] == "old"
    time.sleep(1.6)
    with server.ws() as late:
        late.subscribe_ok("cache-news")
        frame = late.recv()
        assert frame == {"event": "pusher:cache_miss", "channel": "cache-news"}, frame.raw


# ----------------------------------------------------------------------------------------------
# subscription_count
# ----------------------------------------------------------------------------------------------


def _count(frame) -> int:
    assert frame["event"] == "pusher_internal:subscription_count", frame.raw
    assert isinstance(frame["data"], str), frame.raw
    return json.loads(frame["data"])["subscription_count"]


def test_subscription_count_events(pusher_bridge):
    server = start(pusher_bridge, enable_subscription_count=True)
    with server.ws() as first, server.ws() as second:
        first.subscribe_ok("room")
        assert _count(first.wait_for("pusher_internal:subscription_count", "room")) == 1
        second.subscribe_ok("room")
        assert _count(second.wait_for("pusher_internal:subscription_count", "room")) == 2
        assert _count(first.wait_for("pusher_internal:subscription_count", "room")) == 2
        second.send({"event": "pusher:unsubscribe", "data": {"channel": "room"}})
        assert _count(first.wait_for("pusher_internal:subscription_count", "room")) == 1
        second.close()
        first.assert_silent(0.2, what=lambda e: e["event"] == "pusher_internal:subscription_count")


def test_subscription_count_on_disconnect(pusher_bridge):
    server = start(pusher_bridge, enable_subscription_count=True)
    with server.ws() as first:
        first.subscribe_ok("private-room")
        first.wait_for("pusher_internal:subscription_count", "private-room")
        with server.ws() as second:
            second.subscribe_ok("private-room")
            assert _count(first.wait_for("pusher_internal:subscription_count", "private-room")) == 2
        assert _count(first.wait_for("pusher_internal:subscription_count", "private-room")) == 1


def test_subscription_count_is_throttled_above_100_subscribers(pusher_bridge):
    server = start(pusher_bridge, enable_subscription_count=True)
    watcher = server.ws()
    others = []
    try:
        watcher.subscribe_ok("crowd")
        for _ in range(100):
            ws = server.ws()
            ws.subscribe_ok("crowd")
            others.append(ws)
        # Up to 100 subscribers every change is sent at once; the 101st falls in the 5-second
        # window after the last count and is held back, then sent by the once-a-second upkeep.
        deadline = time.monotonic() + 10
        while _count(watcher.wait_for("pusher_internal:subscription_count", "crowd")) != 100:
            assert time.monotonic() < deadline, "count 100 never arrived"
        watcher.assert_silent(1.0, what=lambda e: e["event"] == "pusher_internal:subscription_count")
        held = watcher.wait_for("pusher_internal:subscription_count", "crowd", timeout=8)
        assert _count(held) == 101
    finally:
        for ws in others:
            ws.close()
        watcher.close()


def test_subscription_count_off_by_default(pusher_bridge):
    server = start(pusher_bridge)
    with server.ws() as first, server.ws() as second:
        first.subscribe_ok("room")
        second.subscribe_ok("room")
        for ws in (first, second):
            ws.assert_silent(0.3, what=lambda e: e["event"] == "pusher_internal:subscription_count")


def test_subscription_count_not_sent_for_presence(pusher_bridge):
    server = start(pusher_bridge, enable_subscription_count=True)
    with server.ws() as first, server.ws() as second:
        first.subscribe_ok("presence-room", "1")
        second.subscribe_ok("presence-room", "2")
        for ws in (first, second):
            ws.assert_silent(0.3, what=lambda e: e["event"] == "pusher_internal:subscription_count")


# ----------------------------------------------------------------------------------------------
# Payloads and slow consumers
# ----------------------------------------------------------------------------------------------


def test_http_event_data_arrives_byte_for_byte(pusher_bridge):
    server = start(pusher_bridge)
    data = '{"a":"é\u2028"}'
    with server.ws() as ws:
        ws.subscribe_ok("room")
        server.api().trigger("room", "exact", data)
        frame = ws.wait_for("exact", "room")
        assert frame["data"] == data, frame.raw
        server.rest().trigger("room", "lib", {"b": [1, "ü"]})
        frame = ws.wait_for("lib", "room")
        assert frame["data"] == '{"b": [1, "ü"]}', frame.raw  # the library's json.dumps, verbatim
        server.rest().trigger("room", "plain", "not json at all")
        assert ws.wait_for("plain", "room")["data"] == "not json at all"


def test_http_event_frame_shape(pusher_bridge):
    server = start(pusher_bridge)
    with server.ws() as ws:
        ws.subscribe_ok("room")
        server.rest().trigger("room", "shape", "d")
        frame = ws.wait_for("shape", "room")
        assert dict(frame) == {"event": "shape", "channel": "room", "data": "d"}, frame.raw


def _pusher_raw_connection(port: int, key: str, channel: str) -> Conn:
    """A raw-socket Pusher connection with a tiny receive window, subscribed to `channel`."""
    conn = Conn(port, timeout=5, rcvbuf=4096)
    conn.upgrade(f"/app/{key}?{DEFAULT_QUERY}")
    _, established = conn.read_message()
    assert json.loads(established)["event"] == "pusher:connection_established"
    conn.send_frame(OP_TEXT, json.dumps({"event": "pusher:subscribe", "data": {"channel": channel}}).encode())
    _, succeeded = conn.read_message()
    assert json.loads(succeeded)["event"] == "pusher_internal:subscription_succeeded", succeeded
    return conn


def test_slow_consumer_is_closed_and_memory_stays_bounded(pusher_bridge):
    server = start(pusher_bridge, options={"max-outbound-bytes": 65536})
    slow = _pusher_raw_connection(server.port, "key-1", "flood")
    good = PusherWS(server.port, key="key-1", rest=server.rest(), max_queue=None)
    try:
        good.subscribe_ok("flood")
        api = server.api()
        payload = "x" * 8000
        requests, per_request = 250, 4  # 1,000 × 8 KB ≈ 8 MB towards the slow reader, 32 KB at a time
        for _ in range(requests):
            result = api.batch([{"name": "bulk", "channel": "flood", "data": payload}] * per_request)
            assert result.status == 200, result
        api.trigger("flood", "done", "end")
        rss = server.rss_bytes()
        assert rss < 200 * 1024 * 1024, f"RSS {rss / 1e6:.0f} MB after flooding a slow consumer"

        # The subscriber that reads got everything.
        bulk = 0
        deadline = time.monotonic() + 10
        while True:
            frame = good.recv(max(0.1, deadline - time.monotonic()))
            if frame["event"] == "done":
                break
            if frame["event"] == "bulk":
                assert frame["data"] == payload
                bulk += 1
        assert bulk == requests * per_request, f"good subscriber got {bulk} of {requests * per_request}"

        # The slow one was cut: reading now finds a 4100 close frame or the end of the stream.
        code = None
        deadline = time.monotonic() + 10
        try:
            while True:
                frame = slow.read_frame(max(0.1, deadline - time.monotonic()))
                if frame.opcode == OP_CLOSE:
                    code, _ = parse_close(frame.payload)
                    break
        except SocketClosed:
            code = "eof"
        except TimeoutError:
            pytest.fail("slow consumer still connected after ~8 MB queued for it")
        assert code in (4100, "eof"), f"slow consumer closed with {code}"
        good.assert_open()
    finally:
        slow.close()
        good.close()
