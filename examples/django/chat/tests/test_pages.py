"""The pages: joining, the chat page and the configuration it hands the browser, the presence
auth endpoint, the history page, and settings from the environment."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from django.test import Client, TestCase
from django.utils import timezone

from chat.models import Message

from .helpers import bridge_default_app, hmac_hex, join

CONFIG_RE = re.compile(r'<script id="bridge-config" type="application/json">(.*?)</script>', re.S)


@bridge_default_app
class ChatPageTests(TestCase):
    def page_config(self, response) -> dict:
        match = CONFIG_RE.search(response.content.decode())
        self.assertIsNotNone(match, "no bridge-config script in the page")
        return json.loads(match.group(1))

    def test_a_newcomer_is_asked_for_a_name(self):
        response = self.client.get("/")
        self.assertContains(response, 'action="/join"')
        self.assertNotContains(response, "pusher.js")

    def test_joining_needs_a_name(self):
        self.assertEqual(self.client.post("/join", {"name": "  "}).status_code, 400)
        self.assertContains(self.client.get("/"), 'action="/join"')

    def test_the_page_loads_bridges_client_with_the_default_app(self):
        join(self.client, "ann")
        response = self.client.get("/")
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, '<script src="http://127.0.0.1:6001/js/pusher.js"></script>', html=True)
        config = self.page_config(response)
        user = config.pop("user")
        self.assertEqual(config, {"key": "app-key", "host": "127.0.0.1:6001", "ssl": False,
                                  "channel": "presence-chat", "authEndpoint": "/pusher/auth"})
        self.assertEqual(user["name"], "ann")
        self.assertRegex(user["id"], r"\A[0-9a-f]{32}\Z")
        self.assertNotContains(response, "app-secret")
        self.assertContains(response, "csrfmiddlewaretoken")

    def test_the_page_follows_the_settings(self):
        join(self.client, "ann")
        with self.settings(PUSHER_KEY="chat-key", PUSHER_HOST="bridge.example.com", PUSHER_PORT=443,
                           PUSHER_SSL=True, PUSHER_SECRET="s3cret"):
            response = self.client.get("/")
        self.assertContains(response, 'src="https://bridge.example.com:443/js/pusher.js"')
        config = self.page_config(response)
        self.assertEqual((config["key"], config["host"], config["ssl"]), ("chat-key", "bridge.example.com:443", True))
        self.assertNotContains(response, "s3cret")

    def test_the_page_shows_recent_messages_in_order_escaped(self):
        now = timezone.now()
        Message.objects.create(uid="m-2", user_id="u", user_name="<b>eve</b>", text="<script>x</script>",
                               source=Message.Source.FORM, sent_at=now)
        Message.objects.create(uid="m-1", user_id="u", user_name="ann", text="earlier",
                               source=Message.Source.CLIENT_EVENT, sent_at=now - timezone.timedelta(seconds=1))
        join(self.client, "ann")
        response = self.client.get("/")
        body = response.content.decode()
        self.assertLess(body.index('data-id="m-1"'), body.index('data-id="m-2"'))
        self.assertContains(response, "&lt;script&gt;x&lt;/script&gt;")
        self.assertNotContains(response, "<script>x</script>")


@bridge_default_app
class PusherAuthTests(TestCase):
    def test_the_presence_subscription_is_signed_as_the_sessions_user(self):
        join(self.client, "ann")
        user = self.client.session["chat_user"]
        response = self.client.post("/pusher/auth", {"socket_id": "1234.5678", "channel_name": "presence-chat"})
        self.assertEqual(response.status_code, 200)
        answer = response.json()
        channel_data = json.loads(answer["channel_data"])
        self.assertEqual(channel_data, {"user_id": user["id"], "user_info": {"name": "ann"}})
        expected = hmac_hex(f"1234.5678:presence-chat:{answer['channel_data']}")
        self.assertEqual(answer["auth"], f"app-key:{expected}")

    def test_refusals(self):
        self.assertEqual(self.client.post("/pusher/auth", {"socket_id": "1.2", "channel_name": "presence-chat"})
                         .status_code, 403, "no session")
        join(self.client, "ann")
        self.assertEqual(self.client.post("/pusher/auth", {"socket_id": "1.2", "channel_name": "presence-other"})
                         .status_code, 403, "another channel")
        self.assertEqual(self.client.post("/pusher/auth", {"socket_id": "x", "channel_name": "presence-chat"})
                         .status_code, 400, "malformed socket id")

    def test_the_endpoint_needs_the_csrf_token(self):
        client = Client(enforce_csrf_checks=True)
        page = client.get("/")
        token = page.cookies["csrftoken"].value
        client.post("/join", {"name": "ann", "csrfmiddlewaretoken": token})
        form = {"socket_id": "1.2", "channel_name": "presence-chat"}
        self.assertEqual(client.post("/pusher/auth", form).status_code, 403)
        self.assertEqual(client.post("/pusher/auth", form, headers={"X-CSRFToken": token}).status_code, 200)


@bridge_default_app
class HistoryTests(TestCase):
    def test_history_lists_stored_messages_in_order(self):
        now = timezone.now()
        Message.objects.create(uid="b", user_id="u2", user_name="bob", text="second",
                               source=Message.Source.CLIENT_EVENT, sent_at=now)
        Message.objects.create(uid="a", user_id="u1", user_name="ann", text="first",
                               source=Message.Source.FORM, sent_at=now - timezone.timedelta(seconds=1))
        response = self.client.get("/history")
        self.assertEqual(response.status_code, 200)
        body = response.content.decode()
        self.assertLess(body.index("first"), body.index("second"))
        self.assertContains(response, "client event, from a webhook")

    def test_empty_history(self):
        self.assertContains(self.client.get("/history"), "No messages yet.")


class EnvironmentTests(TestCase):
    def test_settings_come_from_the_environment_with_bridges_defaults(self):
        script = ("import django, json; django.setup(); from django.conf import settings as s; "
                  "print(json.dumps([s.PUSHER_APP_ID, s.PUSHER_KEY, s.PUSHER_SECRET, s.PUSHER_HOST, s.PUSHER_PORT]))")
        base = {k: v for k, v in os.environ.items() if not k.startswith("PUSHER_")}
        base["DJANGO_SETTINGS_MODULE"] = "chatsite.settings"
        project = Path(__file__).resolve().parents[2]

        def read(extra: dict) -> list:
            run = subprocess.run([sys.executable, "-c", script], env={**base, **extra}, cwd=project,
                                 capture_output=True, text=True, timeout=30, check=True)
            return json.loads(run.stdout)

        self.assertEqual(read({}), ["1", "app-key", "app-secret", "127.0.0.1", 6001])
        self.assertEqual(read({"PUSHER_APP_ID": "42", "PUSHER_KEY": "k", "PUSHER_SECRET": "s",
                               "PUSHER_HOST": "bridge.internal", "PUSHER_PORT": "7001"}),
                         ["42", "k", "s", "bridge.internal", 7001])
