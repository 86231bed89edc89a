"""The seed API (issue 5 contract, "Seed API" and "Seed mode on the WebSocket").

POST /api/sessions trades an organization's secret token for a JWT; the event endpoint publishes
with that JWT, in the exact request shape of the seed article (jQuery's form-encoded $.ajax with
`Authorization: Bearer`); a WebSocket opened with ?jwt= triggers any event on its channels and
joins private and presence channels without `auth`. Every refusal has its own test."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pusher
import pytest

from websockets.exceptions import ConnectionClosed

from conftest import Conn, http_request
from pusher_helpers import connect_error
from seed_helpers import (
    JWT_SECRET,
    decode_jwt,
    event_path,
    expect_error,
    expect_json,
    flip_signature,
    restart,
    seed_query,
    seeded,
    sign_jwt,
    unsigned_jwt,
    verifies,
    wait_until,
    with_claims,
)
from webhook_receiver import WebhookReceiver

MESSAGE = {"name": "Ann", "message": "olá & tchau + 1"}


# ----------------------------------------------------------------------------------------------
# POST /api/sessions
# ----------------------------------------------------------------------------------------------


def test_session_returns_a_jwt_with_the_contracts_header_and_claims(seed_bridge):
    server = seed_bridge("--jwt-ttl", "600")
    org = server.create_org("acme-inc")
    before = int(time.time())
    doc = expect_json(server.session(org["secret_token"]), 200)
    after = int(time.time())
    assert set(doc) == {"jwt", "organization", "expires_at"}, doc
    assert doc["organization"] == "acme-inc", doc
    header, claims, signature = decode_jwt(doc["jwt"])
    assert header == {"alg": "HS256", "typ": "JWT"}, header
    assert set(claims) == {"iss", "org", "epoch", "gen", "iat", "exp"}, claims
    assert claims["iss"] == "bridge" and claims["org"] == "acme-inc", claims
    assert isinstance(claims["epoch"], str) and len(claims["epoch"]) == 32, claims
    assert isinstance(claims["gen"], int), claims
    assert isinstance(claims["iat"], int) and before - 1 <= claims["iat"] <= after + 1, claims
    assert claims["exp"] == claims["iat"] + 600, claims
    assert doc["expires_at"] == claims["exp"], doc
    assert len(signature) == 32, "HS256 signatures are 32 bytes"


def test_session_default_ttl_is_one_day(seed_bridge):
    server = seed_bridge()
    org = server.create_org("acme-inc")
    _, claims, _ = decode_jwt(server.jwt(org))
    assert claims["exp"] - claims["iat"] == 86400, claims


def test_session_accepts_a_json_body(seed_bridge):
    server = seed_bridge()
    org = server.create_org("acme-inc")
    doc = expect_json(server.session(org["secret_token"], as_json=True), 200)
    assert doc["organization"] == "acme-inc"
    assert decode_jwt(doc["jwt"])[1]["org"] == "acme-inc"


def test_session_is_per_organization(seed_bridge):
    server = seed_bridge()
    acme, beta = server.create_org("acme-inc"), server.create_org("beta")
    assert decode_jwt(server.jwt(acme))[1]["org"] == "acme-inc"
    assert decode_jwt(server.jwt(beta))[1]["org"] == "beta"


@pytest.mark.parametrize("as_json", [False, True], ids=["form", "json"])
@pytest.mark.parametrize("token", ["wrong", "missing", "empty", "other-case", "prefix"])
def test_session_wrong_or_missing_token_401(seed_bridge, token, as_json):
    server = seed_bridge()
    org = server.create_org("acme-inc")
    real = org["secret_token"]
    sent = {"wrong": "0" * 40, "missing": None, "empty": "", "other-case": real.upper(),
            "prefix": real[:39]}[token]
    expect_error(server.session(sent, as_json=as_json), 401)


def test_session_without_a_body_401(seed_bridge):
    server = seed_bridge()
    server.create_org("acme-inc")
    expect_error(server.request("POST", "/api/sessions"), 401)


def test_session_jwt_ttl_is_enforced(seed_bridge):
    s = seeded(seed_bridge, "--jwt-ttl", "2")
    assert s.publish("ping", {"a": "1"}).status == 200
    # Expired two to three seconds after it was issued (exp = iat + 2, whole seconds).
    result = wait_until(lambda: (r := s.publish("ping", {"a": "1"})).status == 401 and r, 5,
                        what="a 2-second JWT expiring")
    expect_error(result, 401)


def test_jwt_key_persists_in_the_data_dir_across_a_restart(seed_bridge):
    s = seeded(seed_bridge)
    key_file = s.server.data_dir / "jwt.key"
    assert key_file.is_file() and key_file.stat().st_size > 0, "no <data-dir>/jwt.key"
    content = key_file.read_bytes()
    again = restart(s.server, seed_bridge)
    assert key_file.read_bytes() == content, "jwt.key was rewritten on restart"
    with again.ws(s.app) as ws:
        ws.subscribe_ok("general")
        result = again.publish(s.slug, s.app["key"], "new_message", MESSAGE, s.jwt)
        assert expect_json(result, 200) == {"channel": "general", "event": "new_message"}
        assert json.loads(ws.wait_for("new_message", "general")["data"]) == MESSAGE


@pytest.mark.parametrize("source", ["flag", "env"])
def test_jwt_secret_overrides_the_key_file(seed_bridge, source):
    s = seeded(seed_bridge)
    before = s.jwt  # signed with the generated <data-dir>/jwt.key
    if source == "flag":
        again = restart(s.server, seed_bridge, "--jwt-secret", JWT_SECRET)
    else:
        again = restart(s.server, seed_bridge, env={"BRIDGE_JWT_SECRET": JWT_SECRET})
    fresh = again.jwt(s.org)
    assert verifies(fresh, JWT_SECRET), "JWT not signed with --jwt-secret / BRIDGE_JWT_SECRET"
    assert not verifies(before, JWT_SECRET)
    assert again.publish(s.slug, s.app["key"], "ev", {"a": "1"}, fresh).status == 200
    expect_error(again.publish(s.slug, s.app["key"], "ev", {"a": "1"}, before), 401)


# ----------------------------------------------------------------------------------------------
# POST /api/organizations/:org/applications/:app_key/event/:event — delivery
# ----------------------------------------------------------------------------------------------


def test_article_request_reaches_a_subscriber_of_general(seed_bridge):
    s = seeded(seed_bridge)
    # The article's page: a seed-mode client with uniqueUserId "robot" on "general", and a plain
    # Pusher client beside it.
    with s.ws(s.jwt, "robot") as page, s.ws() as plain:
        page.subscribe_ok("general")
        plain.subscribe_ok("general")
        # jQuery's $.ajax({type: "POST", headers: {Authorization: "Bearer " + jwt}, data: payload}).
        body = b"name=Ann&message=ol%C3%A1+%26+tchau+%2B+1"
        result = s.server.request("POST", event_path(s.slug, s.app["key"], "new_message"), body, {
            "Authorization": f"Bearer {s.jwt}",
            "Content-Type": "application/x-www-form-urlencoded; charset=UTF-8",
            "Origin": "http://rails.example",
            "Accept": "*/*",
        })
        assert expect_json(result, 200) == {"channel": "general", "event": "new_message"}
        for ws in (page, plain):
            frame = ws.wait_for("new_message", "general")
            assert isinstance(frame["data"], str), f"data must be a JSON-encoded string: {frame.raw}"
            assert json.loads(frame["data"]) == MESSAGE, frame.raw


def test_channel_field_picks_the_channel(seed_bridge):
    s = seeded(seed_bridge)
    with s.ws() as general, s.ws() as room:
        general.subscribe_ok("general")
        room.subscribe_ok("room-2")
        result = s.publish("new_message", {"channel": "room-2", **MESSAGE})
        assert expect_json(result, 200) == {"channel": "room-2", "event": "new_message"}
        frame = room.wait_for("new_message", "room-2")
        assert json.loads(frame["data"]) == MESSAGE, f"`channel` must not be in the data: {frame.raw}"
        general.assert_silent(0.2, what=lambda e: e["event"] == "new_message")


def test_json_body(seed_bridge):
    s = seeded(seed_bridge)
    with s.ws() as ws:
        ws.subscribe_ok("general")
        ws.subscribe_ok("private-room")
        fields = {"name": "Bob", "count": 3, "tags": ["a", "b"], "nested": {"ok": True}}
        result = s.publish("new_message", {"channel": "private-room", **fields}, as_json=True)
        assert expect_json(result, 200) == {"channel": "private-room", "event": "new_message"}
        frame = ws.wait_for("new_message", "private-room")
        assert isinstance(frame["data"], str), frame.raw
        assert json.loads(frame["data"]) == fields, frame.raw
        result = s.publish("other", MESSAGE, as_json=True)
        assert expect_json(result, 200) == {"channel": "general", "event": "other"}
        assert json.loads(ws.wait_for("other", "general")["data"]) == MESSAGE


def test_socket_id_field_excludes_that_connection(seed_bridge):
    s = seeded(seed_bridge)
    with s.ws(s.jwt, "ann") as ann, s.ws(s.jwt, "bob") as bob:
        ann.subscribe_ok("general")
        bob.subscribe_ok("general")
        result = s.publish("new_message", {"socket_id": ann.socket_id, **MESSAGE})
        assert expect_json(result, 200) == {"channel": "general", "event": "new_message"}
        frame = bob.wait_for("new_message", "general")
        assert json.loads(frame["data"]) == MESSAGE, f"`socket_id` must not be in the data: {frame.raw}"
        ann.assert_silent(0.2, what=lambda e: e["event"] == "new_message")


def test_default_channel_set_at_create(seed_bridge):
    server = seed_bridge()
    org = server.create_org("acme-inc")
    app = server.create_app("acme-inc", "chat", default_channel="lobby")
    assert app["default_channel"] == "lobby", app
    jwt = server.jwt(org)
    with server.ws(app) as lobby, server.ws(app) as general:
        lobby.subscribe_ok("lobby")
        general.subscribe_ok("general")
        result = server.publish("acme-inc", app["key"], "new_message", MESSAGE, jwt)
        assert expect_json(result, 200) == {"channel": "lobby", "event": "new_message"}
        assert json.loads(lobby.wait_for("new_message", "lobby")["data"]) == MESSAGE
        general.assert_silent(0.2, what=lambda e: e["event"] == "new_message")


def test_official_library_client_and_seed_api_share_the_app(seed_bridge):
    s = seeded(seed_bridge)
    with s.ws() as ws:
        ws.subscribe_ok("general")
        s.server.rest(s.app).trigger("general", "from-library", {"x": 1})
        assert json.loads(ws.wait_for("from-library", "general")["data"]) == {"x": 1}
        assert s.publish("from-seed", {"x": "2"}).status == 200
        assert json.loads(ws.wait_for("from-seed", "general")["data"]) == {"x": "2"}


# ----------------------------------------------------------------------------------------------
# The event endpoint — 401
# ----------------------------------------------------------------------------------------------


def forged(s, case: str) -> str | None:
    """The Authorization header value for a 401 case (None: no header). Servers run with
    --jwt-secret so that tokens can be signed with the server's own key."""
    header, claims, _ = decode_jwt(s.jwt)
    now = int(time.time())
    fresh = {**claims, "iat": now, "exp": now + 600}
    bearer = {
        "garbage": "not-a-jwt",
        "empty": "",
        "two-segments": s.jwt.rpartition(".")[0],
        "four-segments": s.jwt + ".AAAA",
        "bad-base64": "%%%." + s.jwt.split(".", 1)[1],
        "tampered-payload": with_claims(s.jwt, exp=claims["exp"] + 3600),
        "tampered-org": with_claims(s.jwt, org="beta"),
        "bad-signature": flip_signature(s.jwt),
        "no-signature": s.jwt.rpartition(".")[0] + ".",
        "alg-none": unsigned_jwt(fresh),
        "alg-none-signed": sign_jwt(fresh, JWT_SECRET, {"alg": "none", "typ": "JWT"}),
        "alg-hs512": sign_jwt(fresh, JWT_SECRET, {"alg": "HS512", "typ": "JWT"}, hashlib.sha512),
        "other-key": sign_jwt(fresh, "some-other-key"),
        "expired": sign_jwt({**claims, "iat": now - 100, "exp": now - 10}, JWT_SECRET),
        "wrong-gen": sign_jwt({**fresh, "gen": claims["gen"] + 1}, JWT_SECRET),
    }
    if case == "missing":
        return None
    if case == "not-bearer":
        return f"Basic {s.jwt}"
    if case == "bare-token":
        return s.jwt
    return f"Bearer {bearer[case]}"


UNAUTHORIZED = ["missing", "not-bearer", "bare-token", "garbage", "empty", "two-segments",
                "four-segments", "bad-base64", "tampered-payload", "tampered-org", "bad-signature",
                "no-signature", "alg-none", "alg-none-signed", "alg-hs512", "other-key", "expired",
                "wrong-gen"]


@pytest.mark.parametrize("case", UNAUTHORIZED)
def test_event_unauthorized_401(seed_bridge, case):
    s = seeded(seed_bridge, "--jwt-secret", JWT_SECRET)
    with s.ws() as ws:
        ws.subscribe_ok("general")
        result = s.server.publish(s.slug, s.app["key"], "new_message", MESSAGE,
                                  authorization=forged(s, case))
        expect_error(result, 401)
        ws.assert_silent(0.1, what=lambda e: e["event"] == "new_message")


def test_forged_jwt_with_the_servers_key_is_accepted(seed_bridge):
    # The control for the forgeries above: the same builder, right key, fresh claims → 200.
    s = seeded(seed_bridge, "--jwt-secret", JWT_SECRET)
    _, claims, _ = decode_jwt(s.jwt)
    now = int(time.time())
    token = sign_jwt({**claims, "iat": now, "exp": now + 600}, JWT_SECRET)
    assert s.publish("ev", {"a": "1"}, jwt=token).status == 200


def test_event_after_rotate_token_401(seed_bridge):
    s = seeded(seed_bridge)
    assert s.publish("ev", {"a": "1"}).status == 200
    rotated = expect_json(s.server.admin("POST", f"/organizations/{s.slug}/rotate-token"), 200)
    assert rotated["secret_token"] != s.org["secret_token"]
    expect_error(s.publish("ev", {"a": "1"}), 401)
    expect_error(s.server.session(s.org["secret_token"]), 401)
    fresh = s.server.jwt(rotated)
    assert s.publish("ev", {"a": "1"}, jwt=fresh).status == 200


def test_jwt_of_a_deleted_organization_is_refused_by_a_new_one_of_the_same_slug(seed_bridge):
    # Issue 13: the generation restarted at 1, so the old JWT published into the new tenant's app
    # and opened seed-mode sockets on it. Its epoch names the deleted organization only.
    s = seeded(seed_bridge)
    expect_json(s.server.admin("DELETE", f"/organizations/{s.slug}"), 200)
    reborn = s.server.create_org(s.slug)
    app = s.server.create_app(s.slug, "chat")
    with s.server.ws(app) as ws:
        ws.subscribe_ok("general")
        expect_error(s.server.publish(s.slug, app["key"], "new_message", MESSAGE, jwt=s.jwt), 401)
        connect_error(s.server.port, f"{app['key']}?{seed_query(s.jwt, 'robot')}", 4009)
        ws.assert_silent(0.1, what=lambda e: e["event"] == "new_message")
        fresh = s.server.jwt(reborn)
        assert decode_jwt(fresh)[1]["gen"] > decode_jwt(s.jwt)[1]["gen"]
        assert s.server.publish(s.slug, app["key"], "new_message", MESSAGE, jwt=fresh).status == 200
        assert json.loads(ws.wait_for("new_message", "general")["data"]) == MESSAGE


# ----------------------------------------------------------------------------------------------
# The event endpoint — 403, 404
# ----------------------------------------------------------------------------------------------


def test_event_jwt_of_another_org_403(seed_bridge):
    s = seeded(seed_bridge)
    beta = s.server.create_org("beta")
    with s.ws() as ws:
        ws.subscribe_ok("general")
        expect_error(s.publish("new_message", MESSAGE, jwt=s.server.jwt(beta)), 403)
        ws.assert_silent(0.1, what=lambda e: e["event"] == "new_message")


def test_event_unknown_org_404(seed_bridge):
    s = seeded(seed_bridge)
    expect_error(s.server.publish("no-such-org", s.app["key"], "ev", MESSAGE, s.jwt), 404)


def test_event_unknown_app_key_404(seed_bridge):
    s = seeded(seed_bridge)
    expect_error(s.server.publish(s.slug, "0" * 20, "ev", MESSAGE, s.jwt), 404)


def test_event_app_of_another_org_under_this_orgs_path_404(seed_bridge):
    s = seeded(seed_bridge)
    s.server.create_org("beta")
    beta_app = s.server.create_app("beta", "theirs")
    with s.server.ws(beta_app) as ws:
        ws.subscribe_ok("general")
        expect_error(s.server.publish(s.slug, beta_app["key"], "new_message", MESSAGE, s.jwt), 404)
        ws.assert_silent(0.1, what=lambda e: e["event"] == "new_message")


def test_event_config_file_app_is_not_in_any_org_404(seed_bridge):
    from pusher_helpers import make_app

    server = seed_bridge(apps=[make_app("7")])
    org = server.create_org("acme-inc")
    expect_error(server.publish("acme-inc", "key-7", "ev", MESSAGE, server.jwt(org)), 404)


# ----------------------------------------------------------------------------------------------
# The event endpoint — 413, 400
# ----------------------------------------------------------------------------------------------


def test_event_body_over_the_limit_413(seed_bridge):
    s = seeded(seed_bridge)
    # A declared body far over any request body limit: refused without reading it.
    with Conn(s.server.port) as conn:
        conn.send(http_request("POST", event_path(s.slug, s.app["key"], "ev"), [
            ("Authorization", f"Bearer {s.jwt}"),
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Content-Length", str(64 << 20)),
        ]))
        response = conn.read_response()
        assert response.status == 413, response.head


def test_each_seed_route_has_its_own_body_limit(seed_bridge):
    """/api/sessions takes 4 KiB, the event endpoint 256 KiB, the admin API 64 KiB: one byte more is 413."""
    s = seeded(seed_bridge)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    assert s.server.request("POST", "/api/sessions", b"token=" + b"x" * (4096 - 6), form).status == 401
    assert s.server.request("POST", "/api/sessions", b"token=" + b"x" * (4097 - 6), form).status == 413
    bearer = {**form, "Authorization": f"Bearer {s.jwt}"}
    path = event_path(s.slug, s.app["key"], "ev")
    # At the limit the body is read, and its data is then over the app's 10 KB payload limit: 400.
    assert s.server.request("POST", path, b"m=" + b"x" * ((256 << 10) - 2), bearer).status == 400
    assert s.server.request("POST", path, b"m=" + b"x" * ((256 << 10) - 1), bearer).status == 413
    big = json.dumps({"slug": "globex", "name": "x" * (64 << 10)}).encode()
    assert s.server.admin("POST", "/organizations", raw=big).status == 413


# Names as the HTTP API takes them: up to 200 characters (a longer app limit raises it).
@pytest.mark.parametrize("channel", ["bad channel", "bad*chars", "x" * 201, "private-encrypted-x",
                                     "#server-to-user-1"],
                         ids=["space", "star", "too-long", "encrypted", "server-to-user"])
def test_event_bad_channel_name_400(seed_bridge, channel):
    s = seeded(seed_bridge)
    expect_error(s.publish("ev", {"channel": channel, **MESSAGE}), 400)


def test_event_name_length_is_the_apps_setting(seed_bridge):
    s = seeded(seed_bridge, max_event_name_length=20)
    assert s.publish("e" * 20, MESSAGE).status == 200
    expect_error(s.publish("e" * 21, MESSAGE), 400)


def test_event_name_too_long_by_default_400(seed_bridge):
    s = seeded(seed_bridge)
    expect_error(s.publish("e" * 201, MESSAGE), 400)


def test_event_payload_over_the_apps_limit_400(seed_bridge):
    s = seeded(seed_bridge, max_event_payload_in_kb=1)
    with s.ws() as ws:
        ws.subscribe_ok("general")
        assert s.publish("small", {"message": "x" * 900}).status == 200
        ws.wait_for("small", "general")
        expect_error(s.publish("big", {"message": "x" * 1100}), 400)
        expect_error(s.publish("big", {"message": "x" * 1100}, as_json=True), 400)
        ws.assert_silent(0.1, what=lambda e: e["event"] == "big")


@pytest.mark.parametrize("raw,as_json", [
    (b'{"name": "Ann", ', True),
    (b'["name", "Ann"]', True),
    (b'"just a string"', True),
    (b'{"channel": 5, "name": "Ann"}', True),
], ids=["truncated-json", "json-array", "json-string", "channel-not-a-string"])
def test_event_bad_body_400(seed_bridge, raw, as_json):
    s = seeded(seed_bridge)
    expect_error(s.publish("ev", raw=raw, as_json=as_json), 400)


# ----------------------------------------------------------------------------------------------
# CORS
# ----------------------------------------------------------------------------------------------


def test_cors_preflight_with_authorization_from_another_origin(seed_bridge):
    s = seeded(seed_bridge)
    origin = "http://rails.example:3000"
    with Conn(s.server.port) as conn:
        conn.send(http_request("OPTIONS", event_path(s.slug, s.app["key"], "new_message"), [
            ("Origin", origin),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "authorization,content-type"),
        ]))
        response = conn.read_response()
        assert response.status == 204, response.head
        assert response.header("Access-Control-Allow-Origin") in ("*", origin), response.head
        assert response.has_token("Access-Control-Allow-Methods", "POST"), response.head
        # A "*" in Allow-Headers never covers Authorization (Fetch standard): it must be named.
        assert response.has_token("Access-Control-Allow-Headers", "authorization"), response.head
        assert response.has_token("Access-Control-Allow-Headers", "content-type"), response.head


@pytest.mark.parametrize("outcome", ["200", "401"])
def test_cors_actual_response_carries_allow_origin(seed_bridge, outcome):
    s = seeded(seed_bridge)
    origin = "http://rails.example:3000"
    result = s.publish("new_message", MESSAGE, jwt=s.jwt if outcome == "200" else "garbage",
                       headers={"Origin": origin})
    assert result.status == int(outcome), result
    assert result.header("Access-Control-Allow-Origin") in ("*", origin), result.headers


# ----------------------------------------------------------------------------------------------
# Seed mode on the WebSocket
# ----------------------------------------------------------------------------------------------


def seed_subscribe(ws, channel: str, channel_data: str | None = None) -> dict:
    """Subscribe WITHOUT auth (seed mode) and return the parsed subscription data."""
    ws.subscribe(channel, channel_data=channel_data)
    return ws.wait_for_subscription(channel).data_json()


def test_seed_connection_is_established(seed_bridge):
    s = seeded(seed_bridge)
    with s.ws(s.jwt, "robot") as ws:
        ws.assert_open()
    with s.ws(s.jwt) as ws:  # user_id is optional
        ws.assert_open()


def test_seed_trigger_reaches_other_subscribers_and_the_sender(seed_bridge):
    s = seeded(seed_bridge)
    with s.ws(s.jwt, "ann") as ann, s.ws(s.jwt, "bob") as bob, s.ws() as plain:
        for ws in (ann, bob, plain):
            ws.subscribe_ok("general")
        data_text = '{"name":"Ann", "message": "hi é\\n", "n": [1, 2.5, null]}'
        ann.send('{"event":"new_message","channel":"general","data":%s}' % data_text)
        for ws in (bob, plain, ann):
            frame = ws.wait_for("new_message", "general")
            assert frame["data"] == json.loads(data_text), frame.raw
            assert data_text in frame.raw, f"data not passed through byte for byte: {frame.raw}"
        ann.assert_silent(0.2, what=lambda e: e["event"] == "new_message")  # exactly once


def test_seed_trigger_with_string_data(seed_bridge):
    s = seeded(seed_bridge)
    with s.ws(s.jwt, "ann") as ann, s.ws(s.jwt, "bob") as bob:
        ann.subscribe_ok("general")
        bob.subscribe_ok("general")
        ann.client_event("general", "note", "just a string")
        assert bob.wait_for("note", "general")["data"] == "just a string"
        assert ann.wait_for("note", "general")["data"] == "just a string"


def test_seed_trigger_on_private_and_presence_channels(seed_bridge):
    s = seeded(seed_bridge)
    with s.ws(s.jwt, "ann") as ann, s.ws(s.jwt, "bob") as bob:
        for channel in ("private-room", "presence-room"):
            seed_subscribe(ann, channel)
            seed_subscribe(bob, channel)
            ann.client_event(channel, "new_message", MESSAGE)
            assert bob.wait_for("new_message", channel)["data"] == MESSAGE
            assert ann.wait_for("new_message", channel)["data"] == MESSAGE


def test_seed_trigger_needs_a_subscription_to_that_channel(seed_bridge):
    s = seeded(seed_bridge)
    with s.ws(s.jwt, "ann") as ann, s.ws() as bob:
        bob.subscribe_ok("general")
        ann.client_event("general", "new_message", MESSAGE)  # ann is not subscribed
        bob.assert_silent(0.3, what=lambda e: e["event"] == "new_message")
        ann.assert_silent(0.1, what=lambda e: e["event"] == "new_message")


@pytest.mark.parametrize("event", ["pusher:new_message", "pusher_internal:member_added"])
def test_seed_trigger_of_reserved_names_is_not_broadcast(seed_bridge, event):
    s = seeded(seed_bridge)
    with s.ws(s.jwt, "ann") as ann, s.ws() as bob:
        ann.subscribe_ok("general")
        bob.subscribe_ok("general")
        ann.client_event("general", event, {"user_id": "mallory"})
        bob.assert_silent(0.3, what=lambda e: e["event"] == event)


def test_seed_client_events_keep_the_pusher_rules(seed_bridge):
    s = seeded(seed_bridge)
    with s.ws(s.jwt, "ann") as ann, s.ws(s.jwt, "bob") as bob:
        ann.subscribe_ok("general")
        bob.subscribe_ok("general")
        ann.client_event("general", "client-typing", {"a": 1})  # client-* on a public channel
        ann.expect_error(4301)
        bob.assert_silent(0.2, what=lambda e: e["event"] == "client-typing")
        seed_subscribe(ann, "private-room")
        seed_subscribe(bob, "private-room")
        ann.client_event("private-room", "client-typing", {"a": 2})
        assert bob.wait_for("client-typing", "private-room")["data"] == {"a": 2}
        ann.assert_silent(0.2, what=lambda e: e["event"] == "client-typing")  # not echoed


def test_seed_trigger_payload_limit_is_the_client_event_limit(seed_bridge):
    s = seeded(seed_bridge, max_event_payload_in_kb=1)
    with s.ws(s.jwt, "ann") as ann, s.ws() as bob:
        ann.subscribe_ok("general")
        bob.subscribe_ok("general")
        ann.client_event("general", "big", {"blob": "x" * 2000})
        ann.expect_error(4301)
        bob.assert_silent(0.2, what=lambda e: e["event"] == "big")
        ann.client_event("general", "small", {"blob": "x" * 100})
        bob.wait_for("small", "general")


def test_seed_trigger_rate_limit_is_the_client_event_limit(seed_bridge):
    s = seeded(seed_bridge, max_client_events_per_sec=3)
    with s.ws(s.jwt, "ann") as ann, s.ws() as bob:
        ann.subscribe_ok("general")
        bob.subscribe_ok("general")
        for n in range(12):
            ann.client_event("general", "burst", {"n": n})
        ann.expect_error(4301, timeout=2)
        delivered = []
        deadline = time.monotonic() + 0.8
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                frame = bob.recv(remaining)
            except TimeoutError:
                break
            if frame["event"] == "burst":
                delivered.append(frame["data"]["n"])
        assert 1 <= len(delivered) < 12, f"rate limit of 3/s let {len(delivered)} of 12 through"


def test_seed_presence_without_auth_lists_members_by_user_id(seed_bridge):
    s = seeded(seed_bridge)
    channel = "presence-room"
    with s.ws(s.jwt, "ann") as ann:
        first = seed_subscribe(ann, channel)
        assert first["presence"]["ids"] == ["ann"], first
        assert first["presence"]["count"] == 1 and set(first["presence"]["hash"]) == {"ann"}, first
        bob = s.ws(s.jwt, "bob")
        try:
            second = seed_subscribe(bob, channel)
            assert sorted(second["presence"]["ids"]) == ["ann", "bob"], second
            assert second["presence"]["count"] == 2, second
            added = ann.wait_for("pusher_internal:member_added", channel)
            assert json.loads(added["data"])["user_id"] == "bob", added.raw
        finally:
            bob.close()
        removed = ann.wait_for("pusher_internal:member_removed", channel)
        assert json.loads(removed["data"]) == {"user_id": "bob"}, removed.raw
        users = s.server.rest(s.app).users_info(channel)["users"]
        assert users == [{"id": "ann"}], users


def test_seed_presence_member_defaults_to_the_socket_id(seed_bridge):
    s = seeded(seed_bridge)
    with s.ws(s.jwt) as ws:
        data = seed_subscribe(ws, "presence-room")
        assert data["presence"]["ids"] == [ws.socket_id], data


def test_seed_presence_uses_channel_data_when_given(seed_bridge):
    s = seeded(seed_bridge)
    with s.ws(s.jwt, "ignored") as ann, s.ws(s.jwt, "bob") as bob:
        seed_subscribe(ann, "presence-room", json.dumps({"user_id": "ann-7", "user_info": {"n": "Ann"}}))
        data = seed_subscribe(bob, "presence-room")
        assert sorted(data["presence"]["ids"]) == ["ann-7", "bob"], data
        assert data["presence"]["hash"]["ann-7"] == {"n": "Ann"}, data


def test_seed_private_subscribe_needs_no_auth(seed_bridge):
    s = seeded(seed_bridge)
    with s.ws(s.jwt, "ann") as ws:
        seed_subscribe(ws, "private-room")
        s.server.rest(s.app).trigger("private-room", "from-server", {"k": "v"})
        assert json.loads(ws.wait_for("from-server", "private-room")["data"]) == {"k": "v"}


def test_seed_receives_events_of_the_event_endpoint(seed_bridge):
    s = seeded(seed_bridge)
    with s.ws(s.jwt, "robot") as ws:
        ws.subscribe_ok("general")
        assert s.publish("new_message", MESSAGE).status == 200
        assert json.loads(ws.wait_for("new_message", "general")["data"]) == MESSAGE


@pytest.mark.parametrize("case", ["garbage", "tampered-payload", "bad-signature", "alg-none",
                                  "alg-hs512", "other-key", "expired", "two-segments"])
def test_seed_invalid_jwt_4009(seed_bridge, case):
    s = seeded(seed_bridge, "--jwt-secret", JWT_SECRET)
    token = forged(s, case).removeprefix("Bearer ")
    connect_error(s.server.port, f"{s.app['key']}?{seed_query(token, 'robot')}", 4009)


def test_seed_jwt_of_another_org_4009(seed_bridge):
    s = seeded(seed_bridge)
    beta = s.server.create_org("beta")
    connect_error(s.server.port, f"{s.app['key']}?{seed_query(s.server.jwt(beta), 'robot')}", 4009)


def test_seed_jwt_after_rotate_token_4009(seed_bridge):
    s = seeded(seed_bridge)
    with s.ws(s.jwt, "before") as ws:
        ws.assert_open()
    expect_json(s.server.admin("POST", f"/organizations/{s.slug}/rotate-token"), 200)
    connect_error(s.server.port, f"{s.app['key']}?{seed_query(s.jwt, 'robot')}", 4009)


def revoked_close(ws, act) -> None:
    """`act()` on a seed socket whose JWT no longer holds: a pusher:error 4009, then close 4009,
    and nothing the act asked for. The server may have closed it already (a store change)."""
    try:
        act()
    except ConnectionClosed:
        pass
    frames = ws.expect_close(4009)
    errors = [f for f in frames if f.get("event") == "pusher:error"]
    assert errors and errors[-1]["data"]["code"] == 4009, [f.raw for f in frames]
    assert not [f for f in frames if f.get("event") in ("pusher_internal:subscription_succeeded", "late")], \
        [f.raw for f in frames]


@pytest.mark.parametrize("act", ["subscribe", "trigger"])
def test_open_seed_socket_ends_when_the_token_is_rotated(seed_bridge, act):
    # Issue 13: the JWT was checked at connect only; after a rotation the open socket kept
    # joining private channels without auth and sending events.
    s = seeded(seed_bridge)
    with s.ws(s.jwt, "ann") as ws, s.ws() as watcher:
        seed_subscribe(ws, "private-room")
        watcher.subscribe_ok("general")
        expect_json(s.server.admin("POST", f"/organizations/{s.slug}/rotate-token"), 200)
        if act == "subscribe":
            revoked_close(ws, lambda: ws.subscribe("private-late"))
        else:
            revoked_close(ws, lambda: ws.client_event("general", "late", MESSAGE))
        watcher.assert_silent(0.1, what=lambda e: e["event"] == "late")


@pytest.mark.parametrize("act", ["subscribe", "trigger"])
def test_open_seed_socket_ends_when_its_jwt_expires(seed_bridge, act):
    s = seeded(seed_bridge, "--jwt-ttl", "2")
    expires_at = decode_jwt(s.jwt)[1]["exp"]
    with s.ws(s.jwt, "ann") as ws, s.ws() as watcher:
        seed_subscribe(ws, "private-room")
        ws.subscribe_ok("general")
        watcher.subscribe_ok("general")
        # A bounded wait for the clock to pass the JWT's exp (whole seconds, --jwt-ttl 2).
        time.sleep(min(3.0, max(0.0, expires_at - time.time())) + 0.2)
        assert time.time() >= expires_at
        if act == "subscribe":
            revoked_close(ws, lambda: ws.subscribe("private-late"))
        else:
            revoked_close(ws, lambda: ws.client_event("general", "late", MESSAGE))
        watcher.assert_silent(0.1, what=lambda e: e["event"] == "late")


def test_without_jwt_a_non_client_trigger_is_refused(seed_bridge):
    s = seeded(seed_bridge)
    with s.ws() as sender, s.ws() as receiver:
        sender.subscribe_ok("general")
        receiver.subscribe_ok("general")
        sender.client_event("general", "new_message", MESSAGE)
        error = sender.wait_for("pusher:error")
        assert isinstance(error.get("data"), dict) and error["data"].get("message"), error.raw
        receiver.assert_silent(0.3, what=lambda e: e["event"] == "new_message")
        sender.assert_silent(0.1, what=lambda e: e["event"] == "new_message")


def test_without_jwt_private_subscribe_needs_auth(seed_bridge):
    s = seeded(seed_bridge)
    with s.ws(user_id="robot") as ws:  # user_id alone does not switch seed mode on
        ws.subscribe("private-room")
        ws.expect_subscription_error("private-room", None)
        ws.subscribe("presence-room")
        ws.expect_subscription_error("presence-room", None)
        ws.subscribe_ok("private-room")  # a signed subscription still works


def test_seed_trigger_produces_a_client_event_webhook(seed_bridge):
    hooks = WebhookReceiver().start()
    try:
        server = seed_bridge("--webhook-retry-delay", "0.2", "--webhook-grace", "0")
        org = server.create_org("acme-inc")
        app = server.create_app("acme-inc", "chat",
                                webhooks=[{"url": hooks.url("/hook"), "event_types": ["client_event"]}])
        jwt = server.jwt(org)
        with server.ws(app, jwt, "ann") as ann:
            ann.subscribe_ok("general")
            ann.client_event("general", "new_message", MESSAGE)
            ann.wait_for("new_message", "general")
            requests = hooks.wait_for(lambda got: [r for r in got if r.delivered], 10, "a webhook")
        request = requests[0]
        assert request.header("X-Pusher-Key") == app["key"], request.headers
        expected = hmac.new(app["secret"].encode(), request.body, hashlib.sha256).hexdigest()
        assert request.header("X-Pusher-Signature") == expected, request
        client = pusher.Pusher(app_id=app["id"], key=app["key"], secret=app["secret"])
        body = client.validate_webhook(app["key"], expected, request.body.decode())
        events = [e for e in body["events"] if e["name"] == "client_event"]
        assert len(events) == 1, body
        event = events[0]
        assert (event["channel"], event["event"], event["socket_id"]) == ("general", "new_message", ann.socket_id), event
        assert isinstance(event["data"], str) and json.loads(event["data"]) == MESSAGE, event
    finally:
        hooks.stop()
