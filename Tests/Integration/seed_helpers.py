"""Helpers for the seed API, organizations and the admin API (issue 5 contract).

- `seed_bridge(*flags, data_dir=None, admin_token=ADMIN_TOKEN, apps=None, env=None)` (fixture in
  conftest.py) starts `bridge serve` with a known --data-dir and --admin-token (and a config file
  when `apps` is given) and returns a SeedServer: admin API calls, sessions, the event endpoint,
  WebSocket clients in seed mode and the official `pusher` library for a store app.
- `run_cli(data_dir, *args)` runs `bridge orgs …` / `bridge apps …` to its exit.
- A JWT builder in pure Python (hmac, hashlib, base64) to forge and tamper with tokens.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import re
import subprocess
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pusher

from conftest import BridgeProcess, clean_env, wait_until  # noqa: F401 (wait_until: for the seed tests)
from pusher_helpers import ApiResult, PusherWS, make_rest, run_bridge_once, write_config_file

ADMIN_TOKEN = "admin-token-for-tests-0123456789"
JWT_SECRET = "jwt-secret-for-the-integration-tests-0123456789"
HEX40 = re.compile(r"\A[0-9a-f]{40}\Z")
HEX20 = re.compile(r"\A[0-9a-f]{20}\Z")
SEED_QUERY = "protocol=7&client=pusher-lite&version=1.0"
TIMEOUT = 5.0


# ----------------------------------------------------------------------------------------------
# JWT (RFC 7519 / RFC 7515 compact serialization, HS256)
# ----------------------------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def segment(value: Any) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def sign_jwt(claims: dict, key: str | bytes, header: dict | None = None,
             digest=hashlib.sha256) -> str:
    """header.claims.HMAC(key, header.claims) with `digest` (SHA-256 for HS256)."""
    header = header if header is not None else {"alg": "HS256", "typ": "JWT"}
    signing_input = f"{segment(header)}.{segment(claims)}"
    raw_key = key.encode() if isinstance(key, str) else key
    signature = hmac.new(raw_key, signing_input.encode(), digest).digest()
    return f"{signing_input}.{b64url(signature)}"


def unsigned_jwt(claims: dict) -> str:
    """RFC 7519 §6.1 "unsecured JWT": alg none and an empty signature."""
    return f"{segment({'alg': 'none', 'typ': 'JWT'})}.{segment(claims)}."


def decode_jwt(token: str) -> tuple[dict, dict, bytes]:
    """(header, claims, signature) of a compact JWT, without verifying it."""
    parts = token.split(".")
    assert len(parts) == 3, f"a JWT has three segments: {token!r}"
    return json.loads(b64url_decode(parts[0])), json.loads(b64url_decode(parts[1])), b64url_decode(parts[2])


def verifies(token: str, key: str | bytes) -> bool:
    """Whether `token`'s signature is HMAC-SHA256 of its first two segments under `key`."""
    head, _, signature = token.rpartition(".")
    raw_key = key.encode() if isinstance(key, str) else key
    expected = hmac.new(raw_key, head.encode(), hashlib.sha256).digest()
    return hmac.compare_digest(expected, b64url_decode(signature))


def with_claims(token: str, **changes: Any) -> str:
    """The token with its claims changed and its ORIGINAL signature kept (a tampered payload)."""
    parts = token.split(".")
    claims = json.loads(b64url_decode(parts[1]))
    claims.update(changes)
    return f"{parts[0]}.{segment(claims)}.{parts[2]}"


def flip_signature(token: str) -> str:
    """The token with one bit of its signature changed."""
    head, _, signature = token.rpartition(".")
    raw = bytearray(b64url_decode(signature))
    raw[0] ^= 0x01
    return f"{head}.{b64url(bytes(raw))}"


# ----------------------------------------------------------------------------------------------
# HTTP
# ----------------------------------------------------------------------------------------------


def request(port: int, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None) -> ApiResult:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return ApiResult(response.status, response.read(), response.getheaders())
    finally:
        conn.close()


def form(fields: dict[str, str]) -> bytes:
    """application/x-www-form-urlencoded, as jQuery's $.ajax sends an object."""
    return urllib.parse.urlencode(fields).encode()


def expect_error(result: ApiResult, status: int) -> str:
    """`status` with a JSON body of exactly {"error": "<non-empty string>"}; returns the message."""
    assert result.status == status, f"expected {status}, got {result!r}"
    assert (result.header("Content-Type") or "").startswith("application/json"), result.headers
    doc = result.json
    assert isinstance(doc, dict) and set(doc) == {"error"}, f"body {result.body!r}"
    assert isinstance(doc["error"], str) and doc["error"], f"body {result.body!r}"
    return doc["error"]


def expect_json(result: ApiResult, status: int) -> Any:
    assert result.status == status, f"expected {status}, got {result!r}"
    assert (result.header("Content-Type") or "").startswith("application/json"), result.headers
    return result.json


def event_path(org: str, app_key: str, event: str) -> str:
    return f"/api/organizations/{org}/applications/{app_key}/event/{event}"


# ----------------------------------------------------------------------------------------------
# The server
# ----------------------------------------------------------------------------------------------


class SeedServer:
    """A running `bridge serve` with a data dir (its organizations.json) and an admin token."""

    def __init__(self, proc: BridgeProcess, data_dir: Path, admin_token: str | None,
                 config: dict | None = None):
        self.proc = proc
        self.data_dir = data_dir
        self.admin_token = admin_token
        self.config = config

    @property
    def port(self) -> int:
        return self.proc.port

    @property
    def store_path(self) -> Path:
        return self.data_dir / "organizations.json"

    # --- plain HTTP ---

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> ApiResult:
        return request(self.port, method, path, body, headers)

    # --- admin API ---

    def admin(self, method: str, path: str, body: Any = None, token: str | None = "default",
              raw: bytes | None = None) -> ApiResult:
        """An admin API call; `token` None sends no Authorization, "default" the server's token."""
        headers = {}
        bearer = self.admin_token if token == "default" else token
        if bearer is not None:
            headers["Authorization"] = f"Bearer {bearer}"
        payload = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if payload is not None:
            headers["Content-Type"] = "application/json"
        return self.request(method, f"/admin{path}", payload, headers)

    def create_org(self, slug: str, name: str | None = None) -> dict:
        body = {"slug": slug} if name is None else {"slug": slug, "name": name}
        return expect_json(self.admin("POST", "/organizations", body), 201)

    def create_app(self, org: str, name: str = "chat", **settings: Any) -> dict:
        body = {"name": name, **settings}
        return expect_json(self.admin("POST", f"/organizations/{org}/applications", body), 201)

    def org(self, slug: str) -> dict:
        return expect_json(self.admin("GET", f"/organizations/{slug}"), 200)

    # --- seed API ---

    def session(self, token: str | None, as_json: bool = False) -> ApiResult:
        if as_json:
            body = json.dumps({} if token is None else {"token": token}).encode()
            return self.request("POST", "/api/sessions", body, {"Content-Type": "application/json"})
        body = form({} if token is None else {"token": token})
        return self.request("POST", "/api/sessions", body,
                            {"Content-Type": "application/x-www-form-urlencoded"})

    def jwt(self, org: dict) -> str:
        """A fresh JWT for `org` (the org JSON, its secret_token)."""
        return expect_json(self.session(org["secret_token"]), 200)["jwt"]

    def publish(self, org: str, app_key: str, event: str, fields: dict | None = None,
                jwt: str | None = None, as_json: bool = False, raw: bytes | None = None,
                authorization: str | None = None, headers: dict[str, str] | None = None) -> ApiResult:
        """POST to the event endpoint: form-encoded `fields` (JSON with `as_json`, or `raw` bytes)
        with `Authorization: Bearer jwt` (or `authorization` verbatim)."""
        sent = dict(headers or {})
        if authorization is not None:
            sent["Authorization"] = authorization
        elif jwt is not None:
            sent["Authorization"] = f"Bearer {jwt}"
        if raw is not None:
            body = raw
            sent.setdefault("Content-Type", "application/json" if as_json else
                            "application/x-www-form-urlencoded")
        elif as_json:
            body = json.dumps(fields or {}).encode()
            sent["Content-Type"] = "application/json"
        else:
            body = form(fields or {})
            sent["Content-Type"] = "application/x-www-form-urlencoded; charset=UTF-8"
        return self.request("POST", event_path(org, app_key, event), body, sent)

    # --- clients of an app ---

    def ws(self, app: dict, jwt: str | None = None, user_id: str | None = None,
           established: bool = True, timeout: float = TIMEOUT) -> PusherWS:
        """A Pusher WebSocket client of `app`, in seed mode when `jwt` is given."""
        return PusherWS(self.port, key=app["key"], query=seed_query(jwt, user_id),
                        established=established, rest=self.rest(app), timeout=timeout)

    def rest(self, app: dict, secret: str | None = None) -> pusher.Pusher:
        return make_rest(self.port, str(app["id"]), app["key"], secret or app["secret"])


def seed_query(jwt: str | None = None, user_id: str | None = None) -> str:
    query = SEED_QUERY
    if jwt is not None:
        query += "&jwt=" + urllib.parse.quote(jwt, safe="")
    if user_id is not None:
        query += "&user_id=" + urllib.parse.quote(user_id, safe="")
    return query


def seed_bridge_factory(bridge, tmp_path: Path):
    """The `seed_bridge` fixture of conftest.py: `start(*flags, data_dir=None,
    admin_token=ADMIN_TOKEN, apps=None, env=None)` → SeedServer. The same `data_dir` may be
    passed to a later server (a restart, once the first is stopped)."""
    count = 0

    def start(*flags: str, data_dir: Path | None = None, admin_token: str | None = ADMIN_TOKEN,
              apps: list[dict] | None = None, env: dict[str, str] | None = None) -> SeedServer:
        nonlocal count
        count += 1
        data_dir = data_dir or tmp_path / f"seed-data-{count}"
        args = ["--data-dir", str(data_dir)]
        if admin_token is not None:
            args += ["--admin-token", admin_token]
        config = None
        if apps is not None:
            path = tmp_path / f"seed-config-{count}.json"
            config = write_config_file(path, apps, None)
            args += ["--config", str(path)]
        proc = bridge(*args, *flags, env=env, echo_path=None)
        return SeedServer(proc, data_dir, admin_token, config)

    return start


def restart(server: SeedServer, seed_bridge, *flags: str, **kwargs: Any) -> SeedServer:
    """Stop `server` (SIGTERM) and start another on the same data dir and admin token."""
    assert server.proc.stop() is None
    kwargs.setdefault("admin_token", server.admin_token)
    return seed_bridge(*flags, data_dir=server.data_dir, **kwargs)


@dataclass
class Seeded:
    """A server with one org and one app in it, and a JWT of that org."""

    server: SeedServer
    org: dict
    app: dict
    jwt: str

    @property
    def slug(self) -> str:
        return self.org["slug"]

    def publish(self, event: str, fields: dict | None = None, **kwargs: Any) -> ApiResult:
        kwargs.setdefault("jwt", self.jwt)
        return self.server.publish(self.slug, self.app["key"], event, fields, **kwargs)

    def ws(self, jwt: str | None = None, user_id: str | None = None, **kwargs: Any) -> PusherWS:
        return self.server.ws(self.app, jwt, user_id, **kwargs)


def seeded(seed_bridge, *flags: str, slug: str = "acme-inc", **app_settings: Any) -> Seeded:
    """`seed_bridge(*flags)` with org `slug` and one app ("chat", `app_settings`) created through
    the admin API, and a JWT from /api/sessions."""
    server = seed_bridge(*flags)
    org = server.create_org(slug)
    app = server.create_app(slug, "chat", **app_settings)
    return Seeded(server, org, app, server.jwt(org))


# ----------------------------------------------------------------------------------------------
# The CLI
# ----------------------------------------------------------------------------------------------


@dataclass
class CLIResult:
    args: list[str]
    code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        assert self.code == 0, self
        return json.loads(self.stdout)

    def __repr__(self) -> str:
        return f"`bridge {' '.join(self.args)}` → {self.code}\nstdout: {self.stdout[:600]}\nstderr: {self.stderr[:600]}"


def run_cli(data_dir: Path, *args: str, as_json: bool = True, env: dict[str, str] | None = None) -> CLIResult:
    """`bridge ARGS --data-dir DIR [--json]` to its exit."""
    full = [*args, "--data-dir", str(data_dir)] + (["--json"] if as_json else [])
    done = run_bridge_once(full, env=env)
    return CLIResult(full, done.returncode, done.stdout.decode("utf-8", "replace"),
                     done.stderr.decode("utf-8", "replace"))


def cli_ok(data_dir: Path, *args: str) -> Any:
    """The JSON printed by a successful `bridge ARGS --json`."""
    result = run_cli(data_dir, *args)
    assert result.code == 0, result
    return result.json


def expect_cli_error(result: CLIResult, code: int | None, mention: str | None = None) -> str:
    """Exit `code` (any non-zero when None) and exactly one `bridge: …` line on stderr."""
    if code is None:
        assert result.code != 0, result
    else:
        assert result.code == code, result
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("bridge: "), result
    if mention is not None:
        assert mention.lower() in lines[0].lower(), f"{mention!r} not named in {lines[0]!r}"
    return lines[0]


def spawn_cli(data_dir: Path, *args: str) -> subprocess.Popen:
    """`bridge ARGS --data-dir DIR --json` started, not waited for (concurrency tests)."""
    from conftest import bridge_path

    return subprocess.Popen([str(bridge_path()), *args, "--data-dir", str(data_dir), "--json"],
                            env=clean_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


# ----------------------------------------------------------------------------------------------
# Checks shared by the test files
# ----------------------------------------------------------------------------------------------


def assert_org_json(org: Any, slug: str) -> None:
    assert isinstance(org, dict), org
    assert {"slug", "name", "secret_token", "created_at", "applications"} <= set(org), org
    assert org["slug"] == slug, org
    assert isinstance(org["name"], str) and org["name"], org
    assert HEX40.match(org["secret_token"]), org
    assert isinstance(org["applications"], list), org


def assert_app_json(app: Any, org: str, name: str, default_channel: str = "general") -> None:
    assert isinstance(app, dict), app
    assert {"id", "key", "secret", "name", "organization", "default_channel"} <= set(app), app
    assert isinstance(app["id"], str) and app["id"].isdigit() and int(app["id"]) >= 1001, app
    assert HEX20.match(app["key"]), app
    assert HEX40.match(app["secret"]), app
    assert app["name"] == name and app["organization"] == org, app
    assert app["default_channel"] == default_channel, app


