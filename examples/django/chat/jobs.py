"""The background jobs: publish a message typed into the form, store the messages of a webhook.

Both run on the worker thread, after the request that caused them has been answered.
"""

import json
import logging
import time
from datetime import UTC, datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .bridge import pusher_client
from .models import Message, WebhookDelivery
from .worker import Worker

log = logging.getLogger(__name__)

CHAT_EVENT = "message"             # published by Django
CLIENT_CHAT_EVENT = "client-message"  # sent by browsers straight to Bridge
PUBLISH_RETRY_DELAYS = (0.5, 1, 2)  # seconds between attempts while Bridge is unreachable


def publish_message(message_id: int) -> None:
    """Hand a form message to Bridge, which sends it to everyone in the chat (the sender too)."""
    message = Message.objects.filter(pk=message_id, published_at__isnull=True).first()
    if message is None:
        return
    client = pusher_client()
    for delay in (*PUBLISH_RETRY_DELAYS, None):
        try:
            client.trigger(settings.CHAT_CHANNEL, CHAT_EVENT, message.as_event())
            break
        except Exception as error:  # connection refused, timeout, or a non-2xx answer
            if delay is None:
                log.error("message %s not published (retried when the worker next starts): %s",
                          message.uid, error)
                return
            log.warning("publishing message %s failed, retrying in %ss: %s", message.uid, delay, error)
            time.sleep(delay)
    Message.objects.filter(pk=message_id).update(published_at=timezone.now())


def store_webhook(delivery_id: int) -> None:
    """Store the chat messages of one received webhook (once: a processed delivery is skipped)."""
    with transaction.atomic():
        delivery = WebhookDelivery.objects.filter(pk=delivery_id, processed_at__isnull=True).first()
        if delivery is None:
            return
        payload = json.loads(delivery.body)
        sent_at = datetime.fromtimestamp(payload["time_ms"] / 1000, tz=UTC)
        for index, event in enumerate(payload.get("events", [])):
            fields = chat_message_fields(event)
            if fields is None:
                continue
            uid = fields.pop("uid") or f"{delivery.webhook_id}/{index}"
            Message.objects.get_or_create(uid=uid, defaults={**fields, "sent_at": sent_at})
        delivery.processed_at = timezone.now()
        delivery.save(update_fields=["processed_at"])


def chat_message_fields(event: dict) -> dict | None:
    """The Message fields of a `client-message` client event on the chat channel, else None.

    The webhook's `user_id` is the one Bridge took from the signed presence subscription; the name
    and text are whatever the browser sent.
    """
    if (event.get("name"), event.get("channel"), event.get("event")) != \
            ("client_event", settings.CHAT_CHANNEL, CLIENT_CHAT_EVENT):
        return None
    data = event.get("data")
    try:
        data = json.loads(data) if isinstance(data, str) else data
    except ValueError:
        return None
    text = str(data.get("text") or "").strip() if isinstance(data, dict) else ""
    if not text:
        return None
    return {
        "uid": str(data.get("id") or ""),
        "user_id": str(event.get("user_id") or event.get("socket_id") or ""),
        "user_name": str(data.get("name") or "someone")[:100],
        "text": text,
        "source": Message.Source.CLIENT_EVENT,
    }


def resume_pending() -> None:
    """Finish what an earlier process left: webhooks received but not stored, form messages not
    yet published."""
    for delivery_id in WebhookDelivery.objects.filter(processed_at__isnull=True).values_list("pk", flat=True):
        store_webhook(delivery_id)
    unpublished = Message.objects.filter(source=Message.Source.FORM, published_at__isnull=True)
    for message_id in unpublished.values_list("pk", flat=True):
        publish_message(message_id)


worker = Worker(resume=resume_pending)
