"""Webhooks to https:// receivers: a target's `tls_ca_file` and `tls_verify` (README, Webhooks).

The receiver (webhook_receiver.py) serves HTTPS with certificates of the run's test CA (`pki`,
tls_helpers.py, made by the `openssl` command at test time): its default one for 127.0.0.1 and
localhost, and one for another host name. No key is kept beyond the tests' temporary directory. Certificates that do
not verify are refused and retried like a refused connection, with a rate-limited log line that
says TLS; fixing the configuration gets the waiting webhooks delivered."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pusher_helpers import make_app, retry_until, run_bridge_once
from test_webhooks import SAFE, hook_flags, webhook_status
from tls_helpers import CertFiles
from webhook_receiver import WebhookReceiver, check_webhook, occupied, target

ADMIN = "admin-token-for-webhook-tls-tests"
RETRY_LINE = r"webhooks: attempt \d+ to {url} failed, retrying: curl error (\d+) \(TLS\): (.*)"


# ----------------------------------------------------------------------------------------------
# Certificates and receivers
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wrong_host(pki) -> CertFiles:
    """Signed by the test CA, for wrong.example only."""
    return pki.issue("webhook-wrong-host", ["DNS:wrong.example"])


@pytest.fixture
def tls_receiver():
    """Factory: `tls_receiver(files)` → a started HTTPS WebhookReceiver; all stopped after the test."""
    started: list[WebhookReceiver] = []

    def start(files: CertFiles) -> WebhookReceiver:
        hooks = WebhookReceiver(tls=files.server_context()).start()
        started.append(hooks)
        return hooks

    yield start
    for hooks in started:
        hooks.stop()


def start_server(pusher_bridge, data_dir: Path, apps: list[dict]):
    return pusher_bridge(apps, *hook_flags(data_dir, admin_token=ADMIN))


def occupy(server, channel: str) -> None:
    """One channel_occupied webhook for app 1 (the subscriber leaves at once; vacated is filtered out)."""
    with server.ws() as ws:
        ws.subscribe_ok(channel)


def refused(hooks: WebhookReceiver, times: int = 2, timeout: float = 10) -> list[str]:
    """Wait until the sender refused the receiver's certificate `times` times (retries), and return why."""
    return hooks.wait_for(lambda _: hooks.tls_failures if len(hooks.tls_failures) >= times else None,
                          timeout, f"{times} refused TLS handshakes")


def retry_lines(server, url: str) -> list[re.Match]:
    pattern = re.compile(RETRY_LINE.format(url=re.escape(url)))
    return [m for line in server.proc.stderr_lines if (m := pattern.search(line))]


# ----------------------------------------------------------------------------------------------
# Delivery
# ----------------------------------------------------------------------------------------------


def test_unknown_ca_is_retried_and_logged_then_delivered_once_the_ca_is_configured(
        pusher_bridge, tls_receiver, pki, tmp_path):
    hooks = tls_receiver(pki.server)
    data = tmp_path / "data"
    app = make_app("1", webhooks=[target(hooks, event_types=["channel_occupied"])])
    server = start_server(pusher_bridge, data, [app])
    occupy(server, "before-fix")

    failures = refused(hooks)
    assert all("UNKNOWN_CA" in failure for failure in failures), failures
    assert hooks.requests == [], "a request arrived over a certificate that does not verify"
    lines = retry_until(lambda: retry_lines(server, hooks.url()), 5)
    assert lines, f"no TLS retry line in the log:\n{server.proc.stderr_text}"
    assert lines[0].group(1) == "60" and "certificate" in lines[0].group(2), lines[0].group(0)
    # Retried several times, said once (at most one line per target per 10 s).
    refused(hooks, 4)
    assert len(retry_lines(server, hooks.url())) < len(hooks.tls_failures), hooks.tls_failures
    status, report = webhook_status(server.port, ADMIN)
    assert status == 200 and report["pending"] == 1 and report["dead"] == 0, report

    # A reload with the CA: new webhooks verify; the one already being retried keeps its setting.
    app["webhooks"][0]["tls_ca_file"] = str(pki.ca)
    mark = server.reload({"apps": [app]})
    assert server.proc.wait_for_log(r"apps applied", 5, start=mark), server.proc.stderr_text
    occupy(server, "after-reload")
    delivered = hooks.wait_for(lambda _: hooks.delivered(), 10, "the webhook made after the reload")
    assert [request.events for request in delivered] == [[occupied("after-reload")]], delivered
    check_webhook(delivered[0], app)
    assert retry_until(lambda: webhook_status(server.port, ADMIN)[1]["pending"] == 1, 5)

    # A restart reads the configuration for what the outbox still holds: delivered.
    assert server.proc.stop() is None
    restarted = start_server(pusher_bridge, data, [app])
    hooks.wait_for(lambda _: len(hooks.delivered()) >= 2, 10, "the webhook made before the fix")
    late = hooks.delivered()[-1]
    assert late.events == [occupied("before-fix")], late
    check_webhook(late, app)
    assert retry_until(lambda: webhook_status(restarted.port, ADMIN)[1]["pending"] == 0, 5)


def test_a_target_with_the_ca_file_gets_signed_webhooks(pusher_bridge, tls_receiver, pki, tmp_path):
    hooks = tls_receiver(pki.server)
    app = make_app("1", webhooks=[target(hooks, event_types=["channel_occupied"], tls_ca_file=str(pki.ca)),
                                  {"url": hooks.url("/by-name", host="localhost"), "event_types": ["channel_occupied"],
                                   "tls_ca_file": str(pki.ca), "tls_verify": True}])
    server = start_server(pusher_bridge, tmp_path / "data", [app])
    occupy(server, "room")

    delivered = hooks.wait_for(lambda _: hooks.delivered() if len(hooks.delivered()) >= 2 else None, 10,
                               "both webhooks")
    assert sorted(request.path for request in delivered) == ["/by-name", "/hook"], delivered
    for request in delivered:
        assert check_webhook(request, app)["events"] == [occupied("room")]
        assert request.attempt == 1, request
    assert hooks.tls_failures == []
    assert not [line for line in server.proc.stderr_lines if "retrying" in line or "WARN" in line], \
        server.proc.stderr_text


def test_a_certificate_for_another_host_name_is_refused_even_with_the_ca_file(
        pusher_bridge, tls_receiver, pki, wrong_host, tmp_path):
    hooks = tls_receiver(wrong_host)
    app = make_app("1", webhooks=[target(hooks, event_types=["channel_occupied"], tls_ca_file=str(pki.ca))])
    server = start_server(pusher_bridge, tmp_path / "data", [app])
    occupy(server, "room")

    # libcurl checks the host name once the handshake is done, and hangs up before any request.
    hooks.wait_for(lambda _: hooks.tls_handshakes >= 2, 10, "two connections (a retry)")
    assert hooks.requests == []
    lines = retry_until(lambda: retry_lines(server, hooks.url()), 5)
    assert lines and lines[0].group(1) == "60", server.proc.stderr_text
    assert "host name" in lines[0].group(2) and "127.0.0.1" in lines[0].group(2), lines[0].group(0)
    assert retry_until(lambda: webhook_status(server.port, ADMIN)[1]["pending"] == 1, 5)


def test_tls_verify_false_delivers_warns_once_per_target_and_leaves_other_targets_verified(
        pusher_bridge, tls_receiver, pki, tmp_path):
    hooks = tls_receiver(pki.server)
    open_url, checked_url, added_url = hooks.url("/open"), hooks.url("/checked"), hooks.url("/added")
    app = make_app("1", webhooks=[{"url": open_url, "event_types": ["channel_occupied"], "tls_verify": False},
                                  {"url": checked_url, "event_types": ["channel_occupied"]}])
    server = start_server(pusher_bridge, tmp_path / "data", [app])
    warnings = [line for line in server.proc.stderr_lines if " WARN " in line and "tls_verify" in line]
    assert len(warnings) == 1, server.proc.stderr_text
    assert "app 1" in warnings[0] and open_url in warnings[0] and checked_url not in warnings[0], warnings

    # The same receiver, connection after connection: the unverified target's handles and
    # connections never carry the verified target's webhooks.
    for n in range(3):
        occupy(server, f"room-{n}")
    hooks.wait_for(lambda _: len(hooks.delivered("/open")) >= 3, 10, "three webhooks to /open")
    refused(hooks)
    assert hooks.delivered("/checked") == [] and [r for r in hooks.requests if r.path == "/checked"] == []
    for request in hooks.delivered("/open"):
        check_webhook(request, app)
    assert retry_lines(server, checked_url) and not retry_lines(server, open_url)

    # A reload that adds an unverified target warns about that one only.
    app["webhooks"].append({"url": added_url, "event_types": ["channel_occupied"], "tls_verify": False})
    mark = server.reload({"apps": [app]})
    assert server.proc.wait_for_log(re.escape(added_url) + r" are sent with \"tls_verify\": false", 5, start=mark), \
        server.proc.stderr_text
    occupy(server, "room-added")
    hooks.wait_for(lambda _: hooks.delivered("/added"), 10, "a webhook to /added")
    warnings = [line for line in server.proc.stderr_lines if " WARN " in line and "tls_verify" in line]
    assert len(warnings) == 2 and added_url in warnings[1], warnings


@pytest.mark.parametrize("first", ["tls_verify", "tls_ca_file"])
def test_a_target_on_the_system_store_after_another_setting_is_still_verified(
        pusher_bridge, tls_receiver, pki, tmp_path, first):
    """The handle and the kept-alive connection that served a target with its own setting are the
    ones at hand for the next target: they must not carry that setting over."""
    hooks = tls_receiver(pki.server)
    setting = {"tls_verify": False} if first == "tls_verify" else {"tls_ca_file": str(pki.ca)}
    app = make_app("1", webhooks=[{"url": hooks.url("/open"), "event_types": ["channel_occupied"], **setting}])
    server = start_server(pusher_bridge, tmp_path / "data", [app])
    occupy(server, "first")
    hooks.wait_for(lambda _: hooks.delivered("/open"), 10, "a webhook to /open")
    # Acknowledged: its transfer is over, and its handle is idle for the next one.
    assert retry_until(lambda: webhook_status(server.port, ADMIN)[1]["pending"] == 0, 5)
    assert hooks.tls_failures == []

    app["webhooks"] = [{"url": hooks.url("/checked"), "event_types": ["channel_occupied"]}]
    mark = server.reload({"apps": [app]})
    assert server.proc.wait_for_log(r"apps applied", 5, start=mark), server.proc.stderr_text
    occupy(server, "second")
    checked = lambda: [r for r in hooks.requests if r.path == "/checked"]  # noqa: E731
    hooks.wait_for(lambda _: checked() or len(hooks.tls_failures) >= 3, 10, "three attempts to /checked")
    assert checked() == [], "a verified target's webhook went out without verification"
    assert retry_lines(server, hooks.url("/checked"))


# ----------------------------------------------------------------------------------------------
# Configuration errors
# ----------------------------------------------------------------------------------------------


HTTPS = "https://127.0.0.1:9/hook"


@pytest.mark.parametrize("entry,mention", [
    ({"url": HTTPS, "tls_ca_file": "{missing}"}, "cannot be read: No such file or directory"),
    ({"url": HTTPS, "tls_ca_file": "{directory}"}, "cannot be read: Is a directory"),
    ({"url": HTTPS, "tls_ca_file": "{junk}"}, "holds no PEM certificate"),
    ({"url": HTTPS, "tls_ca_file": ""}, "tls_ca_file must be the path of a PEM file"),
    ({"url": HTTPS, "tls_ca_file": 5}, "tls_ca_file must be the path of a PEM file"),
    ({"url": HTTPS, "tls_verify": "false"}, "tls_verify must be true or false"),
    ({"url": HTTPS, "tls_verify": 0}, "tls_verify must be true or false"),
    ({"url": HTTPS, "tls_ca_file": "{ca}", "tls_verify": False}, "contradict each other"),
    ({"url": "http://127.0.0.1:9/hook", "tls_ca_file": "{ca}"}, "only applies to an https:// url"),
    ({"url": "http://127.0.0.1:9/hook", "tls_verify": False}, "only applies to an https:// url"),
], ids=["missing", "directory", "not-pem", "empty", "number", "string-verify", "number-verify", "both",
        "ca-on-http", "verify-on-http"])
def test_bad_tls_settings_are_a_startup_error(tmp_path, pki, entry, mention):
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    paths = {"{missing}": str(tmp_path / "missing.pem"), "{directory}": str(tmp_path), "{junk}": str(junk),
             "{ca}": str(pki.ca)}
    entry = {key: paths.get(value, value) if isinstance(value, str) else value for key, value in entry.items()}
    path = tmp_path / "bridge.json"
    path.write_text(json.dumps({"apps": [make_app("1", webhooks=[{"url": "http://127.0.0.1:9/ok"}, entry])]}))

    result = run_bridge_once([*SAFE, "--data-dir", str(tmp_path / "data"), "--config", str(path)], cwd=tmp_path)

    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.decode("utf-8", "replace").splitlines()
    assert len(lines) == 1, f"expected one stderr line, got {lines!r}"
    assert lines[0].startswith("bridge: apps[0].webhooks[1]"), lines[0]
    assert mention in lines[0], f"{mention!r} not in {lines[0]!r}"


def test_a_reload_with_a_bad_tls_setting_keeps_the_running_config(pusher_bridge, tls_receiver, pki, tmp_path):
    hooks = tls_receiver(pki.server)
    app = make_app("1", webhooks=[target(hooks, event_types=["channel_occupied"], tls_ca_file=str(pki.ca))])
    server = start_server(pusher_bridge, tmp_path / "data", [app])
    bad = json.loads(json.dumps(app))
    bad["webhooks"][0]["tls_ca_file"] = str(tmp_path / "gone.pem")
    mark = server.reload({"apps": [bad]})
    assert server.proc.wait_for_log(r"reload failed, keeping the current config: .*gone\.pem cannot be read", 5,
                                    start=mark), server.proc.stderr_text
    occupy(server, "room")
    delivered = hooks.wait_for(lambda _: hooks.delivered(), 10, "a webhook with the kept CA file")
    check_webhook(delivered[0], app)

