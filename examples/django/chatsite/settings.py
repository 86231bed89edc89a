"""Settings of the chat example.

What differs between machines comes from environment variables. Their defaults match the app that
`bridge serve` serves when it has no config (id 1, key app-key, secret app-secret, port 6001), so
the example runs against a local Bridge with no configuration at all.
"""

import os
import tempfile
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "django-insecure-chat-example-only")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")

# --- Bridge, through the official `pusher` library ----------------------------------------------
PUSHER_APP_ID = os.environ.get("PUSHER_APP_ID", "1")  # numeric: the library refuses other ids
PUSHER_KEY = os.environ.get("PUSHER_KEY", "app-key")
PUSHER_SECRET = os.environ.get("PUSHER_SECRET", "app-secret")
PUSHER_HOST = os.environ.get("PUSHER_HOST", "127.0.0.1")
PUSHER_PORT = int(os.environ.get("PUSHER_PORT", "6001"))
PUSHER_SSL = os.environ.get("PUSHER_SSL", "0") == "1"
CHAT_CHANNEL = "presence-chat"

INSTALLED_APPS = [
    "django.contrib.staticfiles",
    "chat",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "chatsite.urls"
WSGI_APPLICATION = "chatsite.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    },
]

# A chatter is a name kept in a signed cookie: no accounts, no session table.
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("CHAT_DATABASE", BASE_DIR / "db.sqlite3"),
        "OPTIONS": {
            # Requests and the worker thread write concurrently: take the write lock at BEGIN and
            # wait for it, and let readers go on beside a writer (WAL).
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL",
        },
        # A file, not the in-memory default: the worker thread opens its own connection to it.
        "TEST": {"NAME": os.path.join(tempfile.gettempdir(), f"chat-test-{os.getpid()}.sqlite3")},
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"chat": {"handlers": ["console"], "level": os.environ.get("CHAT_LOG_LEVEL", "INFO")}},
}
