from django.db import models


class Message(models.Model):
    """One chat message, stored once however many times it reaches Django.

    A message reaches the database one of two ways: typed into the page's form (the view stores it,
    the worker then publishes it through Bridge), or sent by a browser as a `client-message` client
    event (Django hears of it only through Bridge's `client_event` webhook). Either way the sender
    chose its `uid`, so a double submit, a retried webhook or a replayed one cannot store it twice.
    """

    class Source(models.TextChoices):
        FORM = "form", "posted to Django"
        CLIENT_EVENT = "client_event", "client event, from a webhook"

    uid = models.CharField(max_length=255, unique=True)
    user_id = models.CharField(max_length=255)
    user_name = models.CharField(max_length=100)
    text = models.TextField()
    source = models.CharField(max_length=16, choices=Source.choices)
    sent_at = models.DateTimeField()
    published_at = models.DateTimeField(null=True, blank=True)  # form messages, once Bridge took them

    class Meta:
        ordering = ["sent_at", "id"]

    def __str__(self):
        return f"{self.user_name}: {self.text}"

    def as_event(self) -> dict:
        """The data of the chat event: what the page shows, the same for both sources."""
        return {
            "id": self.uid,
            "user_id": self.user_id,
            "name": self.user_name,
            "text": self.text,
            "sent_at": self.sent_at.isoformat(),
        }


class WebhookDelivery(models.Model):
    """One webhook from Bridge, stored before the 2xx and turned into messages by the worker.

    `webhook_id` is Bridge's X-Bridge-Webhook-Id, the same on every retry of one webhook: the
    unique constraint is what makes receiving idempotent.
    """

    webhook_id = models.CharField(max_length=255, unique=True)
    body = models.TextField()
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"

    def __str__(self):
        return self.webhook_id
