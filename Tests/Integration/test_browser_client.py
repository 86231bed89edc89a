"""The JS client (bridge's /js/pusher.js) in real headless Chromium.

Pages come from a test backend on another origin than bridge (browser_helpers.TestBackend), as
an application's pages would: they load pusher.js from bridge, and sign private and presence
channels in the backend's POST /pusher/auth. Events are published with the official `pusher`
library. The last tests run the article's Rails example page verbatim (only the host differs)
against the seed API: a JWT fetched server-side, messages over the socket and over the
cross-origin event API.

Every wait is bounded (browser_helpers.WAIT_TIMEOUT, at most 15 s).
"""

from __future__ import annotations

import json
import signal
import socket
import time

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

# `browser` and `web_backend` are fixtures: imported so that pytest finds them here.
from browser_helpers import (WAIT_TIMEOUT, browser, console_logs, evaluate,  # noqa: F401
                             fetch_session_jwt, wait_js, wait_until, web_backend)
from pusher_helpers import make_app, make_rest, run_bridge_once, write_config_file

APP = make_app("1")


def pusher_js_url(port: int) -> str:
    return f"http://127.0.0.1:{port}/js/pusher.js"


def client_page(port: int) -> str:
    """A blank page with pusher.js from bridge and a log the tests read back:
    `record(name)` makes a callback that appends {name, data, meta} to `window.log`."""
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>client</title></head><body>
<script src="{pusher_js_url(port)}"></script>
<script>
  window.log = [];
  window.states = [];
  window.record = function (name) {{
    return function (data, meta) {{ window.log.push({{name: name, data: data, meta: meta || null}}); }};
  }};
  window.received = function (name) {{
    return window.log.filter(function (entry) {{ return entry.name === name; }});
  }};
</script>
</body></html>"""


def open_client(browser, backend, port: int, options: dict, key: str = APP["key"]):
    """A new browser on the backend's page, with `window.pusher = new PusherLite(key, options)`
    recording its state changes and errors. The host is bridge's unless options say
    "host": None (left out)."""
    options = {k: v for k, v in {"host": f"127.0.0.1:{port}", **options}.items() if v is not None}
    backend.page("/client", client_page(port))
    driver = browser()
    driver.get(backend.url("/client"))
    wait_js(driver, "window.PusherLite && window.record", message="pusher.js loaded")
    driver.execute_script("""
        window.pusher = new PusherLite(arguments[0], arguments[1]);
        pusher.bind('state_change', function (s) { states.push(s.previous + '>' + s.current); });
        pusher.bind('error', record('error'));
    """, key, options)
    return driver


def subscribe(driver, channel: str, *events: str) -> None:
    """Subscribe and record `events` (and the subscription outcome) under "<channel>/<event>"."""
    names = ("pusher:subscription_succeeded", "pusher:subscription_error", *events)
    driver.execute_script("""
        var channel = pusher.subscribe(arguments[0]);
        arguments[1].forEach(function (event) { channel.bind(event, record(channel.name + '/' + event)); });
    """, channel, list(names))


def wait_subscribed(driver, channel: str) -> None:
    wait_js(driver, f"pusher.channel({json.dumps(channel)}) && pusher.channel({json.dumps(channel)}).subscribed",
            message=f"subscribed to {channel}")


def wait_event(driver, name: str, count: int = 1, timeout: float = WAIT_TIMEOUT) -> list:
    """The first `count` log entries called `name`, once there are that many."""
    return wait_js(driver, f"received({json.dumps(name)}).length >= {count} && received({json.dumps(name)})",
                   timeout, message=f"{count} x {name}")[:count]


@pytest.fixture
def pusher_server(pusher_bridge):
    return pusher_bridge([APP])


# ----------------------------------------------------------------------------------------------
# Pusher mode: app key, auth endpoint, the official server library
# ----------------------------------------------------------------------------------------------


def test_public_channel_receives_event_from_official_library(pusher_server, browser, web_backend):
    page = open_client(browser, web_backend, pusher_server.port, {})
    subscribe(page, "news", "update")
    wait_subscribed(page, "news")

    pusher_server.rest().trigger("news", "update", {"headline": "bridge ships", "n": 3})

    [event] = wait_event(page, "news/update")
    assert event["data"] == {"headline": "bridge ships", "n": 3}  # the JSON string was parsed
    assert evaluate(page, "states") == ["initialized>connecting", "connecting>connected"]
    assert evaluate(page, "received('error')") == []


def test_default_host_is_where_pusher_js_came_from(pusher_server, browser, web_backend):
    # The page is on the backend's origin; without a host option the client must not go there.
    page = open_client(browser, web_backend, pusher_server.port, {"host": None})
    wait_js(page, "pusher.state === 'connected'", message="connected to bridge")
    assert evaluate(page, "pusher.url").startswith(f"ws://127.0.0.1:{pusher_server.port}/app/{APP['key']}?protocol=7&")


def test_string_data_that_is_not_json_stays_a_string(pusher_server, browser, web_backend):
    page = open_client(browser, web_backend, pusher_server.port, {})
    subscribe(page, "news", "raw")
    wait_subscribed(page, "news")

    pusher_server.rest().trigger("news", "raw", "plain text, not JSON")  # a string goes as it is

    [event] = wait_event(page, "news/raw")
    assert event["data"] == "plain text, not JSON"


def test_private_channel_signed_by_the_auth_endpoint(pusher_server, browser, web_backend):
    web_backend.set_app(APP["key"], APP["secret"])
    page = open_client(browser, web_backend, pusher_server.port, {"authEndpoint": "/pusher/auth"})
    subscribe(page, "private-orders", "created")
    wait_subscribed(page, "private-orders")

    [auth] = web_backend.auth_requests()
    assert auth == {"socket_id": evaluate(page, "pusher.socket_id"), "channel_name": "private-orders"}

    pusher_server.rest().trigger("private-orders", "created", {"id": 42})
    [event] = wait_event(page, "private-orders/created")
    assert event["data"] == {"id": 42}


def test_auth_endpoint_failure_is_a_subscription_error(pusher_server, browser, web_backend):
    page = open_client(browser, web_backend, pusher_server.port, {"authEndpoint": "/no/such/endpoint"})
    subscribe(page, "private-orders")

    [failure] = wait_event(page, "private-orders/pusher:subscription_error")
    assert failure["data"]["type"] == "AuthError"
    assert failure["data"]["status"] == 404
    assert evaluate(page, "pusher.channel('private-orders').subscribed") is False
    assert evaluate(page, "pusher.state") == "connected"


def test_bad_signature_is_refused_and_the_connection_stays(pusher_server, browser, web_backend):
    web_backend.set_app(APP["key"], "not-the-app-secret")
    page = open_client(browser, web_backend, pusher_server.port, {"authEndpoint": "/pusher/auth"})
    subscribe(page, "private-orders")

    # The server refuses the subscription on the channel and with a pusher:error (4009) ...
    [failure] = wait_event(page, "private-orders/pusher:subscription_error")
    assert failure["data"]["status"] == 401, failure
    [error] = wait_event(page, "error")
    assert error["data"]["type"] == "PusherError" and error["data"]["data"]["code"] == 4009, error
    # ... but keeps the connection: the client neither reconnects nor gives up.
    socket_id = evaluate(page, "pusher.socket_id")
    subscribe(page, "news", "update")
    wait_subscribed(page, "news")
    pusher_server.rest().trigger("news", "update", {"still": "here"})
    assert wait_event(page, "news/update")[0]["data"] == {"still": "here"}
    assert evaluate(page, "pusher.socket_id") == socket_id
    assert evaluate(page, "states") == ["initialized>connecting", "connecting>connected"]
    assert evaluate(page, "pusher.channel('private-orders').subscribed") is False


def test_presence_members_join_and_leave(pusher_server, browser, web_backend):
    web_backend.set_app(APP["key"], APP["secret"])

    def presence_page(user_id: str, name: str):
        page = open_client(browser, web_backend, pusher_server.port, {
            "authEndpoint": "/pusher/auth", "auth": {"params": {"user_id": user_id, "user_name": name}}})
        subscribe(page, "presence-room", "pusher:member_added", "pusher:member_removed")
        wait_subscribed(page, "presence-room")
        return page

    members = "(function () { var all = []; pusher.channel('presence-room').members.each(" \
              "function (m) { all.push([m.id, m.info]); }); return all.sort(); })()"

    ann = presence_page("ann", "Ann")
    assert evaluate(ann, "pusher.channel('presence-room').members.count") == 1
    assert evaluate(ann, "pusher.channel('presence-room').members.me") == {"id": "ann", "info": {"name": "Ann"}}

    bob = presence_page("bob", "Bob")
    assert evaluate(bob, "pusher.channel('presence-room').members.count") == 2
    assert evaluate(bob, members) == [["ann", {"name": "Ann"}], ["bob", {"name": "Bob"}]]
    assert evaluate(bob, "pusher.channel('presence-room').members.me.id") == "bob"
    assert evaluate(bob, "pusher.channel('presence-room').members.get('ann').info") == {"name": "Ann"}

    [added] = wait_event(ann, "presence-room/pusher:member_added")
    assert added["data"] == {"id": "bob", "info": {"name": "Bob"}}
    assert evaluate(ann, "pusher.channel('presence-room').members.count") == 2
    assert evaluate(ann, members) == [["ann", {"name": "Ann"}], ["bob", {"name": "Bob"}]]

    bob.get("about:blank")  # Bob leaves the page: his socket closes
    [removed] = wait_event(ann, "presence-room/pusher:member_removed")
    assert removed["data"]["id"] == "bob"
    assert evaluate(ann, "pusher.channel('presence-room').members.count") == 1
    assert evaluate(ann, members) == [["ann", {"name": "Ann"}]]

    signed = sorted(form["channel_name"] + ":" + form["user_id"] for form in web_backend.auth_requests())
    assert signed == ["presence-room:ann", "presence-room:bob"]


def test_client_event_reaches_the_other_page(pusher_server, browser, web_backend):
    web_backend.set_app(APP["key"], APP["secret"])
    sender = open_client(browser, web_backend, pusher_server.port, {"authEndpoint": "/pusher/auth"})
    receiver = open_client(browser, web_backend, pusher_server.port, {"authEndpoint": "/pusher/auth"})
    for page in (sender, receiver):
        subscribe(page, "private-chat", "client-typing")
        wait_subscribed(page, "private-chat")

    assert evaluate(sender, "pusher.channel('private-chat').trigger('client-typing', {who: 'ann', on: true})") is True

    [event] = wait_event(receiver, "private-chat/client-typing")
    assert event["data"] == {"who": "ann", "on": True}


def test_connection_states_disconnect_and_connect_again(pusher_server, browser, web_backend):
    page = open_client(browser, web_backend, pusher_server.port, {})
    subscribe(page, "news", "update")
    wait_subscribed(page, "news")
    first_socket = evaluate(page, "pusher.socket_id")

    page.execute_script("pusher.disconnect()")
    assert evaluate(page, "pusher.state") == "disconnected"
    assert evaluate(page, "pusher.socket_id") is None
    assert evaluate(page, "pusher.channel('news').subscribed") is False

    page.execute_script("pusher.connect()")
    wait_subscribed(page, "news")
    assert evaluate(page, "pusher.socket_id") != first_socket
    assert evaluate(page, "states") == [
        "initialized>connecting", "connecting>connected", "connected>disconnected",
        "disconnected>connecting", "connecting>connected"]

    pusher_server.rest().trigger("news", "update", {"after": "reconnect"})
    [event] = wait_event(page, "news/update")
    assert event["data"] == {"after": "reconnect"}


def test_client_pings_after_silence_and_stays_connected(pusher_server, browser, web_backend):
    page = open_client(browser, web_backend, pusher_server.port, {"activityTimeout": 500})
    page.execute_script("pusher.bind('message', function (m) { if (m.event === 'pusher:pong') log.push({name: 'pong'}); })")
    wait_js(page, "pusher.state === 'connected'")
    socket_id = evaluate(page, "pusher.socket_id")

    wait_event(page, "pong", count=2)  # two rounds of ping after 0.5 s of silence, each answered
    assert evaluate(page, "pusher.state") == "connected"
    assert evaluate(page, "pusher.socket_id") == socket_id


def test_unknown_app_key_fails_without_a_reconnect_loop(pusher_server, browser, web_backend):
    page = open_client(browser, web_backend, pusher_server.port, {}, key="no-such-key")

    wait_js(page, "pusher.state === 'failed'", message="state failed")
    errors = evaluate(page, "received('error')")
    assert [e["data"]["data"]["code"] for e in errors] == [4001], errors
    # Nothing pending: no socket, no reconnect timer ...
    assert evaluate(page, "pusher.socket === null && Object.keys(pusher._timers).length === 0") is True
    # ... and a second later still only the one attempt (a backoff retry would come within 1 s).
    time.sleep(1.2)
    assert evaluate(page, "states") == ["initialized>connecting", "connecting>failed"]


# ----------------------------------------------------------------------------------------------
# Reconnect across a server restart on the same port
# ----------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_pages_reconnect_and_resubscribe_after_a_restart(bridge, tmp_path, browser, web_backend):
    config = tmp_path / "bridge.json"
    write_config_file(config, [APP], None)
    port = free_port()
    flags = ("--config", str(config), "--port", str(port), "--data-dir", str(tmp_path / "data"))
    first = bridge(*flags, port=False, echo_path=None)
    assert first.port == port

    web_backend.set_app(APP["key"], APP["secret"])
    page = open_client(browser, web_backend, port, {"authEndpoint": "/pusher/auth"})
    for channel in ("news", "private-orders"):
        subscribe(page, channel, "update")
        wait_subscribed(page, channel)
    first_socket = evaluate(page, "pusher.socket_id")

    first.send_signal(signal.SIGTERM)  # bridge closes its connections with 4200
    assert first.wait(10) is not None, "bridge still running 10 s after SIGTERM"
    wait_js(page, "pusher.state !== 'connected'", message="the page noticed the shutdown")
    second = bridge(*flags, port=False, echo_path=None)
    assert second.port == port

    wait_js(page, "pusher.state === 'connected' && pusher.channel('news').subscribed "
                  "&& pusher.channel('private-orders').subscribed", 15, message="reconnected and resubscribed")
    assert evaluate(page, "pusher.socket_id") != first_socket
    assert "connected>connecting" in evaluate(page, "states")
    # "error" told of the shutdown (pusher:error 4200) and of the refused attempts, nothing else.
    errors = evaluate(page, "received('error')")
    assert errors[0]["data"] == {"type": "PusherError", "data": {"code": 4200, "message": errors[0]["data"]["data"]["message"]}}
    assert {e["data"]["type"] for e in errors[1:]} <= {"WebSocketError"}, errors

    rest = make_rest(port, APP["id"], APP["key"], APP["secret"])
    rest.trigger("news", "update", {"n": 1})
    rest.trigger("private-orders", "update", {"n": 2})
    assert wait_event(page, "news/update")[0]["data"] == {"n": 1}
    assert wait_event(page, "private-orders/update")[0]["data"] == {"n": 2}
    # The private channel was signed again for the new socket.
    assert [a["socket_id"] for a in web_backend.auth_requests()] == [first_socket, evaluate(page, "pusher.socket_id")]


# ----------------------------------------------------------------------------------------------
# The article: a Rails page with a JWT from POST /api/sessions, the seed API
# ----------------------------------------------------------------------------------------------

# app/views/layouts/application.html.erb (Rails' default layout, plus the article's script tag
# after </body>); application.js = jQuery + the article's code. Only the host and http differ.
ARTICLE_LAYOUT = """<!DOCTYPE html>
<html>
  <head>
    <title>Chat</title>
    <style>
.fixedContainer {{
  height: 250px;
  width: 100%;
  padding:3px;
  border: 1px solid black;
  margin: 5px;
  overflow: auto;
}}

body {{
  font-family: Helvetica, Arial
}}
    </style>
    <script src="/jquery.js"></script>
    <script src="/application.js"></script>
  </head>
  <body>
{body}
  </body>
</html>
<script src="http://{pusher_host}/js/pusher.js"></script>
"""

# app/views/page/index.html.erb
ARTICLE_VIEW = """<h1>Ex Pusher Lite - Rails Integration Example</h1>

<script type="text/javascript" charset="utf-8">
  window.guardian_token = "{guardian_token}";
  window.org_id = "{org_id}"
  window.app_key = "{app_key}";
  window.pusher_host = "{pusher_host}";
</script>

<div id="chat" class="fixedContainer">
</div>

<input type="text" name="name" id="name" value="" placeholder="Name"/>
<input type="text" name="message" id="message" value="" placeholder="Message"/>
<input type="checkbox" name="channel" id="channel" value="api"/>
<label for="channel">send through API</label>
"""

# app/assets/javascripts/application.js, the article's code (https:// → http://).
ARTICLE_APPLICATION_JS = r"""
$(document).ready(function() {
  var PusherLite = require("pusher_lite").default;

  var pusher = new PusherLite(window.app_key, {
    host: window.pusher_host,
    jwt: window.guardian_token,
    uniqueUserId: "robot" })
    // ssl: true - if you're connecting to my online server

  var publicChannel = pusher.subscribe("general")

  publicChannel.bind("new_message", function(payload) {
    var chat = $("#chat")
    chat.append("<p><strong>" + payload.name + "</strong> " + payload.message + "</p>");
    chat.scrollTop(chat.prop("scrollHeight"));
  })

  pusher.joinAll();

  var message_element = $("#message");
  message_element.on('keypress', function(event) {
    if (event.keyCode != 13) { return; }

    var name_element    = $("#name");
    var check_element   = $("#channel");
    var payload = { name: name_element.val(), message: message_element.val() };

    if(!check_element.prop("checked")) {
      sendPusher(payload);
    } else {
      sendAPI(payload)
    }
    message_element.val('');
  });

  window.publicChannel = publicChannel;
})

function sendPusher(payload) {
  console.log("sending through socket")
  window.publicChannel.trigger('new_message', payload );
}

function sendAPI(payload) {
  console.log("sending through API")
  $.ajax({
    type : 'POST',
    crossDomain: true,
    url : makeURL("new_message"),
    headers : { Authorization : 'Bearer ' + window.guardian_token },
    data : payload,
    success : function(response) {
      console.log(response);
      console.log("sent through API successfully");
    },
    error : function(xhr, status, error) {
      console.log(error);
    }
  });
}

function makeURL(event) {
  return "http://" + window.pusher_host + "/api/organizations/" + window.org_id + "/applications/" + window.app_key + "/event/" + event;
}
"""


def cli_json(*args: str) -> dict:
    done = run_bridge_once(list(args) + ["--json"])
    assert done.returncode == 0, f"bridge {' '.join(args)}: exit {done.returncode}: {done.stderr.decode()}"
    return json.loads(done.stdout)


@pytest.fixture
def seed_server(bridge, tmp_path):
    """bridge with organization acme-inc and its app "chat", created with the CLI beforehand.
    Returns (server, org JSON, app JSON)."""
    data_dir = str(tmp_path / "seed-data")
    org = cli_json("orgs", "create", "acme-inc", "--data-dir", data_dir)
    app = cli_json("apps", "create", "--org", "acme-inc", "--name", "chat", "--data-dir", data_dir)
    server = bridge("--data-dir", data_dir)
    return server, org, app


def serve_article(backend, port: int, org: dict, app: dict) -> None:
    """The Rails app of the article: PageController#index fetches a JWT server-side per view."""
    host = f"127.0.0.1:{port}"

    def index() -> str:
        view = ARTICLE_VIEW.format(guardian_token=fetch_session_jwt(port, org["secret_token"]),
                                   org_id=org["slug"], app_key=app["key"], pusher_host=host)
        return ARTICLE_LAYOUT.format(body=view, pusher_host=host)

    backend.page("/", index)
    backend.route("/application.js", lambda _: (200, "application/javascript", ARTICLE_APPLICATION_JS.encode()))


def open_article(browser, backend):
    page = browser()
    page.get(backend.url("/"))
    wait_js(page, "window.publicChannel && window.publicChannel.subscribed", message="article page joined general")
    return page


def type_message(page, name: str, message: str) -> None:
    name_input = page.find_element(By.ID, "name")
    name_input.clear()
    name_input.send_keys(name)
    page.find_element(By.ID, "message").send_keys(message, Keys.ENTER)


def chat_lines(page) -> list[str]:
    return evaluate(page, "$('#chat p').map(function () { return $(this).html(); }).get()")


def chat_over_socket_and_api(ann, bob, socket_text: str, api_text: str) -> None:
    """The article's two ways to send, each seen by both pages: ann over the socket, bob (checkbox
    checked) through the cross-origin event API."""
    # Checkbox unchecked: channel.trigger over the WebSocket; the seed echoes it to the sender too.
    type_message(ann, "ann", socket_text)
    line = "<strong>ann</strong> " + socket_text
    for page in (bob, ann):
        wait_js(page, f"$('#chat p').length >= 1 && $('#chat').html().indexOf({json.dumps(line)}) >= 0",
                message="socket message in #chat")
    assert evaluate(ann, "$('#message').val()") == ""
    assert any("sending through socket" in entry for entry in console_logs(ann))

    # Checkbox checked: a cross-origin $.ajax POST to the event API with the Bearer JWT.
    bob.find_element(By.ID, "channel").click()
    assert evaluate(bob, "$('#channel').prop('checked')") is True
    type_message(bob, "bob", api_text)
    line = "<strong>bob</strong> " + api_text
    for page in (ann, bob):
        wait_js(page, f"$('#chat').html().indexOf({json.dumps(line)}) >= 0", message="API message in #chat")
    # The CORS answer reached jQuery's success callback (a preflight failure would not).
    wait_until(lambda: any("sent through API successfully" in entry for entry in console_logs(bob)),
               message="success callback of $.ajax")
    assert any("sending through API" in entry for entry in console_logs(bob))


def test_article_chat_over_the_socket_and_through_the_api(seed_server, browser, web_backend):
    server, org, app = seed_server
    serve_article(web_backend, server.port, org, app)
    ann = open_article(browser, web_backend)
    bob = open_article(browser, web_backend)

    chat_over_socket_and_api(ann, bob, "hello over the socket", "hello through the API")

    assert chat_lines(ann) == chat_lines(bob) == [
        "<strong>ann</strong> hello over the socket", "<strong>bob</strong> hello through the API"]
    assert web_backend.auth_requests() == []  # JWT mode: no auth endpoint anywhere


def test_article_pages_share_presence_in_jwt_mode(seed_server, browser, web_backend):
    server, org, app = seed_server

    def jwt_page(user: str):
        page = open_client(browser, web_backend, server.port, {
            "jwt": fetch_session_jwt(server.port, org["secret_token"]), "uniqueUserId": user}, key=app["key"])
        subscribe(page, "presence-room", "pusher:member_added", "pusher:member_removed")
        wait_subscribed(page, "presence-room")
        return page

    ann = jwt_page("ann")
    bob = jwt_page("bob")

    [added] = wait_event(ann, "presence-room/pusher:member_added")
    assert added["data"]["id"] == "bob"
    for page, me in ((ann, "ann"), (bob, "bob")):
        assert evaluate(page, "pusher.channel('presence-room').members.count") == 2
        assert evaluate(page, "pusher.channel('presence-room').members.me.id") == me
        ids = evaluate(page, "(function () { var ids = []; pusher.channel('presence-room').members.each("
                             "function (m) { ids.push(m.id); }); return ids.sort(); })()")
        assert ids == ["ann", "bob"]

    bob.get("about:blank")
    [removed] = wait_event(ann, "presence-room/pusher:member_removed")
    assert removed["data"]["id"] == "bob"
    assert web_backend.auth_requests() == []  # no auth endpoint was asked


def test_invalid_jwt_is_refused_without_reconnecting(seed_server, browser, web_backend):
    server, org, app = seed_server
    jwt = fetch_session_jwt(server.port, org["secret_token"])
    header, claims, signature = jwt.split(".")
    tampered = f"{header}.{claims}.{signature[:-4]}AAAA"
    page = open_client(browser, web_backend, server.port, {"jwt": tampered}, key=app["key"])

    wait_js(page, "pusher.state === 'failed'", message="state failed")
    assert [e["data"]["data"]["code"] for e in evaluate(page, "received('error')")] == [4009]
    assert evaluate(page, "pusher.socket === null && Object.keys(pusher._timers).length === 0") is True


def test_trigger_before_the_subscription_succeeds_is_sent_once_it_does(seed_server, browser, web_backend):
    server, org, app = seed_server

    def jwt_page():
        return open_client(browser, web_backend, server.port, {
            "jwt": fetch_session_jwt(server.port, org["secret_token"]), "uniqueUserId": "robot"}, key=app["key"])

    listener = jwt_page()
    subscribe(listener, "general", "new_message")
    wait_subscribed(listener, "general")

    # The README's snippet: subscribe, joinAll and trigger in one go, before any answer.
    sender = jwt_page()
    sender.execute_script("""
        var general = pusher.subscribe('general');
        general.bind('new_message', record('general/new_message'));
        pusher.joinAll();
        window.subscribedWhenTriggered = general.subscribed;
        window.accepted = general.trigger('new_message', {name: 'ana', message: 'hello'});
    """)
    assert evaluate(sender, "[subscribedWhenTriggered, accepted]") == [False, True]
    wait_subscribed(sender, "general")
    assert evaluate(sender, "pusher.channel('general').trigger('new_message', {name: 'ana', message: 'bye'})") is True

    # Each page gets both, once each and in order (the sender its own echo, as in the seed).
    for page in (listener, sender):
        events = wait_event(page, "general/new_message", count=2)
        assert [e["data"] for e in events] == [{"name": "ana", "message": "hello"}, {"name": "ana", "message": "bye"}]
        assert len(evaluate(page, "received('general/new_message')")) == 2
