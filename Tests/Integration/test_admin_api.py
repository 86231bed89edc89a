"""The admin API and the organizations store (issue 5 contract, "Organizations & applications").

Every route with its statuses and bodies; the token (flag, env, config file) and the API being off
without one; apps usable at once by the official `pusher` library and WebSocket clients; deleting
and rotating; isolation between organizations; persistence across restarts; config-file apps
beside store apps; and no secret ever written to the server's log."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

import pytest

from conftest import Conn, get, http_request, retry_until

from pusher_helpers import RawAPI, connect_error, make_app, make_rest
from seed_helpers import (
    ADMIN_TOKEN,
    HEX40,
    JWT_SECRET,
    assert_app_json,
    assert_org_json,
    expect_error,
    expect_json,
    restart,
    run_cli,
    seed_query,
    seeded,
)

MESSAGE = {"name": "Ann", "message": "hi"}


def routes(app_id: str) -> list[tuple[str, str, dict | None]]:
    """Every admin route, on org "acme-inc" and its app `app_id`."""
    return [
        ("GET", "/organizations", None),
        ("POST", "/organizations", {"slug": "new-org"}),
        ("GET", "/organizations/acme-inc", None),
        ("DELETE", "/organizations/acme-inc", None),
        ("POST", "/organizations/acme-inc/rotate-token", None),
        ("GET", "/organizations/acme-inc/applications", None),
        ("POST", "/organizations/acme-inc/applications", {"name": "more"}),
        ("DELETE", f"/organizations/acme-inc/applications/{app_id}", None),
        ("POST", f"/organizations/acme-inc/applications/{app_id}/rotate-secret", None),
    ]


ROUTE_IDS = ["list-orgs", "create-org", "get-org", "delete-org", "rotate-token", "list-apps",
             "create-app", "delete-app", "rotate-secret"]


# ----------------------------------------------------------------------------------------------
# The admin token
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("index", range(9), ids=ROUTE_IDS)
def test_every_route_needs_the_admin_token_401(seed_bridge, index):
    s = seeded(seed_bridge)
    before = s.server.org("acme-inc")
    method, path, body = routes(s.app["id"])[index]
    for token in (None, "wrong-token", ADMIN_TOKEN + "x", ADMIN_TOKEN[:-1], ""):
        expect_error(s.server.admin(method, path, body, token=token), 401)
    for header in (f"Basic {ADMIN_TOKEN}", ADMIN_TOKEN, f"Token {ADMIN_TOKEN}"):
        result = s.server.request(method, f"/admin{path}", json.dumps(body).encode() if body else None,
                                  {"Authorization": header, "Content-Type": "application/json"})
        expect_error(result, 401)
    assert s.server.org("acme-inc") == before, "a refused request changed the store"
    assert expect_json(s.server.admin("GET", "/organizations"), 200)["organizations"] == [before]


def test_admin_api_is_off_without_a_token_403(seed_bridge):
    server = seed_bridge(admin_token=None)
    for method, path, body in routes("1001"):
        for token in (None, ADMIN_TOKEN):
            message = expect_error(server.admin(method, path, body, token=token), 403)
            assert message.startswith("the admin API is off"), message
    assert not server.store_path.exists() or "new-org" not in server.store_path.read_text()


@pytest.mark.parametrize("source", ["env", "config"])
def test_admin_token_from_env_or_config_file(seed_bridge, tmp_path, source):
    token = f"admin-token-from-the-{source}"
    if source == "env":
        server = seed_bridge(admin_token=None, env={"BRIDGE_ADMIN_TOKEN": token})
    else:
        config = tmp_path / "admin.json"
        config.write_text(json.dumps({"admin-token": token}))
        server = seed_bridge("--config", str(config), admin_token=None)
    expect_error(server.admin("GET", "/organizations", token=ADMIN_TOKEN), 401)
    assert expect_json(server.admin("GET", "/organizations", token=token), 200) == {"organizations": []}


# ----------------------------------------------------------------------------------------------
# Organizations
# ----------------------------------------------------------------------------------------------


def test_create_list_get_organization(seed_bridge):
    server = seed_bridge()
    assert expect_json(server.admin("GET", "/organizations"), 200) == {"organizations": []}
    acme = server.create_org("acme-inc", "Acme Inc.")
    assert_org_json(acme, "acme-inc")
    assert acme["name"] == "Acme Inc." and acme["applications"] == [], acme
    beta = server.create_org("beta")
    assert_org_json(beta, "beta")
    assert beta["secret_token"] != acme["secret_token"]
    listed = expect_json(server.admin("GET", "/organizations"), 200)
    assert set(listed) == {"organizations"}, listed
    assert sorted(listed["organizations"], key=lambda o: o["slug"]) == [acme, beta], listed
    assert server.org("acme-inc") == acme


@pytest.mark.parametrize("slug", ["a", "0", "acme-inc", "a" * 63, "9-lives-", "a--b"])
def test_good_slugs_201(seed_bridge, slug):
    server = seed_bridge()
    assert_org_json(server.create_org(slug), slug)


@pytest.mark.parametrize("body", [
    {"slug": "Acme"}, {"slug": "-acme"}, {"slug": "acme_inc"}, {"slug": "acme inc"},
    {"slug": "a" * 64}, {"slug": ""}, {"slug": "acmé"}, {"slug": 42}, {"name": "no slug"},
], ids=["upper", "leading-dash", "underscore", "space", "64-chars", "empty", "non-ascii",
        "number", "missing"])
def test_bad_slug_400(seed_bridge, body):
    server = seed_bridge()
    expect_error(server.admin("POST", "/organizations", body), 400)
    assert expect_json(server.admin("GET", "/organizations"), 200) == {"organizations": []}


@pytest.mark.parametrize("raw", [b"{", b"[]", b'"acme"', b""], ids=["truncated", "array", "string", "empty"])
def test_create_organization_bad_body_400(seed_bridge, raw):
    server = seed_bridge()
    expect_error(server.admin("POST", "/organizations", raw=raw), 400)


def test_duplicate_slug_409(seed_bridge):
    server = seed_bridge()
    first = server.create_org("acme-inc", "First")
    expect_error(server.admin("POST", "/organizations", {"slug": "acme-inc", "name": "Second"}), 409)
    assert server.org("acme-inc") == first, "a duplicate create changed the organization"


@pytest.mark.parametrize("method,suffix", [
    ("GET", ""), ("DELETE", ""), ("POST", "/rotate-token"), ("GET", "/applications"),
    ("POST", "/applications"),
], ids=["get", "delete", "rotate-token", "list-apps", "create-app"])
def test_unknown_organization_404(seed_bridge, method, suffix):
    server = seed_bridge()
    server.create_org("acme-inc")
    body = {"name": "x"} if suffix == "/applications" and method == "POST" else None
    expect_error(server.admin(method, f"/organizations/no-such-org{suffix}", body), 404)


def test_delete_organization(seed_bridge):
    s = seeded(seed_bridge)
    other = s.server.create_org("beta")
    with s.ws(s.jwt, "ann") as seed_ws, s.ws() as plain:
        plain.subscribe_ok("general")
        assert expect_json(s.server.admin("DELETE", "/organizations/acme-inc"), 200) == {}
        # Its apps' connections close 4001, whatever their mode.
        seed_ws.expect_close(4001)
        plain.expect_close(4001)
    expect_error(s.server.admin("GET", "/organizations/acme-inc"), 404)
    assert expect_json(s.server.admin("GET", "/organizations"), 200) == {"organizations": [other]}
    expect_error(s.server.session(s.org["secret_token"]), 401)
    connect_error(s.server.port, f"{s.app['key']}?{seed_query()}", 4001)
    assert RawAPI(s.server.port, s.app["id"], s.app["key"], s.app["secret"]).events(
        {"name": "ev", "data": "x", "channel": "general"}).status in (401, 404)
    # The slug is free again.
    assert_org_json(s.server.create_org("acme-inc"), "acme-inc")


def test_rotate_token(seed_bridge):
    s = seeded(seed_bridge)
    rotated = expect_json(s.server.admin("POST", "/organizations/acme-inc/rotate-token"), 200)
    assert_org_json(rotated, "acme-inc")
    assert rotated["secret_token"] != s.org["secret_token"] and HEX40.match(rotated["secret_token"])
    assert {k: v for k, v in rotated.items() if k != "secret_token"} == \
        {k: v for k, v in s.server.org("acme-inc").items() if k != "secret_token"}
    assert s.server.org("acme-inc")["secret_token"] == rotated["secret_token"]
    expect_error(s.server.session(s.org["secret_token"]), 401)
    expect_error(s.publish("ev", MESSAGE), 401)  # old JWTs stop working
    assert s.publish("ev", MESSAGE, jwt=s.server.jwt(rotated)).status == 200


# ----------------------------------------------------------------------------------------------
# Applications
# ----------------------------------------------------------------------------------------------


def test_create_and_list_applications(seed_bridge):
    server = seed_bridge()
    server.create_org("acme-inc")
    first = server.create_app("acme-inc", "chat")
    assert_app_json(first, "acme-inc", "chat")
    second = server.create_app("acme-inc", "other", default_channel="lobby", enable_client_messages=False,
                               max_connections=50)
    assert_app_json(second, "acme-inc", "other", "lobby")
    assert second["enable_client_messages"] is False and second["max_connections"] == 50, second
    assert int(second["id"]) > int(first["id"]), (first, second)
    assert second["key"] != first["key"] and second["secret"] != first["secret"]
    listed = expect_json(server.admin("GET", "/organizations/acme-inc/applications"), 200)
    assert set(listed) == {"applications"}, listed
    assert sorted(listed["applications"], key=lambda a: int(a["id"])) == [first, second], listed
    org = server.org("acme-inc")
    assert sorted(org["applications"], key=lambda a: int(a["id"])) == [first, second], org


def test_app_ids_are_above_every_existing_id_across_orgs(seed_bridge):
    server = seed_bridge()
    server.create_org("acme-inc")
    server.create_org("beta")
    ids = [int(server.create_app(org, f"app-{n}")["id"])
           for n, org in enumerate(["acme-inc", "beta", "acme-inc", "beta"])]
    assert ids == sorted(ids) and len(set(ids)) == 4 and ids[0] >= 1001, ids


def test_app_ids_are_never_reused(seed_bridge):
    # Issue 13: ids were max+1, so the deleted newest app's id went to the next app (of any org),
    # whose events then reached the old app's clients. The counter also survives a restart.
    server = seed_bridge()
    server.create_org("acme-inc")
    server.create_org("beta")
    first = server.create_app("acme-inc", "first")
    newest = server.create_app("beta", "newest")
    expect_json(server.admin("DELETE", f"/organizations/beta/applications/{newest['id']}"), 200)
    after_delete = server.create_app("acme-inc", "after-delete")
    assert int(after_delete["id"]) == int(newest["id"]) + 1, (first, newest, after_delete)
    expect_json(server.admin("DELETE", f"/organizations/acme-inc/applications/{after_delete['id']}"), 200)
    server = restart(server, seed_bridge)
    after_restart = server.create_app("beta", "after-restart")
    assert int(after_restart["id"]) == int(after_delete["id"]) + 1, (after_delete, after_restart)


@pytest.mark.parametrize("body", [
    {}, {"name": ""}, {"name": 5}, {"name": "x", "max_connections": "ten"},
    {"name": "x", "no_such_setting": 1}, {"name": "x", "default_channel": "bad channel"},
    {"name": "x", "webhooks": [{"event_types": ["client_event"]}]},
], ids=["no-name", "empty-name", "name-number", "bad-setting-type", "unknown-setting",
        "bad-default-channel", "webhook-without-url"])
def test_create_application_bad_body_400(seed_bridge, body):
    server = seed_bridge()
    server.create_org("acme-inc")
    expect_error(server.admin("POST", "/organizations/acme-inc/applications", body), 400)
    assert expect_json(server.admin("GET", "/organizations/acme-inc/applications"), 200) == {"applications": []}


def test_created_app_json_has_unique_members(seed_bridge):
    # A body naming "name" twice: refused, or one app with one name, never a JSON object
    # with duplicate members (RFC 8259 §4: names SHOULD be unique).
    server = seed_bridge()
    server.create_org("acme-inc")
    result = server.admin("POST", "/organizations/acme-inc/applications", raw=b'{"name":"x","name":"y"}')
    if result.status == 400:
        return
    assert result.status == 201, result
    names = [key for key, _ in json.loads(result.body, object_pairs_hook=lambda items: items)]
    assert len(names) == len(set(names)), f"duplicate members in the app JSON: {result.body!r}"
    stored = server.store_path.read_text()
    assert stored.count('"name":') == stored.count('"slug":') + 1, f"duplicate names stored: {stored}"


def test_created_app_is_usable_at_once_by_the_official_library(seed_bridge):
    server = seed_bridge()
    server.create_org("acme-inc")
    app = server.create_app("acme-inc", "chat")
    with server.ws(app) as ws:
        ws.subscribe_ok("private-room")  # signed by the official library with the new secret
        ws.subscribe_ok("presence-room", "u1", {"name": "Ann"})
        client = server.rest(app)
        client.trigger("private-room", "hello", {"n": 1})
        assert json.loads(ws.wait_for("hello", "private-room")["data"]) == {"n": 1}
        channels = client.channels_info(prefix_filter="presence-")["channels"]
        assert set(channels) == {"presence-room"}, channels
        assert client.users_info("presence-room")["users"] == [{"id": "u1"}]


def test_delete_application(seed_bridge):
    s = seeded(seed_bridge)
    keep = s.server.create_app("acme-inc", "keep")
    with s.ws(s.jwt, "ann") as seed_ws, s.ws() as plain, s.server.ws(keep) as kept:
        plain.subscribe_ok("general")
        kept.subscribe_ok("general")
        result = s.server.admin("DELETE", f"/organizations/acme-inc/applications/{s.app['id']}")
        assert expect_json(result, 200) == {}
        seed_ws.expect_close(4001)
        plain.expect_close(4001)
        kept.assert_open()
    listed = expect_json(s.server.admin("GET", "/organizations/acme-inc/applications"), 200)
    assert listed == {"applications": [keep]}, listed
    connect_error(s.server.port, f"{s.app['key']}?{seed_query()}", 4001)
    expect_error(s.publish("ev", MESSAGE), 404)
    expect_error(s.server.admin("DELETE", f"/organizations/acme-inc/applications/{s.app['id']}"), 404)


@pytest.mark.parametrize("suffix,method", [("", "DELETE"), ("/rotate-secret", "POST")],
                         ids=["delete", "rotate-secret"])
def test_unknown_application_404(seed_bridge, suffix, method):
    s = seeded(seed_bridge)
    for app_id in ("99999", "not-a-number", s.app["key"]):
        expect_error(s.server.admin(method, f"/organizations/acme-inc/applications/{app_id}{suffix}"), 404)
    expect_error(s.server.admin(method, f"/organizations/no-such-org/applications/{s.app['id']}{suffix}"), 404)
    assert s.server.org("acme-inc")["applications"] == [s.app]


def test_rotate_secret(seed_bridge):
    s = seeded(seed_bridge)
    result = s.server.admin("POST", f"/organizations/acme-inc/applications/{s.app['id']}/rotate-secret")
    rotated = expect_json(result, 200)
    assert_app_json(rotated, "acme-inc", "chat")
    assert (rotated["id"], rotated["key"]) == (s.app["id"], s.app["key"]), rotated
    assert rotated["secret"] != s.app["secret"], rotated
    event = {"name": "ev", "data": "x", "channel": "general"}
    old = RawAPI(s.server.port, s.app["id"], s.app["key"], s.app["secret"]).events(event)
    assert old.status == 401, old
    new = RawAPI(s.server.port, s.app["id"], s.app["key"], rotated["secret"]).events(event)
    assert new.status == 200, new
    with s.ws() as ws:  # channel auth follows the new secret too
        ws.rest = s.server.rest(rotated)
        ws.subscribe_ok("private-room")
    # The seed API does not use the app secret: the org's JWT keeps working.
    assert s.publish("ev", MESSAGE).status == 200


def test_rotate_secret_closes_the_apps_connections(seed_bridge):
    # Issue 13: a new secret makes it another app; what was authorized under the old secret
    # (private channels, signed-in users) does not carry over: its clients close 4001.
    s = seeded(seed_bridge)
    with s.ws() as ws, s.ws(s.jwt, "robot") as seed_ws:
        ws.subscribe_ok("private-room")
        seed_ws.subscribe_ok("general")
        expect_json(s.server.admin("POST", f"/organizations/acme-inc/applications/{s.app['id']}/rotate-secret"), 200)
        ws.expect_close(4001)
        seed_ws.expect_close(4001)
    with s.ws() as fresh:
        fresh.subscribe_ok("general")
        assert s.publish("ev", MESSAGE).status == 200
        assert json.loads(fresh.wait_for("ev", "general")["data"]) == MESSAGE


# ----------------------------------------------------------------------------------------------
# Isolation between organizations
# ----------------------------------------------------------------------------------------------


def test_organizations_are_isolated(seed_bridge):
    s = seeded(seed_bridge)
    beta = s.server.create_org("beta")
    beta_app = s.server.create_app("beta", "theirs")
    beta_jwt = s.server.jwt(beta)
    acme_apps = expect_json(s.server.admin("GET", "/organizations/acme-inc/applications"), 200)
    assert acme_apps == {"applications": [s.app]}, acme_apps
    assert s.server.org("beta")["applications"] == [beta_app]
    # Admin routes of one org never reach the other's app.
    expect_error(s.server.admin("DELETE", f"/organizations/acme-inc/applications/{beta_app['id']}"), 404)
    expect_error(s.server.admin("POST", f"/organizations/acme-inc/applications/{beta_app['id']}/rotate-secret"), 404)
    assert s.server.org("beta")["applications"] == [beta_app]
    # One org's JWT on the other's app: 403 on the path of that org, 404 on its own path.
    expect_error(s.server.publish("beta", beta_app["key"], "ev", MESSAGE, s.jwt), 403)
    expect_error(s.server.publish("acme-inc", beta_app["key"], "ev", MESSAGE, s.jwt), 404)
    expect_error(s.server.publish("acme-inc", s.app["key"], "ev", MESSAGE, beta_jwt), 403)
    connect_error(s.server.port, f"{beta_app['key']}?{seed_query(s.jwt, 'u')}", 4009)
    # Apps' own credentials stay theirs: the HTTP API refuses one app's key on the other's id.
    crossed = RawAPI(s.server.port, beta_app["id"], s.app["key"], s.app["secret"]).events(
        {"name": "ev", "data": "x", "channel": "general"})
    assert crossed.status in (401, 403), crossed
    # Rotating one org's token leaves the other's JWTs alone.
    expect_json(s.server.admin("POST", "/organizations/acme-inc/rotate-token"), 200)
    assert s.server.publish("beta", beta_app["key"], "ev", MESSAGE, beta_jwt).status == 200


# ----------------------------------------------------------------------------------------------
# The store: restarts, config-file apps
# ----------------------------------------------------------------------------------------------


def by_slug(doc: dict) -> list[dict]:
    return sorted(doc["organizations"], key=lambda org: org["slug"])


def test_store_persists_across_a_restart(seed_bridge):
    s = seeded(seed_bridge, default_channel="lobby", enable_client_messages=False)
    s.server.create_org("beta", "Beta Ltd")
    beta_app = s.server.create_app("beta", "theirs", max_event_payload_in_kb=2)
    before = by_slug(expect_json(s.server.admin("GET", "/organizations"), 200))
    assert s.server.store_path.is_file(), "no <data-dir>/organizations.json"
    again = restart(s.server, seed_bridge)
    after = by_slug(expect_json(again.admin("GET", "/organizations"), 200))
    assert after == before, "orgs, apps, keys or secrets changed across a restart"
    with again.ws(s.app) as ws, again.ws(beta_app) as other:
        ws.subscribe_ok("lobby")
        other.subscribe_ok("private-x")
        assert again.publish("acme-inc", s.app["key"], "new_message", MESSAGE, s.jwt).status == 200
        assert json.loads(ws.wait_for("new_message", "lobby")["data"]) == MESSAGE
    assert again.session(s.org["secret_token"]).status == 200
    next_id = int(again.create_app("beta", "later")["id"])
    assert next_id > max(int(s.app["id"]), int(beta_app["id"])), "an id was reused after a restart"


def test_config_file_apps_work_beside_store_apps(seed_bridge):
    config_app = make_app("1001")
    server = seed_bridge(apps=[config_app])
    org = server.create_org("acme-inc")
    store_app = server.create_app("acme-inc", "chat")
    assert store_app["id"] != "1001" and store_app["key"] != config_app["key"], store_app
    for app in (config_app, store_app):
        client = make_rest(server.port, str(app["id"]), app["key"], app["secret"])
        with server.ws(app) as ws:
            ws.subscribe_ok("private-room")
            client.trigger("private-room", "ev", {"app": app["key"]})
            assert json.loads(ws.wait_for("ev", "private-room")["data"]) == {"app": app["key"]}
    assert server.publish("acme-inc", store_app["key"], "ev", MESSAGE, server.jwt(org)).status == 200
    # The config file's apps are not the store's: the admin API does not list them.
    listed = expect_json(server.admin("GET", "/organizations/acme-inc/applications"), 200)
    assert listed == {"applications": [store_app]}


def test_admin_changes_are_visible_to_the_cli(seed_bridge):
    server = seed_bridge()
    acme = server.create_org("acme-inc")
    app = server.create_app("acme-inc", "chat")
    listed = run_cli(server.data_dir, "orgs", "list")
    assert listed.code == 0, listed
    assert listed.json == {"organizations": [server.org("acme-inc")]}, listed
    assert acme["secret_token"] == listed.json["organizations"][0]["secret_token"]
    apps = run_cli(server.data_dir, "apps", "list", "--org", "acme-inc")
    assert apps.json == {"applications": [app]}, apps


# ----------------------------------------------------------------------------------------------
# Secrets and the log
# ----------------------------------------------------------------------------------------------


def test_secrets_never_reach_the_server_log(seed_bridge):
    s = seeded(seed_bridge, "--log-level", "debug", "--jwt-secret", JWT_SECRET)
    server = s.server
    secrets = {ADMIN_TOKEN, JWT_SECRET, s.org["secret_token"], s.app["secret"], s.jwt}
    # Every path: sessions (right, wrong), events (200, 401, 403, 404, 400), seed WebSockets
    # (valid and invalid JWT), the admin API (every route, refused and accepted), rotations.
    wrong_token = "f" * 40
    secrets.add(wrong_token)
    server.session(wrong_token)
    server.session(s.org["secret_token"], as_json=True)
    s.publish("new_message", MESSAGE)
    s.publish("new_message", MESSAGE, jwt=s.jwt + "x")
    s.publish("e" * 300, MESSAGE)
    server.publish("no-org", s.app["key"], "ev", MESSAGE, s.jwt)
    beta = server.create_org("beta")
    beta_app = server.create_app("beta", "theirs")
    beta_jwt = server.jwt(beta)
    secrets |= {beta["secret_token"], beta_app["secret"], beta_jwt}
    s.publish("ev", MESSAGE, jwt=beta_jwt)
    with s.ws(s.jwt, "ann") as ws:
        ws.subscribe_ok("general")
        ws.subscribe("private-room")
        ws.wait_for_subscription("private-room")
        ws.client_event("general", "new_message", MESSAGE)
        ws.wait_for("new_message", "general")
    connect_error(server.port, f"{s.app['key']}?{seed_query(beta_jwt, 'x')}", 4009)
    for method, path, body in routes(s.app["id"]):
        server.admin(method, path, body, token="wrong-" + ADMIN_TOKEN)
    secrets.add("wrong-" + ADMIN_TOKEN)
    server.admin("GET", "/organizations")
    server.admin("GET", "/organizations/acme-inc/applications")
    rotated_app = expect_json(server.admin(
        "POST", f"/organizations/acme-inc/applications/{s.app['id']}/rotate-secret"), 200)
    rotated_org = expect_json(server.admin("POST", "/organizations/acme-inc/rotate-token"), 200)
    new_jwt = server.jwt(rotated_org)
    secrets |= {rotated_app["secret"], rotated_org["secret_token"], new_jwt}
    s.publish("ev", MESSAGE, jwt=new_jwt)
    server.admin("DELETE", f"/organizations/beta/applications/{beta_app['id']}")
    server.admin("DELETE", "/organizations/beta")
    assert server.proc.stop() is None
    log = server.proc.stderr_text
    assert log, "no log at all: the test would prove nothing"
    for secret in secrets:
        assert secret not in log, f"a secret ({secret[:6]}…) is in the server log"
        if secret.count(".") == 2:  # a JWT: no part of its signature either
            assert secret.rsplit(".", 1)[1] not in log, "a JWT signature is in the server log"


# ----------------------------------------------------------------------------------------------
# The store's lock is waited for off the event loop
# ----------------------------------------------------------------------------------------------


def _blocked_flock_waiters(path, pid: int) -> int:
    """How many flock(2) waits of process `pid` on `path` the kernel lists in /proc/locks ("->" lines)."""
    inode = os.stat(path).st_ino
    count = 0
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if "->" in fields and "FLOCK" in fields:
            rest = fields[fields.index("->") + 1:]
            # FLOCK ADVISORY WRITE <pid> <major:minor:inode> <start> <end>
            if int(rest[3]) == pid and int(rest[4].split(":")[2]) == inode:
                count += 1
    return count


def test_a_held_store_lock_does_not_stall_the_event_loop(seed_bridge):
    """A CLI holding organizations.lock while an admin write waits for it: the server's only event
    loop (--threads 1) still answers /health and a WebSocket ping; the write completes once the
    lock is released."""
    s = seeded(seed_bridge, "--threads", "1")
    lock_path = s.server.data_dir / "organizations.lock"
    with open(lock_path, "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        try:
            with Conn(s.server.port, timeout=10) as admin, s.server.ws(s.app) as ws:
                body = json.dumps({"slug": "while-locked"}).encode()
                admin.send(http_request("POST", "/admin/organizations", [
                    ("Authorization", f"Bearer {ADMIN_TOKEN}"), ("Content-Type", "application/json")], body))
                waiting = retry_until(lambda: _blocked_flock_waiters(lock_path, s.server.proc.pid), 5, 0.02)
                assert waiting == 1, "the admin write never waited for the store's lock"
                health = get(s.server.port, "/health", timeout=5)
                assert health.status == 200, health
                ws.frames_until_pong(5)  # pusher:ping answered by the same loop
                assert _blocked_flock_waiters(lock_path, s.server.proc.pid) == 1, "the write stopped waiting"
                fcntl.flock(held, fcntl.LOCK_UN)
                response = admin.read_response(10)
                assert response.status == 201, response
        finally:
            fcntl.flock(held, fcntl.LOCK_UN)
    assert s.server.org("while-locked")["slug"] == "while-locked"
