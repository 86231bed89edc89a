"""The webhook endpoint: Bridge's signed webhooks are accepted, anything else gets 401, a retried
webhook is stored once, and the answer comes before the messages are extracted."""

import json
import threading
import time
from datetime import UTC, datetime

from django.test import Client, TransactionTestCase

from chat.jobs import resume_pending, worker
from chat.models import Message, WebhookDelivery

from .helpers import bridge_default_app, hmac_hex

WAIT = 10.0


def client_message(uid: str, text: str, name: str = "bob", user_id: str = "u-bob",
                   channel: str = "presence-chat", event: str = "client-message") -> dict:
    """A `client_event` as Bridge sends it: `data` is the browser's JSON, as a string."""
    return {"name": "client_event", "channel": channel, "event": event,
            "data": json.dumps({"id": uid, "name": name, "text": text}),
            "socket_id": "123.456", "user_id": user_id}


def webhook_body(*events: dict, time_ms: int | None = None) -> bytes:
    stamp = int(time.time() * 1000) if time_ms is None else time_ms
    return json.dumps({"time_ms": stamp, "events": list(events)}).encode()


@bridge_default_app
class WebhookTests(TransactionTestCase):
    def tearDown(self):
        self.assertTrue(worker.wait_idle(WAIT), "a job outlived its test")

    def post(self, body: bytes, webhook_id: str | None = "wh-1", key: str = "app-key",
             signature: str | None = None):
        headers = {"X-Pusher-Key": key, "X-Pusher-Signature": signature or hmac_hex(body)}
        if webhook_id is not None:
            headers["X-Bridge-Webhook-Id"] = webhook_id
        return self.client.post("/bridge/webhooks", body, content_type="application/json", headers=headers)

    def stored(self) -> list[tuple[str, str, str, str]]:
        self.assertTrue(worker.wait_idle(WAIT), "the worker did not finish")
        return list(Message.objects.values_list("uid", "user_id", "user_name", "text"))

    def test_a_signed_client_message_is_stored(self):
        time_ms = int(time.time() * 1000) - 1500
        response = self.post(webhook_body(client_message("c-1", "hello"), time_ms=time_ms))
        self.assertEqual(response.status_code, 200)
        self.assertEqual(self.stored(), [("c-1", "u-bob", "bob", "hello")])
        message = Message.objects.get()
        self.assertEqual(message.source, Message.Source.CLIENT_EVENT)
        self.assertEqual(message.sent_at, datetime.fromtimestamp(time_ms / 1000, tz=UTC))
        self.assertIsNotNone(WebhookDelivery.objects.get(webhook_id="wh-1").processed_at)

    def test_every_message_of_a_batch_is_stored(self):
        body = webhook_body(client_message("c-1", "one"), {"name": "member_added", "channel": "presence-chat",
                                                            "user_id": "u-ann"},
                            client_message("c-2", "two", name="ann", user_id="u-ann"))
        self.assertEqual(self.post(body).status_code, 200)
        self.assertEqual(self.stored(), [("c-1", "u-bob", "bob", "one"), ("c-2", "u-ann", "ann", "two")])

    def test_bad_signatures_are_rejected_with_401(self):
        body = webhook_body(client_message("c-1", "forged"))
        cases = {
            "wrong signature": self.post(body, signature=hmac_hex(body, "not-the-secret")),
            "signature of other bytes": self.post(body, signature=hmac_hex(body + b" ")),
            "other key": self.post(body, key="other-key"),
            "no signature header": self.client.post("/bridge/webhooks", body, content_type="application/json",
                                                    headers={"X-Pusher-Key": "app-key"}),
            "no headers": self.client.post("/bridge/webhooks", body, content_type="application/json"),
            "over 5 minutes old": self.post(webhook_body(client_message("c-2", "late"),
                                                         time_ms=int(time.time() * 1000) - 301_000)),
        }
        for case, response in cases.items():
            with self.subTest(case):
                self.assertEqual(response.status_code, 401)
        self.assertEqual(WebhookDelivery.objects.count(), 0)
        self.assertEqual(self.stored(), [])

    def test_only_post_is_allowed_and_csrf_does_not_apply(self):
        self.assertEqual(self.client.get("/bridge/webhooks").status_code, 405)
        self.client = Client(enforce_csrf_checks=True)
        self.assertEqual(self.post(webhook_body(client_message("c-1", "hi"))).status_code, 200)

    def test_a_retried_webhook_is_stored_once(self):
        body = webhook_body(client_message("c-1", "only once"))
        first = self.post(body, webhook_id="wh-7")
        self.stored()
        again = self.post(body, webhook_id="wh-7")
        self.assertEqual((first.status_code, again.status_code), (200, 200))
        self.assertEqual(WebhookDelivery.objects.count(), 1)
        self.assertEqual(self.stored(), [("c-1", "u-bob", "bob", "only once")])

    def test_a_message_in_two_webhooks_is_stored_once(self):
        # `bridge webhooks replay` re-sends a dead letter with a new time_ms: another body.
        self.post(webhook_body(client_message("c-1", "replayed")), webhook_id="wh-1")
        self.post(webhook_body(client_message("c-1", "replayed"), time_ms=int(time.time() * 1000) + 5),
                  webhook_id="wh-2")
        self.assertEqual(self.stored(), [("c-1", "u-bob", "bob", "replayed")])
        self.assertEqual(WebhookDelivery.objects.count(), 2)

    def test_without_a_bridge_id_the_body_identifies_the_webhook(self):
        body = webhook_body(client_message("c-1", "from pusher"))
        self.post(body, webhook_id=None)
        self.post(body, webhook_id=None)
        self.assertEqual(WebhookDelivery.objects.count(), 1)
        self.assertEqual(len(self.stored()), 1)

    def test_other_events_are_acknowledged_and_not_stored(self):
        body = webhook_body(
            {"name": "channel_occupied", "channel": "presence-chat"},
            client_message("c-1", "elsewhere", channel="presence-other"),
            client_message("c-2", "typing", event="client-typing"),
            {**client_message("c-3", ""), "data": json.dumps({"id": "c-3", "text": "  "})},
            {**client_message("c-4", ""), "data": "not json"},
        )
        self.assertEqual(self.post(body).status_code, 200)
        self.assertEqual(self.stored(), [])
        self.assertIsNotNone(WebhookDelivery.objects.get().processed_at)

    def test_the_answer_comes_before_the_messages_are_stored(self):
        release = threading.Event()
        worker.submit(release.wait, WAIT)  # keep the worker busy
        started = time.monotonic()
        response = self.post(webhook_body(client_message("c-1", "later")))
        self.assertEqual(response.status_code, 200)
        self.assertLess(time.monotonic() - started, 2.0)
        self.assertEqual(Message.objects.count(), 0, "stored before the worker ran")
        self.assertEqual(WebhookDelivery.objects.get().processed_at, None)
        release.set()
        self.assertEqual(self.stored(), [("c-1", "u-bob", "bob", "later")])

    def test_a_webhook_received_before_a_crash_is_stored_when_the_worker_resumes(self):
        body = webhook_body(client_message("c-1", "survives"))
        WebhookDelivery.objects.create(webhook_id="wh-crash", body=body.decode())  # acknowledged, never processed
        resume_pending()
        self.assertEqual(self.stored(), [("c-1", "u-bob", "bob", "survives")])
        resume_pending()
        self.assertEqual(Message.objects.count(), 1)
