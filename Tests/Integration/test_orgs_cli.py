"""`bridge orgs …` and `bridge apps …` (issue 5 contract, "Organizations & applications" CLI), and
the store they share with a running server: create/list/delete/rotate with and without --json,
errors (exit 1 with one `bridge:` line, exit 2 for usage), concurrent writers, changes picked up
by a running server within a bounded wait, and a corrupt organizations.json that stops
`bridge serve` and is never rewritten."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from pusher_helpers import retry_connect, run_bridge_once
from seed_helpers import (
    HEX40,
    assert_app_json,
    assert_org_json,
    cli_ok,
    decode_jwt,
    expect_cli_error,
    expect_error,
    expect_json,
    run_cli,
    spawn_cli,
    wait_until,
)

MESSAGE = {"name": "Ann", "message": "hi"}


def store(data: Path) -> Path:
    return data / "organizations.json"


def org_with_app(data: Path, slug: str = "acme-inc") -> tuple[dict, dict]:
    org = cli_ok(data, "orgs", "create", slug)
    app = cli_ok(data, "apps", "create", "--org", slug, "--name", "chat")
    return org, app


# ----------------------------------------------------------------------------------------------
# Organizations
# ----------------------------------------------------------------------------------------------


def test_orgs_create_json(tmp_path):
    data = tmp_path / "data"
    result = run_cli(data, "orgs", "create", "acme-inc", "--name", "Acme Inc.")
    assert result.code == 0, result
    org = json.loads(result.stdout)  # the JSON and nothing else on stdout
    assert_org_json(org, "acme-inc")
    assert org["name"] == "Acme Inc." and org["applications"] == [], org
    assert store(data).is_file(), "no <data-dir>/organizations.json"


def test_orgs_create_human_output(tmp_path):
    data = tmp_path / "data"
    result = run_cli(data, "orgs", "create", "acme-inc", as_json=False)
    assert result.code == 0, result
    token = cli_ok(data, "orgs", "list")["organizations"][0]["secret_token"]
    assert token in result.stdout, f"the secret token is not shown: {result}"
    assert "acme-inc" in result.stdout, result
    assert "apps create" in result.stdout, f"no next step (`bridge apps create …`): {result}"


def test_orgs_list(tmp_path):
    data = tmp_path / "data"
    assert cli_ok(data, "orgs", "list") == {"organizations": []}
    acme = cli_ok(data, "orgs", "create", "acme-inc")
    beta = cli_ok(data, "orgs", "create", "beta", "--name", "Beta Ltd")
    listed = cli_ok(data, "orgs", "list")
    assert sorted(listed["organizations"], key=lambda o: o["slug"]) == [acme, beta], listed
    human = run_cli(data, "orgs", "list", as_json=False)
    assert human.code == 0 and "acme-inc" in human.stdout and "beta" in human.stdout, human


def test_orgs_delete(tmp_path):
    data = tmp_path / "data"
    org_with_app(data)
    acme = cli_ok(data, "orgs", "list")["organizations"][0]
    beta = cli_ok(data, "orgs", "create", "beta")
    assert cli_ok(data, "orgs", "delete", "acme-inc") == acme  # --json: the deleted org
    assert cli_ok(data, "orgs", "list") == {"organizations": [beta]}
    assert cli_ok(data, "apps", "list") == {"applications": []}, "the org's apps outlived it"
    human = run_cli(data, "orgs", "delete", "beta", as_json=False)
    assert human.code == 0, human
    assert cli_ok(data, "orgs", "list") == {"organizations": []}


def test_orgs_rotate_token(tmp_path):
    data = tmp_path / "data"
    org, app = org_with_app(data)
    rotated = cli_ok(data, "orgs", "rotate-token", "acme-inc")
    assert_org_json(rotated, "acme-inc")
    assert rotated["secret_token"] != org["secret_token"] and HEX40.match(rotated["secret_token"])
    assert rotated["applications"] == [app], rotated
    assert cli_ok(data, "orgs", "list")["organizations"][0]["secret_token"] == rotated["secret_token"]
    human = run_cli(data, "orgs", "rotate-token", "acme-inc", as_json=False)
    assert human.code == 0, human
    latest = cli_ok(data, "orgs", "list")["organizations"][0]["secret_token"]
    assert latest != rotated["secret_token"] and latest in human.stdout, human


# ----------------------------------------------------------------------------------------------
# Applications
# ----------------------------------------------------------------------------------------------


def test_apps_create_json(tmp_path):
    data = tmp_path / "data"
    cli_ok(data, "orgs", "create", "acme-inc")
    app = cli_ok(data, "apps", "create", "--org", "acme-inc", "--name", "chat")
    assert_app_json(app, "acme-inc", "chat")
    lobby = cli_ok(data, "apps", "create", "--org", "acme-inc", "--name", "other", "--default-channel", "lobby")
    assert_app_json(lobby, "acme-inc", "other", "lobby")
    assert int(lobby["id"]) > int(app["id"])


def test_apps_create_human_output(tmp_path):
    data = tmp_path / "data"
    cli_ok(data, "orgs", "create", "acme-inc")
    result = run_cli(data, "apps", "create", "--org", "acme-inc", "--name", "chat", as_json=False)
    assert result.code == 0, result
    app = cli_ok(data, "apps", "list")["applications"][0]
    for field in ("id", "key", "secret"):
        assert app[field] in result.stdout, f"the app {field} is not shown: {result}"


def test_apps_list_all_or_by_org(tmp_path):
    data = tmp_path / "data"
    _, acme_app = org_with_app(data, "acme-inc")
    _, beta_app = org_with_app(data, "beta")
    everything = cli_ok(data, "apps", "list")
    assert sorted(everything["applications"], key=lambda a: int(a["id"])) == [acme_app, beta_app]
    assert cli_ok(data, "apps", "list", "--org", "beta") == {"applications": [beta_app]}
    human = run_cli(data, "apps", "list", "--org", "acme-inc", as_json=False)
    assert human.code == 0 and acme_app["key"] in human.stdout and beta_app["key"] not in human.stdout, human


def test_apps_delete(tmp_path):
    data = tmp_path / "data"
    _, app = org_with_app(data)
    keep = cli_ok(data, "apps", "create", "--org", "acme-inc", "--name", "keep")
    assert cli_ok(data, "apps", "delete", app["id"]) == app  # --json: the deleted app
    assert cli_ok(data, "apps", "list") == {"applications": [keep]}
    assert run_cli(data, "apps", "delete", keep["id"], as_json=False).code == 0
    assert cli_ok(data, "apps", "list") == {"applications": []}


def test_apps_rotate_secret(tmp_path):
    data = tmp_path / "data"
    _, app = org_with_app(data)
    rotated = cli_ok(data, "apps", "rotate-secret", app["id"])
    assert_app_json(rotated, "acme-inc", "chat")
    assert (rotated["id"], rotated["key"]) == (app["id"], app["key"])
    assert rotated["secret"] != app["secret"]
    assert cli_ok(data, "apps", "list") == {"applications": [rotated]}
    human = run_cli(data, "apps", "rotate-secret", app["id"], as_json=False)
    assert human.code == 0, human
    latest = cli_ok(data, "apps", "list")["applications"][0]["secret"]
    assert latest != rotated["secret"] and latest in human.stdout, human


# ----------------------------------------------------------------------------------------------
# Errors
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("args,mention", [
    (["apps", "create", "--org", "no-such-org", "--name", "chat"], "no-such-org"),
    (["apps", "list", "--org", "no-such-org"], "no-such-org"),
    (["orgs", "delete", "no-such-org"], "no-such-org"),
    (["orgs", "rotate-token", "no-such-org"], "no-such-org"),
    (["apps", "delete", "99999"], "99999"),
    (["apps", "rotate-secret", "99999"], "99999"),
], ids=["apps-create", "apps-list", "orgs-delete", "rotate-token", "apps-delete", "rotate-secret"])
@pytest.mark.parametrize("as_json", [True, False], ids=["json", "human"])
def test_unknown_org_or_app_exit_1(tmp_path, args, mention, as_json):
    data = tmp_path / "data"
    org_with_app(data)
    before = store(data).read_bytes()
    result = run_cli(data, *args, as_json=as_json)
    expect_cli_error(result, 1, mention)
    assert result.stdout == "", result
    assert store(data).read_bytes() == before


def test_duplicate_slug_fails(tmp_path):
    data = tmp_path / "data"
    first = cli_ok(data, "orgs", "create", "acme-inc", "--name", "First")
    result = run_cli(data, "orgs", "create", "acme-inc", "--name", "Second")
    expect_cli_error(result, None, "acme-inc")
    assert result.stdout == ""
    assert cli_ok(data, "orgs", "list") == {"organizations": [first]}


@pytest.mark.parametrize("slug", ["Acme", "-acme", "acme_inc", "a" * 64, "acmé", ""],
                         ids=["upper", "leading-dash", "underscore", "64-chars", "non-ascii", "empty"])
def test_bad_slug_exit_2(tmp_path, slug):
    data = tmp_path / "data"
    result = run_cli(data, "orgs", "create", slug)
    expect_cli_error(result, 2)
    assert result.stdout == ""
    assert not store(data).exists() or cli_ok(data, "orgs", "list") == {"organizations": []}


@pytest.mark.parametrize("args", [
    ["orgs", "create"],
    ["orgs", "delete"],
    ["orgs", "frobnicate"],
    ["orgs", "create", "acme-inc", "--bogus"],
    ["apps", "create", "--org", "acme-inc"],
    ["apps", "create", "--name", "chat"],
    ["apps", "create", "--org", "acme-inc", "--name"],
    ["apps", "delete"],
    ["apps", "rotate-secret"],
], ids=["orgs-create-no-slug", "orgs-delete-no-slug", "orgs-unknown", "unknown-flag",
        "apps-no-name", "apps-no-org", "name-without-value", "apps-delete-no-id", "rotate-no-id"])
def test_usage_errors_exit_2(tmp_path, args):
    data = tmp_path / "data"
    cli_ok(data, "orgs", "create", "acme-inc")
    before = store(data).read_bytes()
    result = run_cli(data, *args)
    expect_cli_error(result, 2)
    assert store(data).read_bytes() == before


# ----------------------------------------------------------------------------------------------
# The store shared by CLI processes and the server
# ----------------------------------------------------------------------------------------------


def test_concurrent_cli_writers_lose_nothing(tmp_path):
    data = tmp_path / "data"
    cli_ok(data, "orgs", "create", "acme-inc")
    procs = [spawn_cli(data, "apps", "create", "--org", "acme-inc", "--name", f"app-{n}") for n in range(8)]
    created = []
    for proc in procs:
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        created.append(json.loads(out))
    ids = {app["id"] for app in created}
    keys = {app["key"] for app in created}
    assert len(ids) == 8 and len(keys) == 8, created
    listed = cli_ok(data, "apps", "list", "--org", "acme-inc")["applications"]
    assert sorted(listed, key=lambda a: a["id"]) == sorted(created, key=lambda a: a["id"])


def test_cli_changes_reach_a_running_server(seed_bridge):
    server = seed_bridge()
    data = server.data_dir
    org, app = org_with_app(data)
    # A new org and app: sessions and connections work within a bounded wait, no restart.
    ws = retry_connect(server.port, app["key"], timeout=5)
    try:
        session = wait_until(lambda: (r := server.session(org["secret_token"])).status == 200 and r,
                             5, what="a session for the org created by the CLI")
        jwt = expect_json(session, 200)["jwt"]
        ws.subscribe_ok("general")
        assert server.publish("acme-inc", app["key"], "new_message", MESSAGE, jwt).status == 200
        assert json.loads(ws.wait_for("new_message", "general")["data"]) == MESSAGE
        # rotate-token: the old token and JWT stop working.
        cli_ok(data, "orgs", "rotate-token", "acme-inc")
        wait_until(lambda: server.session(org["secret_token"]).status == 401, 5,
                   what="the rotated token being refused")
        expect_error(server.publish("acme-inc", app["key"], "ev", MESSAGE, jwt), 401)
        # apps delete: the app's connections close 4001.
        cli_ok(data, "apps", "delete", app["id"])
        ws.expect_close(4001, timeout=5)
    finally:
        ws.close()
    assert expect_json(server.admin("GET", "/organizations/acme-inc/applications"), 200) == {"applications": []}


def test_cli_rotate_secret_reaches_a_running_server(seed_bridge):
    from pusher_helpers import RawAPI

    server = seed_bridge()
    _, app = org_with_app(server.data_dir)
    rotated = cli_ok(server.data_dir, "apps", "rotate-secret", app["id"])
    event = {"name": "ev", "data": "x", "channel": "general"}
    wait_until(lambda: RawAPI(server.port, app["id"], app["key"], rotated["secret"]).events(event).status == 200,
               5, what="the new secret being accepted")
    old = RawAPI(server.port, app["id"], app["key"], app["secret"]).events(event)
    assert old.status == 401, old


def test_cli_rotate_token_closes_open_seed_sockets(seed_bridge):
    # Issue 13: a rotation did not reach sockets opened with the old JWT. The server closes them
    # (4009) once it sees the changed store, within a bounded wait.
    server = seed_bridge()
    data = server.data_dir
    org, app = org_with_app(data)
    session = wait_until(lambda: (r := server.session(org["secret_token"])).status == 200 and r,
                         5, what="a session for the org created by the CLI")
    jwt = expect_json(session, 200)["jwt"]
    with server.ws(app, jwt, "ann") as ws:
        ws.subscribe("private-room")
        ws.wait_for_subscription("private-room")
        cli_ok(data, "orgs", "rotate-token", "acme-inc")
        frames = ws.expect_close(4009, timeout=5)
        assert [f for f in frames if f.get("event") == "pusher:error"][-1]["data"]["code"] == 4009, frames


def test_cli_never_reuses_an_app_id_and_the_deleted_apps_clients_close(seed_bridge):
    # Issue 13: `apps delete` of the newest app then `apps create` elsewhere handed out the same
    # id, and a server that saw both at once kept the old app's clients on the new app.
    server = seed_bridge()
    data = server.data_dir
    org_with_app(data, "acme-inc")
    _, newest = org_with_app(data, "beta")
    ws = retry_connect(server.port, newest["key"], timeout=5)
    try:
        ws.subscribe_ok("general")
        cli_ok(data, "apps", "delete", newest["id"])
        replacement = cli_ok(data, "apps", "create", "--org", "acme-inc", "--name", "next")
        assert int(replacement["id"]) > int(newest["id"]), (newest, replacement)
        ws.expect_close(4001, timeout=5)
    finally:
        ws.close()


def test_a_store_file_from_before_epochs_is_upgraded_and_keeps_working(seed_bridge, tmp_path):
    # organizations.json files written before epochs and id counters existed still load: each
    # organization gets its epoch, written back at once, and its JWTs name it.
    data = tmp_path / "old-data"
    data.mkdir()
    app = {"id": "1004", "key": "0123456789abcdef0123", "secret": "s" * 40, "name": "chat",
           "default_channel": "general"}
    old = {"version": 1, "organizations": [{"slug": "acme-inc", "name": "Acme", "secret_token": "t" * 40,
                                            "token_generation": 3, "created_at": 1700000000,
                                            "applications": [app]}]}
    store(data).write_text(json.dumps(old))
    listed = cli_ok(data, "orgs", "list")
    assert [o["slug"] for o in listed["organizations"]] == ["acme-inc"], listed
    upgraded = json.loads(store(data).read_text())
    epoch = upgraded["organizations"][0]["epoch"]
    assert isinstance(epoch, str) and len(epoch) == 32, upgraded
    assert upgraded["last_token_generation"] == 3 and upgraded["last_app_id"] == 1004, upgraded
    assert upgraded["organizations"][0]["applications"] == [app], upgraded
    server = seed_bridge(data_dir=data)
    claims = decode_jwt(expect_json(server.session("t" * 40), 200)["jwt"])[1]
    assert claims["epoch"] == epoch and claims["gen"] == 3, claims
    assert int(server.create_app("acme-inc", "next")["id"]) == 1005


# ----------------------------------------------------------------------------------------------
# A corrupt store
# ----------------------------------------------------------------------------------------------


def retyped(value):
    """`value` with the first "secret_token" (else "slug") found made a number; None if none."""
    for name in ("secret_token", "slug"):
        done = _retype(value, name)
        if done:
            return value
    return None


def _retype(value, name: str) -> bool:
    if isinstance(value, dict):
        if isinstance(value.get(name), str):
            value[name] = 12345
            return True
        return any(_retype(child, name) for child in value.values())
    if isinstance(value, list):
        return any(_retype(child, name) for child in value)
    return False


def corrupt(data: Path, kind: str) -> bytes:
    """Write a corrupt organizations.json of `kind` (after a valid one exists); returns its bytes."""
    path = store(data)
    valid = path.read_bytes()
    if kind == "garbage":
        content = b"\x00\xffnot json at all\n"
    elif kind == "truncated":
        content = valid[: len(valid) // 2]
    elif kind == "wrong-field-type":
        doc = retyped(json.loads(valid))
        assert doc is not None, f"no secret_token/slug in the store file: {valid[:300]!r}"
        content = json.dumps(doc).encode()
    elif kind == "wrong-top-level-type":
        content = b'"organizations"'
    else:
        raise AssertionError(kind)
    path.write_bytes(content)
    return content


CORRUPTIONS = ["garbage", "truncated", "wrong-field-type", "wrong-top-level-type"]


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_corrupt_store_stops_serve_and_is_left_untouched(tmp_path, kind):
    data = tmp_path / "data"
    org_with_app(data)
    content = corrupt(data, kind)
    result = run_bridge_once(["serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", str(data)])
    assert result.returncode == 1, (result.returncode, result.stderr)
    lines = result.stderr.decode("utf-8", "replace").splitlines()
    prefix = f"bridge: cannot load {store(data)}: "
    matching = [line for line in lines if line.startswith(prefix)]
    assert matching and len(matching[0]) > len(prefix), f"no {prefix!r}<reason> line in {lines!r}"
    assert store(data).read_bytes() == content, "the corrupt store was rewritten"


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_cli_refuses_a_corrupt_store_and_leaves_it(tmp_path, kind):
    data = tmp_path / "data"
    org_with_app(data)
    content = corrupt(data, kind)
    for args in (["orgs", "list"], ["orgs", "create", "beta"],
                 ["apps", "create", "--org", "acme-inc", "--name", "x"], ["apps", "list"]):
        result = run_cli(data, *args)
        expect_cli_error(result, 1, str(store(data)))
        assert store(data).read_bytes() == content, f"`{args}` rewrote the corrupt store"


def test_running_server_keeps_serving_and_never_rewrites_a_corrupt_store(seed_bridge):
    server = seed_bridge()
    org, app = org_with_app(server.data_dir)
    with retry_connect(server.port, app["key"], timeout=5) as ws:
        ws.subscribe_ok("general")
        content = b"{ this is not JSON"
        tmp = store(server.data_dir).with_suffix(".tmp")
        tmp.write_bytes(content)
        os.replace(tmp, store(server.data_dir))
        # Longer than the ~1 s re-read period: connections, sessions and the file stay as they were.
        for _ in range(4):
            ws.assert_open()
            with retry_connect(server.port, app["key"], timeout=2) as other:
                other.assert_open()
            assert server.session(org["secret_token"]).status == 200
            time.sleep(0.4)
        assert store(server.data_dir).read_bytes() == content
        assert server.proc.proc.poll() is None, "bridge exited on a corrupt store change"


# ----------------------------------------------------------------------------------------------
# apps create --settings / --webhook
# ----------------------------------------------------------------------------------------------


def test_apps_create_with_settings(tmp_path):
    data = tmp_path / "data"
    cli_ok(data, "orgs", "create", "acme-inc")
    app = cli_ok(data, "apps", "create", "--org", "acme-inc", "--name", "chat",
                 "--settings", '{"enable_client_messages":false,"max_connections":5}')
    assert_app_json(app, "acme-inc", "chat")
    assert app["enable_client_messages"] is False and app["max_connections"] == 5, app
    assert cli_ok(data, "apps", "list") == {"applications": [app]}


@pytest.mark.parametrize("settings,mention", [
    ("{bad", "--settings"),
    ("[]", "--settings"),
    ('{"no_such_setting":1}', "no_such_setting"),
    ('{"max_connections":"ten"}', "max_connections"),
    ('{"id":"5"}', "id"),
    ('{"key":"mine"}', "key"),
    ('{"secret":"mine"}', "secret"),
], ids=["not-json", "array", "unknown", "bad-type", "id", "key", "secret"])
def test_apps_create_bad_settings_exit_2(tmp_path, settings, mention):
    data = tmp_path / "data"
    cli_ok(data, "orgs", "create", "acme-inc")
    before = store(data).read_bytes()
    result = run_cli(data, "apps", "create", "--org", "acme-inc", "--name", "chat", "--settings", settings)
    expect_cli_error(result, 2, mention)
    assert store(data).read_bytes() == before


def test_apps_create_name_in_settings_gives_one_name(tmp_path):
    data = tmp_path / "data"
    cli_ok(data, "orgs", "create", "acme-inc")
    result = run_cli(data, "apps", "create", "--org", "acme-inc", "--name", "chat",
                     "--settings", '{"name":"other"}')
    if result.code != 0:
        expect_cli_error(result, 2, "name")
        return
    pairs = json.loads(result.stdout, object_pairs_hook=lambda items: items)
    names = [key for key, _ in pairs]
    assert len(names) == len(set(names)), f"duplicate members in the app JSON: {result.stdout}"


def test_apps_create_bad_webhook_url_exit_2(tmp_path):
    data = tmp_path / "data"
    cli_ok(data, "orgs", "create", "acme-inc")
    result = run_cli(data, "apps", "create", "--org", "acme-inc", "--name", "chat", "--webhook", "not-a-url")
    expect_cli_error(result, 2, "url")


def test_apps_create_webhook_reaches_a_running_server(seed_bridge):
    from webhook_receiver import WebhookReceiver

    hooks = WebhookReceiver().start()
    try:
        server = seed_bridge("--webhook-retry-delay", "0.2")
        org = cli_ok(server.data_dir, "orgs", "create", "acme-inc")
        app = cli_ok(server.data_dir, "apps", "create", "--org", "acme-inc", "--name", "chat",
                     "--webhook", hooks.url("/hook"))
        assert [target["url"] for target in app["webhooks"]] == [hooks.url("/hook")], app
        ws = retry_connect(server.port, app["key"], timeout=5)
        ws.close()
        jwt = expect_json(server.session(org["secret_token"]), 200)["jwt"]
        with server.ws(app, jwt, "ann") as ann:
            ann.subscribe_ok("general")
            ann.client_event("general", "new_message", MESSAGE)
            ann.wait_for("new_message", "general")
            hooks.wait_for(lambda _: [e for e in hooks.delivered_events() if e["name"] == "client_event"],
                           10, "a client_event webhook")
        event = next(e for e in hooks.delivered_events() if e["name"] == "client_event")
        assert (event["channel"], event["event"], event["socket_id"]) == ("general", "new_message", ann.socket_id)
        delivered = hooks.delivered()[0]
        assert delivered.header("X-Pusher-Key") == app["key"], delivered.headers
    finally:
        hooks.stop()
