from django.urls import path, re_path

from gateway.api import urls as api_urls
from gateway.routes import ROUTES, UNKNOWN
from gateway.views import path_view, route_view

urlpatterns = [
    *(path(route.django_path, route_view(route), name=route.name) for route in ROUTES),
    path("api/v1/", api_urls()),
    # Anything else under /v1 (a trailing slash, an unknown path): the route table decides,
    # so it is a route's answer or a 404 in OpenAI's shape, never Django's HTML page.
    re_path(r"^v1(?:/.*)?$", path_view(), name=UNKNOWN.name),
]
