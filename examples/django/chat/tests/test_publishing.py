"""Publishing: the worker sends a message typed into the form to Bridge as a signed HTTP API
request. A real HTTP server stands in for Bridge; the signature is checked here independently of
the `pusher` library, following the Pusher HTTP API's signing rules."""

import hashlib
import json
import time
from unittest import mock

from django.test import TransactionTestCase
from django.utils import timezone

from chat.jobs import publish_message, resume_pending, worker
from chat.models import Message

from .fake_bridge import FakeBridge, RecordedRequest
from .helpers import bridge_default_app, hmac_hex, join

WAIT = 10.0


def make_message(uid: str = "m-1", text: str = "hello") -> Message:
    return Message.objects.create(uid=uid, user_id="u-ann", user_name="ann", text=text,
                                  source=Message.Source.FORM, sent_at=timezone.now())


@bridge_default_app
class PublishTests(TransactionTestCase):
    def tearDown(self):
        self.assertTrue(worker.wait_idle(WAIT), "a job outlived its test")

    def bridge(self, *statuses: int) -> FakeBridge:
        fake = FakeBridge(*statuses)
        self.enterContext(fake)
        self.enterContext(self.settings(PUSHER_HOST="127.0.0.1", PUSHER_PORT=fake.port))
        return fake

    def assert_signed_event(self, request: RecordedRequest, message: Message) -> None:
        self.assertEqual((request.method, request.path), ("POST", "/apps/1/events"))
        query = dict(request.query)
        self.assertEqual(len(query), len(request.query), "a query parameter repeats")
        self.assertEqual(set(query), {"auth_key", "auth_timestamp", "auth_version", "body_md5", "auth_signature"})
        self.assertEqual(query["auth_key"], "app-key")
        self.assertEqual(query["auth_version"], "1.0")
        self.assertLess(abs(int(query["auth_timestamp"]) - time.time()), 60)
        self.assertEqual(query["body_md5"], hashlib.md5(request.body).hexdigest())
        signed = "&".join(f"{key}={query[key]}" for key in sorted(query) if key != "auth_signature")
        self.assertEqual(query["auth_signature"], hmac_hex(f"POST\n/apps/1/events\n{signed}"))
        self.assertEqual(request.headers["Content-Type"], "application/json")

        body = json.loads(request.body)
        self.assertEqual(body["name"], "message")
        self.assertEqual(body["channels"], ["presence-chat"])
        self.assertIsInstance(body["data"], str)  # the HTTP API carries data as a JSON string
        self.assertEqual(json.loads(body["data"]), message.as_event())

    def test_the_job_sends_a_correctly_signed_request(self):
        bridge = self.bridge(200)
        message = make_message()
        publish_message(message.pk)
        self.assertEqual(len(bridge.requests), 1)
        self.assert_signed_event(bridge.requests[0], message)
        message.refresh_from_db()
        self.assertIsNotNone(message.published_at)

    def test_the_signature_covers_the_secret(self):
        bridge = self.bridge(200)
        with self.settings(PUSHER_SECRET="another-secret"):
            publish_message(make_message().pk)
        query = dict(bridge.requests[0].query)
        signed = "&".join(f"{key}={query[key]}" for key in sorted(query) if key != "auth_signature")
        self.assertEqual(query["auth_signature"], hmac_hex(f"POST\n/apps/1/events\n{signed}", "another-secret"))
        self.assertNotEqual(query["auth_signature"], hmac_hex(f"POST\n/apps/1/events\n{signed}"))

    def test_a_form_post_is_answered_then_published_by_the_worker(self):
        bridge = self.bridge(200)
        join(self.client, "ann")
        response = self.client.post("/messages", {"text": "  hi there ", "id": "form-0001"},
                                    headers={"Accept": "application/json"})
        self.assertEqual(response.status_code, 202)
        self.assertEqual(response.json(), {"id": "form-0001"})
        requests = bridge.wait_for_requests(1, WAIT)
        self.assertTrue(worker.wait_idle(WAIT))
        message = Message.objects.get()
        self.assertEqual((message.uid, message.user_name, message.text, message.source),
                         ("form-0001", "ann", "hi there", Message.Source.FORM))
        self.assertEqual(len(requests), 1)
        self.assert_signed_event(requests[0], message)
        self.assertIsNotNone(message.published_at)

    def test_a_resent_form_is_stored_and_published_once(self):
        bridge = self.bridge(200)
        join(self.client, "ann")
        for _ in range(2):
            self.client.post("/messages", {"text": "once", "id": "form-0002"}, headers={"Accept": "application/json"})
        self.assertTrue(worker.wait_idle(WAIT))
        self.assertEqual(Message.objects.count(), 1)
        self.assertEqual(len(bridge.requests), 1)

    def test_a_form_post_without_script_redirects_back_to_the_chat(self):
        self.bridge(200)
        join(self.client, "ann")
        response = self.client.post("/messages", {"text": "no js"})
        self.assertRedirects(response, "/", fetch_redirect_response=False)
        self.assertTrue(worker.wait_idle(WAIT))
        self.assertEqual(Message.objects.get().text, "no js")

    def test_posting_needs_a_name_and_a_text(self):
        self.assertEqual(self.client.post("/messages", {"text": "who am i"}).status_code, 403)
        join(self.client, "ann")
        self.assertEqual(self.client.post("/messages", {"text": "   "}).status_code, 400)
        self.assertEqual(self.client.post("/messages", {"text": "x" * 1001}).status_code, 400)
        self.assertEqual(Message.objects.count(), 0)

    @mock.patch("chat.jobs.PUBLISH_RETRY_DELAYS", (0.01, 0.01, 0.01))
    def test_a_refused_publish_is_retried(self):
        bridge = self.bridge(500, 503, 200)
        message = make_message()
        with self.assertLogs("chat.jobs", "WARNING") as logs:
            publish_message(message.pk)
        self.assertEqual(len(bridge.requests), 3)
        self.assertEqual(len(logs.records), 2)
        message.refresh_from_db()
        self.assertIsNotNone(message.published_at)

    @mock.patch("chat.jobs.PUBLISH_RETRY_DELAYS", (0.01,))
    def test_a_message_bridge_never_took_is_published_when_the_worker_resumes(self):
        down = self.bridge(500)
        message = make_message()
        with self.assertLogs("chat.jobs", "WARNING") as logs:
            publish_message(message.pk)
        self.assertEqual(len(down.requests), 2)
        self.assertIn("not published", logs.output[-1])
        message.refresh_from_db()
        self.assertIsNone(message.published_at)

        up = self.bridge(200)
        resume_pending()
        self.assertEqual(len(up.requests), 1)
        message.refresh_from_db()
        self.assertIsNotNone(message.published_at)
        resume_pending()
        self.assertEqual(len(up.requests), 1, "a published message is not published again")
