"""Bridge as the official `pusher` library sees it, configured from settings."""

import pusher
from django.conf import settings


def pusher_client() -> pusher.Pusher:
    """A client for Bridge's HTTP API. Cheap to build, so settings changes apply at once."""
    return pusher.Pusher(
        app_id=settings.PUSHER_APP_ID,
        key=settings.PUSHER_KEY,
        secret=settings.PUSHER_SECRET,
        host=settings.PUSHER_HOST,
        port=settings.PUSHER_PORT,
        ssl=settings.PUSHER_SSL,
        timeout=5,
    )


def script_url() -> str:
    """Bridge serves its browser client, PusherLite, at /js/pusher.js."""
    scheme = "https" if settings.PUSHER_SSL else "http"
    return f"{scheme}://{settings.PUSHER_HOST}:{settings.PUSHER_PORT}/js/pusher.js"


def browser_config(user: dict, auth_endpoint: str) -> dict:
    """What the page's script needs to join the chat (no secrets)."""
    return {
        "key": settings.PUSHER_KEY,
        "host": f"{settings.PUSHER_HOST}:{settings.PUSHER_PORT}",
        "ssl": settings.PUSHER_SSL,
        "channel": settings.CHAT_CHANNEL,
        "authEndpoint": auth_endpoint,
        "user": user,
    }
