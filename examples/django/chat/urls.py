from django.urls import path

from . import views

urlpatterns = [
    path("", views.chat, name="chat"),
    path("join", views.join, name="join"),
    path("messages", views.send_message, name="send_message"),
    path("history", views.history, name="history"),
    path("pusher/auth", views.pusher_auth, name="pusher_auth"),
    path("bridge/webhooks", views.webhook, name="webhook"),
]
