from django.apps import AppConfig
from django.core.signals import request_started


class ChatConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "chat"

    def ready(self):
        # The worker starts with the first request a server handles (not for `migrate` or a shell)
        # and first resumes what a previous process left unfinished.
        from .jobs import worker

        request_started.connect(lambda **_: worker.start(), weak=False, dispatch_uid="chat-worker")
