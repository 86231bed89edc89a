import hashlib
import uuid

from django.conf import settings
from django.db import transaction
from django.http import HttpResponse, HttpResponseBadRequest, HttpResponseForbidden, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from . import bridge
from .forms import JoinForm, MessageForm
from .jobs import publish_message, store_webhook, worker
from .models import Message, WebhookDelivery

RECENT_MESSAGES = 50


def session_user(request) -> dict | None:
    """{"id", "name"} of whoever joined from this browser, or None."""
    return request.session.get("chat_user")


@require_GET
def chat(request):
    user = session_user(request)
    if user is None:
        return render(request, "chat/join.html", {"form": JoinForm()})
    recent = list(Message.objects.order_by("-sent_at", "-id")[:RECENT_MESSAGES])[::-1]
    return render(request, "chat/chat.html", {
        "user": user,
        "recent": recent,
        "bridge_script_url": bridge.script_url(),
        "bridge_config": bridge.browser_config(user, reverse("pusher_auth")),
    })


@require_POST
def join(request):
    form = JoinForm(request.POST)
    if not form.is_valid():
        return render(request, "chat/join.html", {"form": form}, status=400)
    request.session["chat_user"] = {"id": uuid.uuid4().hex, "name": form.cleaned_data["name"]}
    return redirect("chat")


@require_POST
def pusher_auth(request):
    """Signs the page's subscription to the chat's presence channel as the session's user."""
    user = session_user(request)
    if user is None:
        return HttpResponseForbidden("join the chat first")
    if request.POST.get("channel_name") != settings.CHAT_CHANNEL:
        return HttpResponseForbidden("no such channel")
    try:
        auth = bridge.pusher_client().authenticate(
            channel=settings.CHAT_CHANNEL,
            socket_id=request.POST.get("socket_id", ""),
            custom_data={"user_id": user["id"], "user_info": {"name": user["name"]}},
        )
    except ValueError as error:  # a malformed socket id
        return HttpResponseBadRequest(str(error))
    return JsonResponse(auth)


@require_POST
def send_message(request):
    """Stores a message typed into the form; the worker publishes it after this answer."""
    user = session_user(request)
    if user is None:
        return HttpResponseForbidden("join the chat first")
    form = MessageForm(request.POST)
    if not form.is_valid():
        return JsonResponse({"errors": form.errors}, status=400)
    message, _ = Message.objects.get_or_create(
        uid=form.cleaned_data["id"] or uuid.uuid4().hex,
        defaults={"user_id": user["id"], "user_name": user["name"], "text": form.cleaned_data["text"],
                  "source": Message.Source.FORM, "sent_at": timezone.now()},
    )
    transaction.on_commit(lambda: worker.submit(publish_message, message.pk))
    if "application/json" in request.headers.get("Accept", ""):
        return JsonResponse({"id": message.uid}, status=202)
    return redirect("chat")


@csrf_exempt
@require_POST
def webhook(request):
    """Bridge's webhooks: verified, stored, answered at once; the worker extracts the messages."""
    try:
        body = request.body.decode("utf-8")
    except UnicodeDecodeError:
        return HttpResponseBadRequest("body is not UTF-8")
    # Key, HMAC-SHA256 of the raw body compared in constant time, time_ms within 5 minutes.
    payload = bridge.pusher_client().validate_webhook(
        key=request.headers.get("X-Pusher-Key", ""),
        signature=request.headers.get("X-Pusher-Signature", ""),
        body=body,
    )
    if payload is None:
        return HttpResponse("invalid webhook", status=401)
    # Bridge names each webhook, the same on every retry; other senders: the body names it.
    webhook_id = request.headers.get("X-Bridge-Webhook-Id") or hashlib.sha256(request.body).hexdigest()
    delivery, created = WebhookDelivery.objects.get_or_create(webhook_id=webhook_id,
                                                               defaults={"body": body})
    if created or delivery.processed_at is None:
        transaction.on_commit(lambda: worker.submit(store_webhook, delivery.pk))
    return HttpResponse("ok" if created else "already received")


@require_GET
def history(request):
    return render(request, "chat/history.html", {"messages": Message.objects.all()})
