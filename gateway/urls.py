from django.urls import path

from gateway.api import urls as api_urls
from gateway.routes import ROUTES
from gateway.views import route_view

urlpatterns = [
    *(path(route.django_path, route_view(route), name=route.name) for route in ROUTES),
    path("api/v1/", api_urls()),
]
