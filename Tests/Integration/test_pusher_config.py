"""Pusher apps in the config file: validation errors, the default app (no config, flags, env),
and SIGHUP reloads (apps added, disabled, removed, limits changed, a bad file kept out)."""

from __future__ import annotations

import json
import re
import time

import pytest

from pusher_helpers import (
    DEFAULT_QUERY,
    PusherWS,
    connect_error,
    make_app,
    make_rest,
    retry_connect,
    retry_until,
    run_bridge_once,
)

SAFE = ["serve", "--host", "127.0.0.1", "--port", "0", "--threads", "2"]


# ----------------------------------------------------------------------------------------------
# Invalid configuration
# ----------------------------------------------------------------------------------------------


def _apps(*changes):
    """Two valid apps, then `changes` applied: (index, key, value) sets, (index, key, DELETE) deletes."""
    apps = [make_app("1"), make_app("2")]
    for index, key, value in changes:
        if value is DELETE:
            del apps[index][key]
        else:
            apps[index][key] = value
    return apps


DELETE = object()


@pytest.mark.parametrize("config,mention", [
    ({"apps": _apps((0, "max_connections", "many"))}, "apps[0].max_connections"),
    ({"apps": _apps((1, "activity_timeout", -5))}, "apps[1].activity_timeout"),
    ({"apps": _apps((0, "enabled", "yes"))}, "apps[0].enabled"),
    ({"apps": _apps((0, "secret", DELETE))}, "apps[0].secret"),
    ({"apps": _apps((1, "key", DELETE))}, "apps[1].key"),
    ({"apps": _apps((0, "id", [1]))}, "apps[0].id"),
    ({"apps": _apps((0, "max_client_events_per_sec", 1.5))}, "apps[0].max_client_events_per_sec"),
    ({"apps": _apps((1, "allowed_origins", "*"))}, "apps[1].allowed_origins"),
    ({"apps": _apps((0, "webhooks", 5))}, "apps[0].webhooks"),
    ({"apps": _apps((0, "frobnicate", True))}, "frobnicate"),
    ({"apps": "all of them"}, "apps"),
    ({"apps": [make_app("1"), 7]}, "apps[1]"),
], ids=["max_connections", "activity_timeout", "enabled", "no-secret", "no-key", "id-list",
        "fractional-rate", "origins-string", "webhooks-number", "unknown-app-key", "apps-string",
        "app-not-object"])
def test_invalid_app_config(tmp_path, config, mention):
    path = tmp_path / "bridge.json"
    path.write_text(json.dumps(config))
    result = run_bridge_once([*SAFE, "--config", str(path)], cwd=tmp_path)
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.decode("utf-8", "replace").splitlines()
    assert len(lines) == 1, f"expected one stderr line, got {lines!r}"
    assert lines[0].startswith("bridge:"), lines[0]
    assert mention in lines[0], f"{mention!r} not named in {lines[0]!r}"


# ----------------------------------------------------------------------------------------------
# The default app
# ----------------------------------------------------------------------------------------------


def test_default_app_without_config(bridge):
    server = bridge(echo_path=None)
    assert server.wait_for_log(re.compile(r"\bapp-key\b"), 5), \
        f"start log doesn't show the default app:\n{server.stderr_text}"
    with PusherWS(server.port, key="app-key") as ws:
        ws.subscribe("room")
        ws.wait_for_subscription("room")
        rest = make_rest(server.port, "1", "app-key", "app-secret")
        assert rest.trigger("room", "ev", "x") == {}
        assert ws.wait_for("ev", "room")["data"] == "x"


def _check_app(port: int, app_id: str, key: str, secret: str) -> None:
    with PusherWS(port, key=key) as ws:
        ws.subscribe("room")
        ws.wait_for_subscription("room")
        assert make_rest(port, app_id, key, secret).trigger("room", "ev", "y") == {}
        assert ws.wait_for("ev", "room")["data"] == "y"
    connect_error(port, f"app-key?{DEFAULT_QUERY}", 4001)  # the built-in default is gone


def test_default_app_from_flags(bridge):
    server = bridge("--app-id", "77", "--app-key", "flag-key", "--app-secret", "flag-secret", echo_path=None)
    _check_app(server.port, "77", "flag-key", "flag-secret")


def test_default_app_from_environment(bridge):
    server = bridge(env={"BRIDGE_APP_ID": "78", "BRIDGE_APP_KEY": "env-key", "BRIDGE_APP_SECRET": "env-secret"},
                    echo_path=None)
    _check_app(server.port, "78", "env-key", "env-secret")


def test_default_app_flags_with_config_without_apps(pusher_bridge):
    server = pusher_bridge(None, "--app-id", "79", "--app-key", "cfg-key", "--app-secret", "cfg-secret",
                           options={"ws-pong-timeout": 5})
    _check_app(server.port, "79", "cfg-key", "cfg-secret")


def test_config_file_with_options_and_numeric_app_id(pusher_bridge):
    server = pusher_bridge([make_app(5, activity_timeout=3, name="five"), make_app("6")],
                           options={"ws-pong-timeout": 2, "max-outbound-bytes": 1 << 20})
    with server.ws(0) as five, server.ws(1) as six:
        assert five.activity_timeout == 3
        assert six.activity_timeout == 120
        five.subscribe_ok("room")
        six.subscribe_ok("room")
        assert server.rest(0).trigger("room", "to-five", "5") == {}
        assert five.wait_for("to-five", "room")["data"] == "5"
        six.assert_silent(0.2, what=lambda e: e["event"] == "to-five")  # apps are separate


# ----------------------------------------------------------------------------------------------
# SIGHUP
# ----------------------------------------------------------------------------------------------


def _keeps_receiving(server, ws, which=0, tag="after-reload") -> None:
    assert server.rest(which).trigger("room", tag, "still") == {}
    assert ws.wait_for(tag, "room")["data"] == "still"


def test_sighup_adds_an_app(pusher_bridge):
    server = pusher_bridge([make_app("1")])
    with server.ws(0) as old:
        old.subscribe_ok("room")
        server.reload({"apps": [make_app("1"), make_app("2")]})
        with retry_connect(server.port, "key-2") as new:
            new.rest = server.rest(1)
            new.subscribe_ok("room")
            assert server.rest(1).trigger("room", "for-two", "2") == {}
            assert new.wait_for("for-two", "room")["data"] == "2"
        _keeps_receiving(server, old)
        assert old.socket_id  # same connection, same id


def test_sighup_disables_an_app(pusher_bridge):
    server = pusher_bridge([make_app("1"), make_app("2")])
    with server.ws(0) as keep, server.ws(1) as doomed:
        keep.subscribe_ok("room")
        doomed.subscribe_ok("room")
        server.reload({"apps": [make_app("1"), make_app("2", enabled=False)]})
        doomed.expect_close(4003, 5)
        connect_error(server.port, f"key-2?{DEFAULT_QUERY}", 4003)
        assert server.api(1).events({"name": "ev", "data": "x", "channel": "room"}).status == 403
        _keeps_receiving(server, keep)


def test_sighup_removes_an_app(pusher_bridge):
    server = pusher_bridge([make_app("1"), make_app("2")])
    with server.ws(0) as keep, server.ws(1) as doomed:
        keep.subscribe_ok("room")
        doomed.subscribe_ok("room")
        api2 = server.api(1)
        server.reload({"apps": [make_app("1")]})
        doomed.expect_close(4001, 5)
        connect_error(server.port, f"key-2?{DEFAULT_QUERY}", 4001)
        assert api2.events({"name": "ev", "data": "x", "channel": "room"}).status == 404
        _keeps_receiving(server, keep)


@pytest.mark.parametrize("change", [{"key": "key-other"}, {"secret": "secret-other"}],
                         ids=["key", "secret"])
def test_sighup_another_key_or_secret_under_an_id_is_another_app(pusher_bridge, change):
    # Issue 13: the App of an id was kept with its hub and connections whatever the reload made
    # of it, so the old app's clients stayed and received the new app's events. Now they close 4001.
    server = pusher_bridge([make_app("1"), make_app("2")])
    with server.ws(0) as old, server.ws(1) as keep:
        old.subscribe_ok("room")
        keep.subscribe_ok("room")
        replaced = make_app("1", **change)
        server.reload({"apps": [replaced, make_app("2")]})
        old.expect_close(4001, 5)
        with retry_connect(server.port, replaced["key"]) as new:
            new.subscribe_ok("room")
            assert make_rest(server.port, "1", replaced["key"], replaced["secret"]).trigger("room", "for-new", "1") == {}
            assert new.wait_for("for-new", "room")["data"] == "1"
        _keeps_receiving(server, keep, which=1)


def test_sighup_changed_limits_apply_to_new_actions(pusher_bridge):
    server = pusher_bridge([make_app("1")])
    long_name = "n" * 30
    with server.ws(0) as old:
        old.subscribe_ok("room")
        api = server.api(0)
        assert api.events({"name": long_name, "data": "x", "channel": "room"}).status == 200
        old.wait_for(long_name, "room")
        server.reload({"apps": [make_app("1", max_event_name_length=10, activity_timeout=9)]})
        refused = retry_until(
            lambda: api.events({"name": long_name, "data": "x", "channel": "room"}).status == 400, 5)
        assert refused, "a 30-character event name still accepted after the limit became 10"
        with server.ws(0) as new:
            assert new.activity_timeout == 9
        _keeps_receiving(server, old, tag="short")


def test_sighup_with_bad_file_keeps_old_config(pusher_bridge):
    server = pusher_bridge([make_app("1")])
    with server.ws(0) as old:
        old.subscribe_ok("room")
        mark = server.reload("{ this is not json")
        assert server.proc.wait_for_log(re.compile(r"(?i)config|json"), 5, start=mark), \
            f"nothing logged for a bad config on SIGHUP:\n{server.proc.stderr_text}"
        mark = server.reload({"apps": [make_app("1", max_connections="lots")]})
        assert server.proc.wait_for_log(re.compile(r"max_connections"), 5, start=mark), \
            f"the bad field isn't named in the log:\n{server.proc.stderr_text}"
        time.sleep(0.2)
        assert server.proc.proc.poll() is None, "bridge exited on a bad config reload"
        _keeps_receiving(server, old)
        with server.ws(0) as again:  # the old app still accepts connections
            again.assert_open()
        # A good file afterwards is applied.
        server.reload({"apps": [make_app("1"), make_app("2")]})
        retry_connect(server.port, "key-2").close()
        _keeps_receiving(server, old, tag="after-good-reload")
