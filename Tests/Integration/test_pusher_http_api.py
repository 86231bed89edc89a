"""The Pusher HTTP API on the same port (shared/PROTOCOL.md §1.15): the official `pusher` library
for the normal calls, and requests signed by our own signer for everything a library won't send."""

from __future__ import annotations

import hashlib
import json
import time

import pusher
import pusher.http
import pytest
from pusher.errors import PusherBadAuth, PusherBadRequest, PusherForbidden

from pusher_helpers import (
    RawAPI,
    make_app,
    sign_params,
    string_to_sign,
)


def start(pusher_bridge, **settings):
    """App 1 with small limits (5 channels, 50-char names, 2 KB data, batches of 3) and
    `settings`; app 2 plain; app 3 disabled."""
    app1 = make_app("1", max_event_name_length=50, max_event_channels_at_once=5,
                    max_event_payload_in_kb=2, max_event_batch_size=3)
    app1.update(settings)
    return pusher_bridge([app1, make_app("2"), make_app("3", enabled=False)])


# ----------------------------------------------------------------------------------------------
# The signer itself (no server)
# ----------------------------------------------------------------------------------------------


def test_signer_matches_documented_vector():
    body = b'{"name":"foo","channels":["project-3"],"data":"{\\"some\\":\\"data\\"}"}'
    assert hashlib.md5(body).hexdigest() == "ec365a775a4cd0599faeb73354201b6f"
    params = sign_params("POST", "/apps/3/events", "278d425bdf160c739803", "7ad3773142a6692b25b8",
                         body, timestamp=1353088179)
    assert string_to_sign("POST", "/apps/3/events", params) == (
        "POST\n/apps/3/events\nauth_key=278d425bdf160c739803&auth_timestamp=1353088179"
        "&auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f")
    assert params["auth_signature"] == "da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c"


def test_signer_agrees_with_official_library(monkeypatch):
    monkeypatch.setattr(pusher.http.time, "time", lambda: 1353088179.0)
    client = pusher.Pusher(app_id="3", key="278d425bdf160c739803", secret="7ad3773142a6692b25b8",
                           host="127.0.0.1", port=1, ssl=False)
    post = client._pusher_client.trigger.make_request(["project-3"], "foo", {"some": "data"})
    key, secret = "278d425bdf160c739803", "7ad3773142a6692b25b8"
    ours = sign_params("POST", "/apps/3/events", key, secret, post.body, timestamp=1353088179)
    assert post.query_params["auth_signature"] == ours["auth_signature"]
    get = client._pusher_client.channels_info.make_request("presence-", ["user_count"])
    ours = sign_params("GET", "/apps/3/channels", key, secret,
                       params={"filter_by_prefix": "presence-", "info": "user_count"},
                       timestamp=1353088179, body_md5=hashlib.md5(b"").hexdigest())
    assert get.query_params["auth_signature"] == ours["auth_signature"]


# ----------------------------------------------------------------------------------------------
# POST /apps/{id}/events
# ----------------------------------------------------------------------------------------------


def test_trigger_with_official_library(pusher_bridge):
    server = start(pusher_bridge)
    with server.ws() as ws:
        ws.subscribe_ok("room")
        assert server.rest().trigger("room", "hello", {"a": 1}) == {}
        frame = ws.wait_for("hello", "room")
        assert frame["data"] == '{"a": 1}'


def test_encrypted_channel_data_passes_through_untouched(pusher_bridge):
    """The official library encrypts for private-encrypted- channels; the subscriber decrypts with
    the shared secret from its auth response (§1.12). The broker sees only ciphertext."""
    import base64

    import nacl.secret

    server = start(pusher_bridge)
    channel = "private-encrypted-vault"
    with server.ws() as ws:
        payload = ws.auth_for(channel)
        ws.subscribe(channel, payload["auth"])
        ws.wait_for_subscription(channel)
        assert server.rest().trigger(channel, "secret", {"pin": "1234"}) == {}
        frame = ws.wait_for("secret", channel)
        sealed = json.loads(frame["data"])
        assert set(sealed) == {"nonce", "ciphertext"}, frame.raw
        box = nacl.secret.SecretBox(base64.b64decode(payload["shared_secret"]))
        plain = box.decrypt(base64.b64decode(sealed["ciphertext"]), base64.b64decode(sealed["nonce"]))
        assert json.loads(plain) == {"pin": "1234"}


def test_trigger_many_channels(pusher_bridge):
    server = start(pusher_bridge)
    channels = ["a", "private-b", "presence-c", "d", "e"]  # exactly the app's limit of 5
    sockets = [server.ws() for _ in channels]
    try:
        for ws, channel in zip(sockets, channels):
            ws.subscribe_ok(channel, "1" if channel.startswith("presence-") else None)
        assert server.rest().trigger(channels, "fan", "out") == {}
        for ws, channel in zip(sockets, channels):
            assert ws.wait_for("fan", channel)["data"] == "out"
            ws.assert_silent(0.1, what=lambda e: e["event"] == "fan")
    finally:
        for ws in sockets:
            ws.close()


def test_trigger_with_single_channel_field(pusher_bridge):
    server = start(pusher_bridge)
    with server.ws() as ws:
        ws.subscribe_ok("room")
        result = server.api().events({"name": "one", "data": "x", "channel": "room"})
        assert result.status == 200 and result.json == {}, result
        assert ws.wait_for("one", "room")["data"] == "x"


def test_trigger_info_counts(pusher_bridge):
    server = start(pusher_bridge, enable_subscription_count=True)
    sockets = [server.ws() for _ in range(5)]
    try:
        sockets[0].subscribe_ok("room")
        sockets[1].subscribe_ok("room")
        sockets[2].subscribe_ok("presence-room", "1")
        sockets[3].subscribe_ok("presence-room", "1")
        sockets[4].subscribe_ok("presence-room", "2")
        result = server.api().events({"name": "ev", "data": "x", "channels": ["room", "presence-room"],
                                      "info": "subscription_count,user_count"})
        assert result.status == 200, result
        channels = result.json["channels"]
        assert channels["room"]["subscription_count"] == 2, result
        assert "user_count" not in channels["room"], result
        assert channels["presence-room"]["user_count"] == 2, result
    finally:
        for ws in sockets:
            ws.close()


def test_trigger_excludes_socket_id(pusher_bridge):
    server = start(pusher_bridge)
    with server.ws() as author, server.ws() as reader:
        author.subscribe_ok("room")
        reader.subscribe_ok("room")
        assert server.rest().trigger("room", "echo", "x", socket_id=author.socket_id) == {}
        reader.wait_for("echo", "room")
        author.assert_silent(0.3, what=lambda e: e["event"] == "echo")


@pytest.mark.parametrize("body", [
    {"data": "x", "channel": "room"},
    {"name": "ev", "channel": "room"},
    {"name": "ev", "data": "x"},
    {"name": "ev", "data": "x", "channels": ["c1", "c2", "c3", "c4", "c5", "c6"]},
    {"name": "pusher:ev", "data": "x", "channel": "room"},
    {"name": "pusher_internal:ev", "data": "x", "channel": "room"},
    {"name": "e" * 51, "data": "x", "channel": "room"},
    {"name": "ev", "data": "x", "channel": "bad channel"},
    {"name": "ev", "data": "x", "channels": ["room", "private-encrypted-room"]},
    {"name": "ev", "data": "x", "channel": "room", "socket_id": "abc"},
    '{"name": "ev", "data": "x", "channel": "room"',
], ids=["no-name", "no-data", "no-channel", "too-many-channels", "pusher-prefix", "internal-prefix",
        "long-name", "bad-channel", "encrypted-multi", "bad-socket-id", "invalid-json"])
def test_trigger_bad_request_400(pusher_bridge, body):
    server = start(pusher_bridge)
    with server.ws() as ws:
        ws.subscribe_ok("room")
        result = server.api().events(body)
        assert result.status == 400, result
        ws.assert_silent(0.1)


def test_trigger_limits_are_inclusive(pusher_bridge):
    server = start(pusher_bridge)
    api = server.api()
    assert api.events({"name": "e" * 50, "data": "x", "channel": "room"}).status == 200
    assert api.events({"name": "ev", "data": "x" * 1900, "channel": "room"}).status == 200
    assert api.events({"name": "ev", "data": "x", "channels": ["c1", "c2", "c3", "c4", "c5"]}).status == 200


def test_trigger_payload_too_large_413(pusher_bridge):
    server = start(pusher_bridge)
    with server.ws() as ws:
        ws.subscribe_ok("room")
        result = server.api().events({"name": "big", "data": "x" * 2500, "channel": "room"})
        assert result.status == 413, result
        with pytest.raises(pusher.errors.PusherBadStatus, match="413"):
            server.rest().trigger("room", "big", "y" * 2500)
        ws.assert_silent(0.1)


def test_trigger_default_payload_limit_is_10_kb(pusher_bridge):
    server = pusher_bridge([make_app("1")])
    api = server.api()
    assert api.events({"name": "ev", "data": "x" * 10000, "channel": "room"}).status == 200
    assert api.events({"name": "ev", "data": "x" * 11000, "channel": "room"}).status == 413


# ----------------------------------------------------------------------------------------------
# Authentication
# ----------------------------------------------------------------------------------------------

EVENT = {"name": "ev", "data": "x", "channel": "room"}


@pytest.mark.parametrize("case", [
    "bad-signature", "unknown-key", "no-auth-key", "no-timestamp", "no-signature", "no-body-md5",
    "old-timestamp", "future-timestamp", "wrong-body-md5", "tampered-body", "other-apps-key",
])
def test_trigger_authentication_401(pusher_bridge, case):
    server = start(pusher_bridge)
    api = server.api()
    now = int(time.time())
    kwargs = {
        "bad-signature": {"secret": "not-the-secret"},
        "unknown-key": {"key": "no-such-key"},
        "no-auth-key": {"drop": ("auth_key",)},
        "no-timestamp": {"drop": ("auth_timestamp",)},
        "no-signature": {"drop": ("auth_signature",)},
        "no-body-md5": {"body_md5": None},
        "old-timestamp": {"timestamp": now - 700},
        "future-timestamp": {"timestamp": now + 700},
        "wrong-body-md5": {"body_md5": hashlib.md5(b"something else").hexdigest()},
        "tampered-body": {"send_body": json.dumps({"name": "ev", "data": "y", "channel": "room"}).encode()},
        "other-apps-key": {"key": "key-2", "secret": "secret-2"},
    }[case]
    with server.ws() as ws:
        ws.subscribe_ok("room")
        result = api.events(EVENT, **kwargs)
        assert result.status == 401, result
        ws.assert_silent(0.1)


def test_timestamp_within_window_is_accepted(pusher_bridge):
    server = start(pusher_bridge)
    api = server.api()
    now = int(time.time())
    assert api.events(EVENT, timestamp=now - 500).status == 200
    assert api.events(EVENT, timestamp=now + 500).status == 200


def test_get_with_bad_signature_401(pusher_bridge):
    server = start(pusher_bridge)
    assert server.api().get("/channels", secret="nope").status == 401
    with pytest.raises(PusherBadAuth):
        server.rest(secret="nope").channels_info()


def test_unknown_app_404(pusher_bridge):
    server = start(pusher_bridge)
    result = RawAPI(server.port, "999", "key-1", "secret-1").events(EVENT)
    assert result.status == 404, result


def test_disabled_app_403(pusher_bridge):
    server = start(pusher_bridge)
    assert server.api(2).events(EVENT).status == 403
    with pytest.raises(PusherForbidden):
        server.rest(2).trigger("room", "ev", "x")


def test_backend_rate_limit_403(pusher_bridge):
    server = pusher_bridge([make_app("1", max_backend_events_per_sec=3)])
    api = server.api()
    statuses = [api.events(EVENT).status for _ in range(10)]
    assert set(statuses) <= {200, 403}, statuses
    assert 403 in statuses, f"10 events at once with a limit of 3/s: {statuses}"
    assert 1 <= statuses.count(200) <= 6, statuses
    time.sleep(1.2)
    assert api.events(EVENT).status == 200, "still refused a second later"


def test_string_and_numeric_app_ids(pusher_bridge):
    server = pusher_bridge([make_app(5), make_app("6")])
    assert server.rest(0).trigger("room", "ev", "x") == {}
    assert server.rest(1).trigger("room", "ev", "x") == {}


def test_keep_alive_session(pusher_bridge):
    server = start(pusher_bridge)
    rest = server.rest()
    with server.ws() as ws:
        ws.subscribe_ok("room")
        for n in range(30):
            assert rest.trigger("room", "n", str(n)) == {}
        for n in range(30):
            assert ws.wait_for("n", "room")["data"] == str(n)


# ----------------------------------------------------------------------------------------------
# POST /apps/{id}/batch_events
# ----------------------------------------------------------------------------------------------


def test_batch_events_with_official_library(pusher_bridge):
    server = start(pusher_bridge)
    with server.ws() as ws:
        ws.subscribe_ok("room")
        ws.subscribe_ok("private-room")
        result = server.rest().trigger_batch([
            {"channel": "room", "name": "one", "data": {"n": 1}},
            {"channel": "private-room", "name": "two", "data": "2"},
            {"channel": "room", "name": "three", "data": "3"},
        ])
        assert result == {}
        assert ws.wait_for("one", "room")["data"] == '{"n": 1}'
        assert ws.wait_for("two", "private-room")["data"] == "2"
        assert ws.wait_for("three", "room")["data"] == "3"


def test_batch_item_socket_id_excludes_that_connection(pusher_bridge):
    server = start(pusher_bridge)
    with server.ws() as author, server.ws() as reader:
        author.subscribe_ok("room")
        reader.subscribe_ok("room")
        result = server.api().batch([
            {"channel": "room", "name": "mine", "data": "1", "socket_id": author.socket_id},
            {"channel": "room", "name": "everyone", "data": "2"},
        ])
        assert result.status == 200, result
        assert reader.wait_for("mine", "room")["data"] == "1"
        assert reader.wait_for("everyone", "room")["data"] == "2"
        assert author.wait_for("everyone", "room")["data"] == "2"
        assert not any(e["event"] == "mine" for e in author.skipped), author.skipped
        author.assert_silent(0.2, what=lambda e: e["event"] == "mine")


def test_batch_too_large_400(pusher_bridge):
    server = start(pusher_bridge)
    with server.ws() as ws:
        ws.subscribe_ok("room")
        items = [{"channel": "room", "name": "ev", "data": str(n)} for n in range(4)]
        assert server.api().batch(items).status == 400
        ws.assert_silent(0.1)


def test_default_batch_limit_is_10(pusher_bridge):
    server = pusher_bridge([make_app("1")])
    api = server.api()
    assert api.batch([{"channel": "room", "name": "ev", "data": "x"}] * 10).status == 200
    assert api.batch([{"channel": "room", "name": "ev", "data": "x"}] * 11).status == 400


@pytest.mark.parametrize("item", [
    {"channels": ["room"], "name": "ev", "data": "x"},
    {"channel": "room", "data": "x"},
    {"channel": "room", "name": "pusher:ev", "data": "x"},
], ids=["channels-array", "no-name", "pusher-prefix"])
def test_batch_bad_item_400(pusher_bridge, item):
    server = start(pusher_bridge)
    result = server.api().batch([{"channel": "room", "name": "ok", "data": "x"}, item])
    assert result.status == 400, result


def test_batch_item_too_large_413(pusher_bridge):
    server = start(pusher_bridge)
    result = server.api().batch([{"channel": "room", "name": "big", "data": "x" * 2500}])
    assert result.status == 413, result


def test_batch_info(pusher_bridge):
    server = start(pusher_bridge, enable_subscription_count=True)
    sockets = [server.ws() for _ in range(3)]
    try:
        sockets[0].subscribe_ok("room")
        sockets[1].subscribe_ok("room")
        sockets[2].subscribe_ok("presence-room", "9")
        result = server.api().batch([
            {"channel": "room", "name": "a", "data": "1", "info": "subscription_count"},
            {"channel": "room", "name": "b", "data": "2"},
            {"channel": "presence-room", "name": "c", "data": "3", "info": "user_count"},
        ])
        assert result.status == 200, result
        assert result.json == {"batch": [{"subscription_count": 2}, {}, {"user_count": 1}]}, result
    finally:
        for ws in sockets:
            ws.close()


# ----------------------------------------------------------------------------------------------
# GET /apps/{id}/channels, /channels/{name}, /channels/{name}/users
# ----------------------------------------------------------------------------------------------


def test_channels_lists_occupied_channels(pusher_bridge):
    server = start(pusher_bridge)
    rest = server.rest()
    assert rest.channels_info() == {"channels": {}}
    with server.ws() as one, server.ws() as two:
        one.subscribe_ok("room")
        one.subscribe_ok("private-x")
        two.subscribe_ok("presence-y", "1")
        assert rest.channels_info() == {"channels": {"room": {}, "private-x": {}, "presence-y": {}}}
        assert rest.channels_info(prefix_filter="private-") == {"channels": {"private-x": {}}}
        one.send({"event": "pusher:unsubscribe", "data": {"channel": "room"}})
        one.assert_open()
        assert rest.channels_info() == {"channels": {"private-x": {}, "presence-y": {}}}
    # Everyone gone: no channels (closing is asynchronous on the server).
    deadline = time.monotonic() + 5
    while rest.channels_info() != {"channels": {}} and time.monotonic() < deadline:
        time.sleep(0.05)
    assert rest.channels_info() == {"channels": {}}


def test_channels_user_count_for_presence(pusher_bridge):
    server = start(pusher_bridge)
    sockets = [server.ws() for _ in range(4)]
    try:
        sockets[0].subscribe_ok("presence-x", "1")
        sockets[1].subscribe_ok("presence-x", "1")
        sockets[2].subscribe_ok("presence-x", "2")
        sockets[3].subscribe_ok("presence-y", "3")
        sockets[3].subscribe_ok("room")
        result = server.rest().channels_info(prefix_filter="presence-", attributes=["user_count"])
        assert result == {"channels": {"presence-x": {"user_count": 2}, "presence-y": {"user_count": 1}}}
    finally:
        for ws in sockets:
            ws.close()


@pytest.mark.parametrize("prefix", [None, "private-"])
def test_channels_user_count_needs_presence_prefix_400(pusher_bridge, prefix):
    server = start(pusher_bridge)
    with pytest.raises(PusherBadRequest):
        server.rest().channels_info(prefix_filter=prefix, attributes=["user_count"])


def test_query_values_are_percent_decoded_before_signing(pusher_bridge):
    server = start(pusher_bridge)
    with server.ws() as ws:
        ws.subscribe_ok("presence-x", "1")
        everything = lambda value: "".join(f"%{byte:02X}" for byte in value.encode())  # noqa: E731
        result = server.api().get("/channels", {"filter_by_prefix": "presence-", "info": "user_count"},
                                  encode=everything)
        assert result.status == 200, result
        assert result.json == {"channels": {"presence-x": {"user_count": 1}}}


def test_channel_info(pusher_bridge):
    server = start(pusher_bridge, enable_subscription_count=True)
    rest = server.rest()
    assert rest.channel_info("room") == {"occupied": False}
    with server.ws() as one, server.ws() as two, server.ws() as three:
        one.subscribe_ok("room")
        two.subscribe_ok("room")
        assert rest.channel_info("room") == {"occupied": True}
        assert rest.channel_info("room", ["subscription_count"]) == {"occupied": True, "subscription_count": 2}
        one.subscribe_ok("presence-x", "1")
        two.subscribe_ok("presence-x", "1")
        three.subscribe_ok("presence-x", "2")
        assert rest.channel_info("presence-x", ["user_count"]) == {"occupied": True, "user_count": 2}


def test_channel_info_user_count_on_non_presence_400(pusher_bridge):
    server = start(pusher_bridge)
    with pytest.raises(PusherBadRequest):
        server.rest().channel_info("room", ["user_count"])


def test_channel_info_cache(pusher_bridge):
    server = start(pusher_bridge, enable_subscription_count=True)
    api = server.api()
    api.trigger("cache-news", "latest", '{"v":3}')
    result = api.get("/channels/cache-news", {"info": "cache"})
    assert result.status == 200, result
    info = result.json
    assert info["occupied"] is False, info
    assert info["cache"]["data"] == '{"v":3}', info
    assert 0 < info["cache"]["ttl"] <= 1800, info
    # A comma in `info`, percent-encoded on the wire and literal in the signed string.
    result = api.get("/channels/cache-news", {"info": "subscription_count,cache"})
    assert result.status == 200, result
    assert result.json["cache"]["data"] == '{"v":3}', result


def test_users_of_presence_channel(pusher_bridge):
    server = start(pusher_bridge)
    sockets = [server.ws() for _ in range(3)]
    try:
        sockets[0].subscribe_ok("presence-x", "1")
        sockets[1].subscribe_ok("presence-x", 1)  # the same user, numeric in channel_data
        sockets[2].subscribe_ok("presence-x", "2")
        users = server.rest().users_info("presence-x")["users"]
        assert sorted(users, key=lambda user: user["id"]) == [{"id": "1"}, {"id": "2"}], users
    finally:
        for ws in sockets:
            ws.close()


def test_users_of_non_presence_channel_400(pusher_bridge):
    server = start(pusher_bridge)
    with pytest.raises(PusherBadRequest):
        server.rest().users_info("private-x")


# ----------------------------------------------------------------------------------------------
# POST /apps/{id}/users/{user_id}/terminate_connections
# ----------------------------------------------------------------------------------------------


def test_terminate_connections_returns_empty_object(pusher_bridge):
    server = start(pusher_bridge)
    result = server.api().post("/users/nobody/terminate_connections", {})
    assert result.status == 200 and result.json == {}, result


def test_terminate_connections_needs_signature(pusher_bridge):
    server = start(pusher_bridge)
    with server.ws() as ws:
        ws.signin({"id": "42"})
        result = server.api().post("/users/42/terminate_connections", {}, secret="wrong")
        assert result.status == 401, result
        ws.assert_open()


def test_send_to_user_with_official_library(pusher_bridge):
    server = start(pusher_bridge)
    with server.ws() as ws, server.ws() as other:
        ws.signin({"id": "u1"})
        other.signin({"id": "u2"})
        assert server.rest().send_to_user("u1", "private-note", {"x": 1}) == {}
        assert ws.wait_for("private-note")["data"] == '{"x": 1}'
        other.assert_silent(0.2, what=lambda e: e["event"] == "private-note")
