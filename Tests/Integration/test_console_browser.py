"""The debug console page (GET /console) in headless Chromium against a real bridge: it signs in
with a credential (kept in sessionStorage), lists the apps the credential sees, shows live stats
and the event log (an event published with the official `pusher` library appears, its data shown
as text, never as HTML), and sends an event through its form to a real WebSocket subscriber."""

from __future__ import annotations

import json
import urllib.request

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from browser_helpers import browser, evaluate, wait_js  # noqa: F401 - `browser` is a fixture
from pusher_helpers import make_app

ADMIN_TOKEN = "console-admin-token-0123456789"
# Event data that would run script if the page ever parsed it as HTML.
HOSTILE = '<img src=x onerror="document.title=\'pwned\'"><b>bold</b>'


@pytest.fixture
def server(pusher_bridge):
    return pusher_bridge([make_app("1", name="first"), make_app("2", name="second")],
                         "--admin-token", ADMIN_TOKEN)


def open_console(driver, port: int, credential: str) -> None:
    driver.get(f"http://127.0.0.1:{port}/console")
    field = driver.find_element(By.ID, "credential")
    field.clear()
    field.send_keys(credential)
    driver.find_element(By.ID, "connect").click()
    wait_until_watching(driver)


def wait_until_watching(driver) -> None:
    """The dashboard is up and the log was polled once (so the server records from now on)."""
    wait_js(driver, "!document.getElementById('dashboard').hidden && "
                    "document.getElementById('log').dataset.next !== undefined", message="console polling")


def log_rows(driver) -> list[dict]:
    return evaluate(driver, """Array.from(document.querySelectorAll('#log tbody tr')).map(function (row) {
        return {type: row.dataset.type, channel: row.querySelector('.channel').textContent,
                event: row.querySelector('.event').textContent, data: row.querySelector('.data').textContent,
                detail: row.querySelector('.detail').textContent};
    })""")


def test_the_console_shows_an_http_api_event_and_live_stats(server, browser):  # noqa: F811
    driver = browser()
    open_console(driver, server.port, ADMIN_TOKEN)
    options = [o.text for o in Select(driver.find_element(By.ID, "app")).options]
    assert options == ["first (1)", "second (2)"], options
    wait_js(driver, "document.getElementById('connections').textContent === '0'")

    with server.ws(0) as subscriber:
        subscriber.subscribe_ok("news")
        wait_js(driver, "document.getElementById('connections').textContent === '1' && "
                        "document.querySelector('#channels tr[data-channel=\"news\"]') !== null",
                message="stats with the subscriber")
        cells = evaluate(driver, "Array.from(document.querySelectorAll('#channels tr[data-channel=\"news\"] td'))"
                                 ".map(function (td) { return td.textContent; })")
        assert cells == ["news", "1", ""], cells

        server.rest(0).trigger("news", "breaking", {"headline": HOSTILE})
        subscriber.wait_for("breaking", "news")
        wait_js(driver, "document.querySelector('#log tr[data-type=\"api_message\"]') !== null",
                message="the API message in the log")

    rows = log_rows(driver)
    message = next(row for row in rows if row["type"] == "api_message")
    assert message["channel"] == "news" and message["event"] == "breaking", rows
    assert json.loads(message["data"]) == {"headline": HOSTILE}, message
    # Shown as text: no element was made from it and nothing ran.
    assert evaluate(driver, "document.querySelectorAll('#log img, #log b').length") == 0
    assert driver.title == "Bridge debug console"
    assert any(row["type"] == "subscribed" and row["channel"] == "news" for row in rows), rows
    # Newest first: the subscription came before the message.
    types = [row["type"] for row in rows]
    assert types.index("api_message") < types.index("subscribed"), types

    # The credential survives a reload of the tab (sessionStorage), and the app choice too.
    Select(driver.find_element(By.ID, "app")).select_by_value("2")
    wait_until_watching(driver)
    driver.refresh()
    wait_until_watching(driver)
    assert Select(driver.find_element(By.ID, "app")).first_selected_option.get_attribute("value") == "2"
    assert evaluate(driver, "sessionStorage.getItem('bridge-console-credential')") == ADMIN_TOKEN
    # The page as served carries no secret: everything comes from the API with the credential.
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/console", timeout=5) as response:
        page = response.read().decode()
    assert "Bridge debug console" in page
    assert ADMIN_TOKEN not in page and "secret-1" not in page and "key-1" not in page
    

def test_the_console_sends_an_event_that_a_subscriber_receives(server, browser):  # noqa: F811
    driver = browser()
    # An app's own key:secret: it sees that app only.
    open_console(driver, server.port, "key-2:secret-2")
    options = [o.get_attribute("value") for o in Select(driver.find_element(By.ID, "app")).options]
    assert options == ["2"], options

    with server.ws(1) as subscriber:
        subscriber.subscribe_ok("orders")
        for field, value in [("send-channel", "orders"), ("send-event", "order-placed"),
                             ("send-data", '{"id": 42, "items": ["tea", "<script>"]}')]:
            element = driver.find_element(By.ID, field)
            element.clear()
            element.send_keys(value)
        driver.find_element(By.ID, "send").click()
        frame = subscriber.wait_for("order-placed", "orders")
        assert json.loads(frame["data"]) == {"id": 42, "items": ["tea", "<script>"]}, frame.raw
        wait_js(driver, "document.getElementById('send-status').textContent === 'Sent.'")
        wait_js(driver, "Array.from(document.querySelectorAll('#log tr[data-type=\"api_message\"] .event'))"
                        ".some(function (td) { return td.textContent === 'order-placed'; })",
                message="the sent event in the log")

        # Data that is not JSON is refused in the page; a bad channel name by the server.
        data = driver.find_element(By.ID, "send-data")
        data.clear()
        data.send_keys("{not json")
        driver.find_element(By.ID, "send").click()
        wait_js(driver, "document.getElementById('send-status').textContent.indexOf('Data must be JSON') === 0")
        data.clear()
        data.send_keys('"text"')
        channel = driver.find_element(By.ID, "send-channel")
        channel.clear()
        channel.send_keys("bad channel!")
        driver.find_element(By.ID, "send").click()
        wait_js(driver, "document.getElementById('send-status').textContent.indexOf('Invalid channel name') === 0")
        subscriber.assert_silent(0.2, lambda frame: frame.get("channel") == "orders")


def test_a_wrong_credential_is_refused(server, browser):  # noqa: F811
    driver = browser()
    driver.get(f"http://127.0.0.1:{server.port}/console")
    driver.find_element(By.ID, "credential").send_keys("key-1:secret-2")
    driver.find_element(By.ID, "connect").click()
    wait_js(driver, "document.getElementById('status').textContent === 'The credential was refused.'")
    assert evaluate(driver, "document.getElementById('dashboard').hidden") is True
    assert evaluate(driver, "sessionStorage.getItem('bridge-console-credential')") is None
