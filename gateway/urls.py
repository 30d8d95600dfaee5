from django.urls import path

from gateway import views
from gateway.api import urls as api_urls

urlpatterns = [
    path("v1/chat/completions", views.chat_completions, name="chat_completions"),
    path("v1/models", views.models, name="models"),
    path("v1/models/<path:model_id>", views.model, name="model"),
    path("api/v1/", api_urls()),
]
