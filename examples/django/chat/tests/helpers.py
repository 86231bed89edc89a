import hashlib
import hmac

from django.conf import settings
from django.test import override_settings

# `bridge serve`'s built-in app, the settings' defaults: tests pin them so that PUSHER_*
# variables in the caller's environment change nothing.
bridge_default_app = override_settings(PUSHER_APP_ID="1", PUSHER_KEY="app-key", PUSHER_SECRET="app-secret",
                                       PUSHER_HOST="127.0.0.1", PUSHER_PORT=6001, PUSHER_SSL=False)


def hmac_hex(message: str | bytes, secret: str | None = None) -> str:
    """Hex HMAC-SHA256 with the app secret: what signs webhooks, API requests and channel auth."""
    data = message.encode() if isinstance(message, str) else message
    return hmac.new((secret or settings.PUSHER_SECRET).encode(), data, hashlib.sha256).hexdigest()


def join(client, name: str = "ann") -> None:
    """Join the chat as `name` with the test client (sets the session cookie)."""
    response = client.post("/join", {"name": name})
    assert response.status_code == 302, response
