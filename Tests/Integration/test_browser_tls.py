"""The JS client over TLS in real headless Chromium: wss:// to Bridge's TLS listener, pages on
https origins, the seed article's chat served over https.

Every certificate comes from the run's test CA, made with the `openssl` command in a tmp dir
(`pki`, tls_helpers.py). Chromium keeps verifying certificates: it accepts the one test server key named
by `--ignore-certificate-errors-spki-list` (its SPKI hash; the flag works only with a
--user-data-dir, which every test browser has). The CA itself is not trusted, so a second
certificate from it with another key is refused, which the first test shows. Bridge and the https
test backend serve the same certificate.

The https pages live on app.test and Bridge on bridge.test, names the browser maps to 127.0.0.1:
loopback addresses are exempt from Chromium's mixed-content blocking, these names are not, so an
https page here may open only wss:// sockets, as on the internet (the second test shows the
refusal). The article's code and the client helpers are those of test_browser_client.py.

Stock pusher-js is not tested: no copy of it can be had offline here (no Debian package has it,
and the PyPI packages around Pusher do not ship it).
"""

from __future__ import annotations

from pathlib import Path

import pytest

# `browser` and `web_backend` are fixtures: imported so that pytest finds them here.
from browser_helpers import (TestBackend, browser, console_logs, evaluate,  # noqa: F401
                             fetch_session_jwt, wait_js, wait_until, web_backend)
from pusher_helpers import make_app
from test_browser_client import (ARTICLE_APPLICATION_JS, ARTICLE_LAYOUT, ARTICLE_VIEW, chat_lines, chat_over_socket_and_api,
                                 cli_json, client_page, open_client, pusher_js_url, subscribe,
                                 wait_event, wait_subscribed)
from tls_helpers import CertFiles, tls_address, tls_flags

APP = make_app("1")
PUSHER_JS = Path(__file__).resolve().parents[2] / "Sources" / "BridgeServer" / "Static" / "pusher.js"
# Names the test browser resolves to 127.0.0.1 (--host-resolver-rules). Unlike 127.0.0.1 and
# localhost they are not "potentially trustworthy" origins, so Chromium applies its mixed-content
# rules to them as to any site on the internet.
BRIDGE_NAME = "bridge.test"
APP_NAME = "app.test"
SERVER_NAMES = ["IP:127.0.0.1", "DNS:localhost", f"DNS:{BRIDGE_NAME}", f"DNS:{APP_NAME}"]


def resolver_flag() -> str:
    """Chromium's flag that sends the test names to 127.0.0.1 (no DNS is asked)."""
    return f"--host-resolver-rules=MAP {BRIDGE_NAME} 127.0.0.1,MAP {APP_NAME} 127.0.0.1"


@pytest.fixture(scope="module")
def server_cert(pki) -> CertFiles:
    """The certificate Bridge and the https test backend serve (leaf then CA), for the test names."""
    return pki.issue("browser-server", SERVER_NAMES, chain=True)


@pytest.fixture
def tls_browser(browser, server_cert):
    """Factory: a Chromium that accepts the test server certificate's key and no other, and
    resolves the test names to 127.0.0.1."""
    trusted = f"--ignore-certificate-errors-spki-list={server_cert.spki_sha256}"
    return lambda: browser(trusted, resolver_flag())


@pytest.fixture
def https_backend(server_cert):
    """Factory: `https_backend(cert=None)` → a TestBackend on https with `cert` (default: the
    test server certificate, the one Bridge has); all are closed at teardown."""
    started: list[TestBackend] = []

    def start(cert: CertFiles | None = None) -> TestBackend:
        backend = TestBackend(tls=(cert or server_cert).server_context())
        started.append(backend)
        return backend

    yield start
    for backend in started:
        backend.close()


@pytest.fixture
def tls_server(tls_bridge, server_cert):
    """bridge with APP, its plain listener and a TLS listener with the test certificate.
    Returns (TLSBridge, TLS port)."""
    server = tls_bridge(cert=server_cert, apps=[APP])
    return server, server.tls_port


def app_url(backend: TestBackend, path: str) -> str:
    """The backend's URL under the name app.test."""
    return f"https://{APP_NAME}:{backend.port}{path}"


def open_secure_client(browser, backend: TestBackend, script_url: str, options: dict):
    """A new browser on https://app.test:PORT/client with pusher.js from `script_url` and
    `window.pusher = new PusherLite(key, options)`, recording states and errors."""
    page_html = client_page(0).replace(pusher_js_url(0), script_url)
    assert script_url in page_html
    backend.page("/client", page_html)
    driver = browser()
    driver.get(app_url(backend, "/client"))
    wait_js(driver, "window.PusherLite && window.record", message="pusher.js loaded")
    assert evaluate(driver, "location.protocol + ' ' + window.isSecureContext") == "https: true"
    driver.execute_script("""
        window.pusher = new PusherLite(arguments[0], arguments[1]);
        pusher.bind('state_change', function (s) { states.push(s.previous + '>' + s.current); });
        pusher.bind('error', record('error'));
    """, APP["key"], options)
    return driver


# ----------------------------------------------------------------------------------------------
# What the setup rests on: only the listed key is trusted; https pages may not open ws://
# ----------------------------------------------------------------------------------------------


def test_a_certificate_whose_key_is_not_on_the_list_is_refused(pki, tls_browser, https_backend, tls_bridge):
    trusted = https_backend()
    trusted.page("/", "<!doctype html><title>trusted</title><p>served over TLS</p>")
    # Same CA, same names, same extensions: only the key differs from the listed certificate.
    stranger_cert = pki.issue("browser-stranger", SERVER_NAMES, chain=True)
    stranger = https_backend(stranger_cert)
    stranger.page("/", "<!doctype html><title>stranger</title><p>must not be shown</p>")

    page = tls_browser()
    page.get(app_url(trusted, "/"))
    assert page.title == "trusted"

    page.get(app_url(stranger, "/"))
    # The browser broke off the handshake (alert certificate_unknown): the page was never asked for ...
    wait_until(lambda: stranger.tls_failures, message="a refused handshake at the stranger backend")
    assert all("certificate unknown" in failure for failure in stranger.tls_failures), stranger.tls_failures
    assert stranger.requests == [], stranger.requests
    # ... and it shows its certificate error instead.
    assert page.title != "stranger"
    assert "ERR_CERT_AUTHORITY_INVALID" in page.page_source

    # A wss:// socket to a Bridge with that certificate is refused too (pusher.js comes from the
    # trusted page's own origin: Bridge's is the untrusted one now).
    server = tls_bridge(cert=stranger_cert, apps=[APP])
    trusted.file("/pusher.js", PUSHER_JS, "application/javascript")
    client = open_secure_client(tls_browser, trusted, app_url(trusted, "/pusher.js"),
                                {"host": f"{BRIDGE_NAME}:{server.tls_port}"})
    wait_js(client, "received('error').length >= 1 && pusher.state === 'unavailable'",
            message="the socket refused")
    assert evaluate(client, "pusher.url").startswith(f"wss://{BRIDGE_NAME}:")
    assert {e["data"]["type"] for e in evaluate(client, "received('error')")} == {"WebSocketError"}
    assert "connecting>connected" not in evaluate(client, "states")
    assert any("ERR_CERT_AUTHORITY_INVALID" in entry for entry in console_logs(client))


def test_an_https_page_may_not_open_a_plain_ws_socket(tls_server, tls_browser, https_backend):
    server, port = tls_server
    page = open_secure_client(tls_browser, https_backend(), f"https://{BRIDGE_NAME}:{port}/js/pusher.js",
                              {"host": f"{BRIDGE_NAME}:{server.port}", "forceTLS": False})

    # Mixed content: the browser refuses ws:// from an https page before any connection.
    wait_js(page, "pusher.state === 'failed'", message="state failed")
    assert evaluate(page, "pusher.url").startswith(f"ws://{BRIDGE_NAME}:{server.port}/")
    assert evaluate(page, "received('error').length") == 1
    insecure = f"ws://{BRIDGE_NAME}:{server.port}/app/{APP['key']}?protocol=7"
    secure = f"wss://{BRIDGE_NAME}:{port}/app/{APP['key']}?protocol=7"
    attempt = "try { new WebSocket(arguments[0]).close(); return 'opened'; } catch (e) { return e.name; }"
    assert page.execute_script(attempt, insecure) == "SecurityError"
    assert page.execute_script(attempt, secure) == "opened"


# ----------------------------------------------------------------------------------------------
# 1. forceTLS on an http page
# ----------------------------------------------------------------------------------------------


def test_force_tls_on_an_http_page_connects_over_wss(tls_server, tls_browser, web_backend):
    server, port = tls_server
    # The page and pusher.js are plain http; only the socket is asked to use TLS, pusher-js style.
    page = open_client(tls_browser, web_backend, server.port, {
        "host": "127.0.0.1", "forceTLS": True, "wsPort": server.port, "wssPort": port})
    assert evaluate(page, "location.protocol") == "http:"
    subscribe(page, "news", "update")
    wait_subscribed(page, "news")
    assert evaluate(page, "pusher.url").startswith(f"wss://127.0.0.1:{port}/app/{APP['key']}?protocol=7&")

    server.rest().trigger("news", "update", {"over": "https", "n": 1})

    [event] = wait_event(page, "news/update")
    assert event["data"] == {"over": "https", "n": 1}
    assert evaluate(page, "states") == ["initialized>connecting", "connecting>connected"]
    assert evaluate(page, "received('error')") == []


# ----------------------------------------------------------------------------------------------
# 2. An https page: wss:// by default, presence and client events
# ----------------------------------------------------------------------------------------------


MEMBERS = "(function () { var all = []; pusher.channel('presence-room').members.each(" \
          "function (m) { all.push([m.id, m.info]); }); return all.sort(); })()"


def test_https_page_connects_over_wss_by_default_with_presence_and_client_events(
        tls_server, tls_browser, https_backend):
    server, port = tls_server
    backend = https_backend()
    backend.set_app(APP["key"], APP["secret"])
    script = f"https://{BRIDGE_NAME}:{port}/js/pusher.js"

    def member(user_id: str, name: str):
        # No host, no TLS option: both come from where pusher.js was loaded.
        page = open_secure_client(tls_browser, backend, script, {
            "authEndpoint": "/pusher/auth", "auth": {"params": {"user_id": user_id, "user_name": name}}})
        subscribe(page, "presence-room", "pusher:member_added", "client-typing")
        wait_subscribed(page, "presence-room")
        assert evaluate(page, "pusher.url").startswith(f"wss://{BRIDGE_NAME}:{port}/app/{APP['key']}?protocol=7&")
        return page

    ann = member("ann", "Ann")
    bob = member("bob", "Bob")

    [added] = wait_event(ann, "presence-room/pusher:member_added")
    assert added["data"] == {"id": "bob", "info": {"name": "Bob"}}
    for page, me in ((ann, "ann"), (bob, "bob")):
        assert evaluate(page, "pusher.channel('presence-room').members.count") == 2
        assert evaluate(page, "pusher.channel('presence-room').members.me.id") == me
        assert evaluate(page, MEMBERS) == [["ann", {"name": "Ann"}], ["bob", {"name": "Bob"}]]
    # The auth endpoint on the https origin signed both (the page's relative /pusher/auth).
    assert sorted(form["user_id"] for form in backend.auth_requests()) == ["ann", "bob"]

    assert evaluate(ann, "pusher.channel('presence-room').trigger('client-typing', {who: 'ann'})") is True
    [typing] = wait_event(bob, "presence-room/client-typing")
    assert typing["data"] == {"who": "ann"}
    assert typing["meta"] == {"user_id": "ann"}
    assert evaluate(bob, "pusher.channel('presence-room').trigger('client-typing', {who: 'bob'})") is True
    [typing] = wait_event(ann, "presence-room/client-typing")
    assert typing["data"] == {"who": "bob"}
    # A client event goes to the others only.
    assert evaluate(ann, "received('presence-room/client-typing').length") == 1
    for page in (ann, bob):
        assert evaluate(page, "received('error')") == []
        assert evaluate(page, "states") == ["initialized>connecting", "connecting>connected"]


# ----------------------------------------------------------------------------------------------
# 3. The seed article's chat on an https page
# ----------------------------------------------------------------------------------------------

# The article's Rails page and code as test_browser_client.py serves them, but with the scheme an
# https page needs: its pusher.js script tag and its makeURL (for the cross-origin $.ajax) say
# http://, which an https page may not load or call (mixed content). Nothing else changes.
HTTPS_ARTICLE_LAYOUT = ARTICLE_LAYOUT.replace('src="http://{pusher_host}/js/pusher.js"',
                                              'src="https://{pusher_host}/js/pusher.js"')
HTTPS_ARTICLE_APPLICATION_JS = ARTICLE_APPLICATION_JS.replace('return "http://" + window.pusher_host',
                                                              'return "https://" + window.pusher_host')


@pytest.fixture
def tls_seed_server(bridge, tmp_path, server_cert):
    """bridge with organization acme-inc and its app "chat" (made by the CLI) and a TLS listener.
    Returns (server, TLS port, org JSON, app JSON)."""
    data_dir = str(tmp_path / "seed-data")
    org = cli_json("orgs", "create", "acme-inc", "--data-dir", data_dir)
    app = cli_json("apps", "create", "--org", "acme-inc", "--name", "chat", "--data-dir", data_dir)
    server = bridge("--data-dir", data_dir, *tls_flags(server_cert))
    return server, tls_address(server)[1], org, app


def test_article_chat_on_an_https_page(tls_seed_server, tls_browser, https_backend):
    assert HTTPS_ARTICLE_LAYOUT != ARTICLE_LAYOUT and HTTPS_ARTICLE_APPLICATION_JS != ARTICLE_APPLICATION_JS
    server, port, org, app = tls_seed_server
    backend = https_backend()
    host = f"{BRIDGE_NAME}:{port}"

    def index() -> str:
        # The Rails app asks for the JWT server-side, on Bridge's plain local listener.
        view = ARTICLE_VIEW.format(guardian_token=fetch_session_jwt(server.port, org["secret_token"]),
                                   org_id=org["slug"], app_key=app["key"], pusher_host=host)
        return HTTPS_ARTICLE_LAYOUT.format(body=view, pusher_host=host)

    backend.page("/", index)
    backend.route("/application.js", lambda _: (200, "application/javascript", HTTPS_ARTICLE_APPLICATION_JS.encode()))

    def visit():
        page = tls_browser()
        page.get(app_url(backend, "/"))
        wait_js(page, "window.publicChannel && window.publicChannel.subscribed", message="article page joined general")
        assert evaluate(page, "location.protocol") == "https:"
        # The article passes no TLS option: wss:// because pusher.js came over https.
        assert evaluate(page, "publicChannel.client.url").startswith(f"wss://{host}/app/{app['key']}?protocol=7&")
        assert evaluate(page, "makeURL('new_message')").startswith(f"https://{host}/api/organizations/")
        return page

    ann = visit()
    bob = visit()

    chat_over_socket_and_api(ann, bob, "hello over wss", "hello through the https API")

    assert chat_lines(ann) == chat_lines(bob) == [
        "<strong>ann</strong> hello over wss", "<strong>bob</strong> hello through the https API"]
    for page in (ann, bob):
        assert not [entry for entry in console_logs(page) if "Mixed Content" in entry]
