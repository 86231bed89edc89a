"""The debug console's JSON API (/console/api/…): credentials (the admin token, an app's
key:secret), app isolation, stats, the debug log (API publishes, subscriptions, client events,
occupancy, webhooks sent and failed; off until a console polls) and sending an event.

Activity comes from real clients: PusherWS (WebSocket), the official `pusher` library (HTTP API)
and webhook_receiver.py (webhook targets)."""

from __future__ import annotations

import http.client
import json
from typing import Any

import pytest

from pusher_helpers import TIMEOUT, make_app, retry_until
from webhook_receiver import WebhookReceiver

ADMIN_TOKEN = "console-admin-token-0123456789"


class Console:
    """A client of the console API with one credential (None: no Authorization header)."""

    def __init__(self, port: int, credential: str | None):
        self.port = port
        self.credential = credential
        self.after = 0

    def request(self, method: str, path: str, body: Any = None,
                authorization: str | None = None) -> tuple[int, Any, dict[str, str]]:
        headers = {}
        if authorization is not None:
            headers["Authorization"] = authorization
        elif self.credential is not None:
            headers["Authorization"] = f"Bearer {self.credential}"
        payload = None
        if body is not None:
            payload = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)
        try:
            conn.request(method, path, body=payload, headers=headers)
            response = conn.getresponse()
            raw = response.read()
            return response.status, json.loads(raw), {k.lower(): v for k, v in response.getheaders()}
        finally:
            conn.close()

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, doc, headers = self.request(method, path, body)
        assert status == 200, f"{method} {path}: {status} {doc}"
        assert headers.get("cache-control") == "no-store", headers
        return doc

    def apps(self) -> list[dict]:
        return self.ok("GET", "/console/api/apps")["apps"]

    def stats(self, app_id: str) -> dict:
        return self.ok("GET", f"/console/api/apps/{app_id}/stats")

    def log(self, app_id: str) -> list[dict]:
        """The entries since the previous call (and moves `after` on)."""
        doc = self.ok("GET", f"/console/api/apps/{app_id}/log?after={self.after}")
        assert isinstance(doc["next"], int) and doc["next"] >= self.after or doc["entries"] == [], doc
        self.after = doc["next"]
        return doc["entries"]

    def send(self, app_id: str, channel: str, event: str, data: Any) -> tuple[int, Any]:
        status, doc, _ = self.request("POST", f"/console/api/apps/{app_id}/events",
                                      {"channel": channel, "event": event, "data": data})
        return status, doc

    def wait_entries(self, app_id: str, want, timeout: float = TIMEOUT) -> list[dict]:
        """Poll the log until `want(all entries so far)` holds; returns them all."""
        seen: list[dict] = []

        def check():
            seen.extend(self.log(app_id))
            return want(seen)

        assert retry_until(check, timeout, 0.1), f"log never matched; entries: {seen[-20:]}"
        return seen


def entry(entries: list[dict], type_: str, **fields: Any) -> dict | None:
    """The first entry of that type whose fields equal `fields`."""
    for item in entries:
        if item["type"] == type_ and all(item.get(k) == v for k, v in fields.items()):
            return item
    return None


@pytest.fixture
def two_apps(pusher_bridge):
    """A server with apps 1 and 2 and the admin token."""
    return pusher_bridge([make_app("1", name="first"), make_app("2", name="second")],
                         "--admin-token", ADMIN_TOKEN)


def app_credential(app: dict) -> str:
    return f"{app['key']}:{app['secret']}"


def credentials(server, kind: str) -> str:
    return ADMIN_TOKEN if kind == "admin" else app_credential(server.app(0))


# ----------------------------------------------------------------------------------------------
# Credentials and isolation
# ----------------------------------------------------------------------------------------------


def test_the_admin_sees_every_app_and_an_app_only_itself(two_apps):
    admin = Console(two_apps.port, ADMIN_TOKEN).apps()
    assert admin == [
        {"id": "1", "key": "key-1", "name": "first", "organization": None},
        {"id": "2", "key": "key-2", "name": "second", "organization": None},
    ]
    assert Console(two_apps.port, app_credential(two_apps.app(1))).apps() == [admin[1]]
    # No secret in any answer.
    assert "secret" not in json.dumps(admin)


def test_apps_of_an_organization_show_it(two_apps):
    admin = Console(two_apps.port, ADMIN_TOKEN)
    status, _, _ = admin.request("POST", "/admin/organizations", {"slug": "acme", "name": "Acme"})
    assert status == 201
    status, created, _ = admin.request("POST", "/admin/organizations/acme/applications", {"name": "shop"})
    assert status == 201, created
    listed = {"id": created["id"], "key": created["key"], "name": "shop", "organization": "acme"}
    assert listed in admin.apps()
    own = Console(two_apps.port, f"{created['key']}:{created['secret']}")
    assert own.apps() == [listed]
    assert own.stats(created["id"]) == {"connections": 0, "channel_count": 0, "channels": []}

    # An event of the seed API shows in the log as the HTTP API's do.
    own.log(created["id"])
    status, org, _ = admin.request("GET", "/admin/organizations/acme")
    status, session, _ = admin.request("POST", "/api/sessions", {"token": org["secret_token"]})
    assert status == 200, session
    status, sent, _ = admin.request("POST", f"/api/organizations/acme/applications/{created['key']}/event/new_message",
                                    {"text": "hi"}, authorization=f"Bearer {session['jwt']}")
    assert status == 200, sent
    entries = own.wait_entries(created["id"], lambda es: entry(es, "api_message", event="new_message"))
    assert json.loads(entry(entries, "api_message")["data"]) == {"text": "hi"}, entries
    assert entry(entries, "api_message")["channel"] == "general", entries


@pytest.mark.parametrize("authorization", [
    None,
    "",
    f"Basic {ADMIN_TOKEN}",
    "Bearer",
    f"Bearer {ADMIN_TOKEN}x",
    f"Bearer {ADMIN_TOKEN[:-1]}",
    "Bearer key-1:secret-2",
    "Bearer key-1:",
    "Bearer key-1",
    "Bearer nokey:secret-1",
    "Bearer :secret-1",
])
def test_a_missing_or_wrong_credential_is_401_everywhere(two_apps, authorization):
    console = Console(two_apps.port, None)
    for method, path, body in [("GET", "/console/api/apps", None),
                               ("GET", "/console/api/apps/1/stats", None),
                               ("GET", "/console/api/apps/1/log", None),
                               ("POST", "/console/api/apps/1/events", {"channel": "c", "event": "e", "data": "x"})]:
        status, doc, headers = console.request(method, path, body, authorization=authorization)
        assert status == 401, f"{method} {path} with {authorization!r}: {status} {doc}"
        assert set(doc) == {"error"} and doc["error"], doc
        assert headers.get("www-authenticate", "").startswith("Bearer"), headers


def test_the_scheme_is_case_insensitive(two_apps):
    status, doc, _ = Console(two_apps.port, None).request("GET", "/console/api/apps",
                                                         authorization=f"bearer {ADMIN_TOKEN}")
    assert status == 200 and len(doc["apps"]) == 2, doc


def test_without_an_admin_token_only_app_credentials_work(pusher_bridge):
    server = pusher_bridge([make_app("1")])
    status, _, _ = Console(server.port, ADMIN_TOKEN).request("GET", "/console/api/apps")
    assert status == 401
    status, _, _ = Console(server.port, "").request("GET", "/console/api/apps")
    assert status == 401
    assert [app["id"] for app in Console(server.port, app_credential(server.app(0))).apps()] == ["1"]


def test_an_app_credential_cannot_reach_another_app(two_apps):
    first = Console(two_apps.port, app_credential(two_apps.app(0)))
    for method, path, body in [("GET", "/console/api/apps/2/stats", None),
                               ("GET", "/console/api/apps/2/log", None),
                               ("POST", "/console/api/apps/2/events", {"channel": "c", "event": "e", "data": "x"})]:
        status, doc, _ = first.request(method, path, body)
        assert status == 404, f"{method} {path}: {status} {doc}"
        # Indistinguishable from an app that does not exist.
        unknown_status, unknown, _ = first.request(method, path.replace("/2/", "/99/"), body)
        assert unknown_status == 404 and set(unknown) == set(doc) == {"error"}
    with two_apps.ws(1) as ws:
        ws.subscribe_ok("only-in-two")
        # Nothing of app 2 leaks into app 1's view, and the sent event above went nowhere.
        assert first.stats("1") == {"connections": 0, "channel_count": 0, "channels": []}


@pytest.mark.parametrize("kind", ["admin", "app"])
def test_unknown_apps_are_404(two_apps, kind):
    console = Console(two_apps.port, credentials(two_apps, kind))
    for path in ["/console/api/apps/99/stats", "/console/api/apps/99/log"]:
        status, doc, _ = console.request("GET", path)
        assert status == 404 and set(doc) == {"error"}, doc


# ----------------------------------------------------------------------------------------------
# Stats
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["admin", "app"])
def test_stats_count_connections_and_occupied_channels(two_apps, kind):
    console = Console(two_apps.port, credentials(two_apps, kind))
    assert console.stats("1") == {"connections": 0, "channel_count": 0, "channels": []}
    with two_apps.ws(0) as a, two_apps.ws(0) as b, two_apps.ws(0) as c:
        a.subscribe_ok("news")
        b.subscribe_ok("news")
        a.subscribe_ok("presence-room", user_id="ann")
        b.subscribe_ok("presence-room", user_id="ann")
        c.subscribe_ok("presence-room", user_id="bob")
        c.subscribe_ok("private-x")
        stats = console.stats("1")
        assert stats["connections"] == 3, stats
        assert stats["channel_count"] == 3, stats
        assert stats["channels"] == [
            {"name": "news", "subscription_count": 2},
            {"name": "presence-room", "subscription_count": 3, "user_count": 2},
            {"name": "private-x", "subscription_count": 1},
        ]
        c.close()
        after = retry_until(lambda: (s := console.stats("1"))["connections"] == 2 and s, TIMEOUT)
        assert after and after["channels"] == [
            {"name": "news", "subscription_count": 2},
            {"name": "presence-room", "subscription_count": 2, "user_count": 1},
        ], after


# ----------------------------------------------------------------------------------------------
# The log
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["admin", "app"])
def test_the_log_shows_subscriptions_api_messages_and_client_events(two_apps, kind):
    console = Console(two_apps.port, credentials(two_apps, kind))
    assert console.log("1") == []  # starts the recording
    rest = two_apps.rest(0)
    with two_apps.ws(0) as alice, two_apps.ws(0) as bob:
        alice.subscribe_ok("presence-chat", user_id="alice")
        bob.subscribe_ok("presence-chat", user_id="bob")
        rest.trigger("presence-chat", "greeting", {"text": "hello"})
        alice.wait_for("greeting", "presence-chat")
        bob.send({"event": "client-typing", "channel": "presence-chat", "data": {"who": "bob"}})
        alice.wait_for("client-typing", "presence-chat")
        bob.send({"event": "pusher:unsubscribe", "data": {"channel": "presence-chat"}})
        entries = console.wait_entries("1", lambda es: entry(es, "member_removed"))
        # `after` skips what was seen.
        assert console.log("1") == []

    seqs = [e["seq"] for e in entries]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), seqs
    for item in entries:
        assert isinstance(item["time_ms"], int) and item["time_ms"] > 1_600_000_000_000, item
    assert entry(entries, "channel_occupied", channel="presence-chat")
    subscribed = [e for e in entries if e["type"] == "subscribed"]
    assert [e["detail"] for e in subscribed] == [f"socket {alice.socket_id} (user alice)",
                                                f"socket {bob.socket_id} (user bob)"], subscribed
    assert entry(entries, "member_added", channel="presence-chat", detail="user bob")
    message = entry(entries, "api_message", channel="presence-chat", event="greeting")
    assert message and json.loads(message["data"]) == {"text": "hello"}, entries
    client = entry(entries, "client_event", channel="presence-chat", event="client-typing")
    assert client and json.loads(client["data"]) == {"who": "bob"}, entries
    assert client["detail"] == f"socket {bob.socket_id} (user bob)", client
    assert entry(entries, "unsubscribed", channel="presence-chat", detail=f"socket {bob.socket_id} (user bob)")
    assert entry(entries, "member_removed", channel="presence-chat", detail="user bob")
    # The order of what happened.
    kinds = [e["type"] for e in entries]
    assert kinds.index("api_message") < kinds.index("client_event") < kinds.index("unsubscribed"), kinds

    # Alice's connection closed: she left too.
    assert console.wait_entries("1", lambda es: entry(es, "member_removed", detail="user alice"))
    # A console polling the other app sees none of it.
    other = Console(two_apps.port, ADMIN_TOKEN)
    assert other.log("2") == []


def test_the_log_records_nothing_before_a_console_polls(two_apps):
    rest = two_apps.rest(0)
    rest.trigger("quiet", "before-watching", {"n": 1})
    console = Console(two_apps.port, ADMIN_TOKEN)
    doc = console.ok("GET", "/console/api/apps/1/log")
    assert doc == {"next": 0, "entries": []}, doc
    rest.trigger("quiet", "while-watching", {"n": 2})
    entries = console.log("1")
    assert [(e["type"], e["event"]) for e in entries] == [("api_message", "while-watching")], entries
    assert entries[0]["seq"] == 1
    # Watching app 1 records nothing for app 2.
    two_apps.rest(1).trigger("quiet", "elsewhere", {"n": 3})
    assert console.log("2") == []


def test_log_data_is_cut_at_about_2kb_and_after_must_be_a_number(two_apps):
    console = Console(two_apps.port, ADMIN_TOKEN)
    console.log("1")
    two_apps.rest(0).trigger("big", "blob", "x" * 9000)
    (item,) = console.wait_entries("1", lambda es: es)
    assert item["type"] == "api_message" and 2000 <= len(item["data"].encode()) <= 2100, len(item["data"])
    status, doc, _ = console.request("GET", "/console/api/apps/1/log?after=minus-one")
    assert status == 400 and "after" in doc["error"], doc


def test_the_log_shows_webhooks_sent_and_failed(pusher_bridge, tmp_path):
    hooks = WebhookReceiver().start()
    try:
        hooks.respond_with(lambda request: 200 if request.path == "/ok" else 400)
        app = make_app("1", webhooks=[{"url": hooks.url("/ok"), "event_types": ["channel_occupied"]},
                                      {"url": hooks.url("/refuses"), "event_types": ["channel_occupied"]}])
        server = pusher_bridge([app], "--admin-token", ADMIN_TOKEN, "--webhook-grace", "0.5",
                               "--webhook-retry-delay", "0.2", "--webhook-timeout", "2")
        console = Console(server.port, ADMIN_TOKEN)
        console.log("1")
        with server.ws(0) as ws:
            ws.subscribe_ok("hooked")
            entries = console.wait_entries(
                "1", lambda es: entry(es, "webhook_sent") and entry(es, "webhook_failed"), timeout=10)
    finally:
        hooks.stop()
    sent = entry(entries, "webhook_sent")
    failed = entry(entries, "webhook_failed")
    for item in (sent, failed):
        assert item["channel"] == "hooked" and item["event"] == "channel_occupied", item
        assert json.loads(item["data"]) == [{"name": "channel_occupied", "channel": "hooked"}], item
    assert sent["detail"] == f"{hooks.url('/ok')}: HTTP 200 after 1 attempt", sent
    assert failed["detail"].startswith(f"{hooks.url('/refuses')}: HTTP 400"), failed
    assert "dead-lettered" in failed["detail"], failed


# ----------------------------------------------------------------------------------------------
# Sending an event
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["admin", "app"])
def test_the_console_sends_an_event_to_subscribers(two_apps, kind):
    console = Console(two_apps.port, credentials(two_apps, kind))
    console.log("1")
    with two_apps.ws(0) as ws:
        ws.subscribe_ok("private-orders")
        status, doc = console.send("1", "private-orders", "order-placed", {"id": 7, "note": "<b>é</b>"})
        assert (status, doc) == (200, {}), doc
        frame = ws.wait_for("order-placed", "private-orders")
        assert json.loads(frame["data"]) == {"id": 7, "note": "<b>é</b>"}, frame.raw
        status, doc = console.send("1", "private-orders", "plain", "just text")
        assert (status, doc) == (200, {}), doc
        assert ws.wait_for("plain", "private-orders")["data"] == "just text"
    entries = console.wait_entries("1", lambda es: entry(es, "api_message", event="plain"))
    placed = entry(entries, "api_message", channel="private-orders", event="order-placed")
    assert placed and json.loads(placed["data"]) == {"id": 7, "note": "<b>é</b>"}, entries


def test_sending_obeys_the_http_api_rules(two_apps):
    console = Console(two_apps.port, ADMIN_TOKEN)
    for body, status in [
        ({"channel": "bad channel!", "event": "e", "data": "x"}, 400),
        ({"channel": "c", "event": "pusher:reserved", "data": "x"}, 400),
        ({"channel": "c", "event": "", "data": "x"}, 400),
        ({"channel": "c", "event": "e", "data": "x" * 20_000}, 413),
        ({"channel": "c", "event": "e"}, 400),
        ({"event": "e", "data": "x"}, 400),
        ({"channel": 5, "event": "e", "data": "x"}, 400),
        (b"not json", 400),
        ([1, 2], 400),
    ]:
        got, doc, _ = console.request("POST", "/console/api/apps/1/events", body)
        assert got == status and set(doc) == {"error"}, f"{body!r:.80}: {got} {doc}"
