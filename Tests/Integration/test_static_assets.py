"""The static assets of `bridge serve`: the JS client at /js/pusher.js and the console page at
/console, read from the binary's resource bundle and served with gzip, ETags and caching headers.

Every server runs with its working directory in the test's tmp_path, so these tests also show that
the binary finds its resources wherever it is started from.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import subprocess

import pytest

import conftest
from conftest import REPO_ROOT, Conn, assert_date, assert_json_error, bridge_path, clean_env, get, http_request

STATIC_DIR = REPO_ROOT / "Sources" / "BridgeServer" / "Static"
RESOURCES = "Bridge_BridgeServer.resources"
JS_TYPE = "application/javascript; charset=utf-8"


@pytest.fixture(scope="module")
def client_js() -> bytes:
    return (STATIC_DIR / "pusher.js").read_bytes()


def strong_tag(content: bytes, suffix: str = "") -> str:
    return '"' + hashlib.sha1(content).hexdigest() + suffix + '"'


def exchange(port: int, *requests: bytes, head_only_first: bool = False):
    """Send `requests` pipelined on one connection and read one response each. A response that
    carried stray body bytes would corrupt the next one, so a HEAD or 304 followed by another
    request shows its emptiness on the wire."""
    with Conn(port) as conn:
        conn.send(b"".join(requests))
        first = conn.read_response(head_only=head_only_first)
        rest = [conn.read_response() for _ in requests[1:]]
    return [first, *rest]


HEALTH = http_request("GET", "/health")


def assert_health(response) -> None:
    assert response.status == 200 and json.loads(response.body) == {"status": "ok"}, response.head


# --- /js/pusher.js ------------------------------------------------------------------------------


def test_js_client_is_the_file_on_disk(bridge, client_js):
    server = bridge()
    response = get(server.port, "/js/pusher.js")
    assert response.status == 200, response.head
    assert response.body == client_js
    assert int(response.header("Content-Length")) == len(client_js)
    assert response.header("Content-Type") == JS_TYPE
    assert response.header("Content-Encoding") is None
    assert response.header("Cache-Control") == "public, max-age=300"
    assert response.header("ETag") == strong_tag(client_js)
    assert response.has_token("Vary", "Accept-Encoding")
    assert_date(response)


def test_js_client_gzipped_when_accepted(bridge, client_js):
    server = bridge()
    response = get(server.port, "/js/pusher.js", [("Accept-Encoding", "gzip, deflate, br")])
    assert response.status == 200, response.head
    assert response.header("Content-Encoding") == "gzip"
    assert int(response.header("Content-Length")) == len(response.body)
    assert len(response.body) < len(client_js)
    assert gzip.decompress(response.body) == client_js
    # A different representation, so a different strong tag (RFC 9110 §8.8.3.3).
    assert response.header("ETag") == strong_tag(client_js, "-gzip")
    assert response.has_token("Vary", "Accept-Encoding")
    assert response.header("Content-Type") == JS_TYPE


@pytest.mark.parametrize("accept, gzipped", [
    ("gzip;q=0", False),
    ("gzip;q=0, *", False),
    ("gzip;q=0.4, identity;q=0.5", False),
    ("br", False),
    ("identity;q=0", False),  # nothing else acceptable: identity all the same
    ("*", True),
    ("x-gzip", True),
    ("GZIP;q=0.5", True),
])
def test_accept_encoding_negotiation(bridge, client_js, accept, gzipped):
    server = bridge()
    response = get(server.port, "/js/pusher.js", [("Accept-Encoding", accept)])
    assert response.status == 200, response.head
    if gzipped:
        assert response.header("Content-Encoding") == "gzip"
        assert gzip.decompress(response.body) == client_js
    else:
        assert response.header("Content-Encoding") is None
        assert response.body == client_js


@pytest.mark.parametrize("accept", [None, "gzip"])
def test_etag_round_trip_gives_304_without_body(bridge, accept):
    server = bridge()
    headers = [("Accept-Encoding", accept)] if accept else []
    first = get(server.port, "/js/pusher.js", headers)
    etag = first.header("ETag")
    assert first.status == 200 and etag and not etag.startswith("W/"), first.head

    revalidate = http_request("GET", "/js/pusher.js", headers + [("If-None-Match", etag)])
    not_modified, after = exchange(server.port, revalidate, HEALTH)
    assert not_modified.status == 304, not_modified.head
    assert not_modified.header("ETag") == etag
    assert not_modified.header("Cache-Control") == "public, max-age=300"
    assert not_modified.header("Content-Length") is None
    assert_health(after)


@pytest.mark.parametrize("field", ['W/{tag}', '"stale", {tag}', "*"])
def test_if_none_match_lists_weak_tags_and_star(bridge, client_js, field):
    server = bridge()
    value = field.format(tag=strong_tag(client_js))
    response = get(server.port, "/js/pusher.js", [("If-None-Match", value)])
    assert response.status == 304, response.head


def test_stale_or_other_encodings_tag_gives_the_full_body(bridge, client_js):
    server = bridge()
    for tag in ['"stale"', strong_tag(client_js, "-gzip")]:
        response = get(server.port, "/js/pusher.js", [("If-None-Match", tag)])
        assert response.status == 200, response.head
        assert response.body == client_js


@pytest.mark.parametrize("accept", [None, "gzip"])
def test_head_gives_headers_only(bridge, client_js, accept):
    server = bridge()
    headers = [("Accept-Encoding", accept)] if accept else []
    full = get(server.port, "/js/pusher.js", headers)
    head, after = exchange(server.port, http_request("HEAD", "/js/pusher.js", headers), HEALTH,
                           head_only_first=True)
    assert head.status == 200, head.head
    assert head.body == b""
    assert int(head.header("Content-Length")) == len(full.body)
    for name in ("Content-Type", "Content-Encoding", "ETag", "Cache-Control"):
        assert head.header(name) == full.header(name), name
    assert_health(after)


def test_other_methods_are_refused(bridge):
    server = bridge()
    with Conn(server.port) as conn:
        conn.send(http_request("POST", "/js/pusher.js", body=b"x"))
        response = conn.read_response()
    assert_json_error(response, 405)
    assert response.has_token("Allow", "GET")


# --- /console -----------------------------------------------------------------------------------


def test_console_page(bridge):
    page = (STATIC_DIR / "console.html").read_bytes()
    server = bridge()
    response = get(server.port, "/console")
    assert response.status == 200, response.head
    assert response.header("Content-Type") == "text/html; charset=utf-8"
    assert response.body == page
    assert response.header("Cache-Control") == "no-cache"
    revalidated = get(server.port, "/console", [("If-None-Match", response.header("ETag"))])
    assert revalidated.status == 304, revalidated.head
    zipped = get(server.port, "/console", [("Accept-Encoding", "gzip")])
    if zipped.header("Content-Encoding") == "gzip":
        assert gzip.decompress(zipped.body) == page
    else:
        assert zipped.body == page


@pytest.mark.parametrize("path", ["/js/pusher.min.js", "/js/", "/js", "/pusher.js", "/js/pusher.js/x",
                                  "/console.html", "/Static/pusher.js"])
def test_unknown_static_paths_are_404(bridge, path):
    server = bridge()
    assert_json_error(get(server.port, path), 404)


# --- where the files come from ------------------------------------------------------------------


def copy_binary_with_static(tmp_path, files: dict[str, bytes]):
    """The binary copied into its own directory, with a resource bundle beside it holding `files`:
    the layout of an installed copy, which the bundle beside the binary serves first."""
    directory = tmp_path / "installed"
    static = directory / RESOURCES / "Static"
    static.mkdir(parents=True)
    for name, content in files.items():
        (static / name).write_bytes(content)
    binary = directory / "bridge"
    shutil.copy2(bridge_path(), binary)
    return binary


def test_a_copied_binary_serves_the_bundle_beside_it(bridge, tmp_path, monkeypatch):
    installed_js = b"// the installed copy\nwindow.PusherLite = function () {};\n"
    binary = copy_binary_with_static(tmp_path, {"pusher.js": installed_js, "console.html": b"<!doctype html>"})
    monkeypatch.setattr(conftest, "BRIDGE_BIN", binary)
    server = bridge()
    assert get(server.port, "/js/pusher.js").body == installed_js


def test_a_missing_static_file_fails_the_start(tmp_path):
    binary = copy_binary_with_static(tmp_path, {"pusher.js": b"// no console page"})
    result = subprocess.run([str(binary), "serve", "--host", "127.0.0.1", "--port", "0",
                             "--data-dir", str(tmp_path / "data")],
                            env=clean_env(), cwd=tmp_path, stdin=subprocess.DEVNULL,
                            capture_output=True, timeout=10)
    stderr = result.stderr.decode()
    assert result.returncode == 1, stderr
    assert "console.html" in stderr and "listening on" not in stderr, stderr
