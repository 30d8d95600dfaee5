"""The request type of every view: Django's request with django-htmx's `request.htmx`
(set by its middleware), so type checkers know the attribute. Views import it from here."""

from __future__ import annotations

from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails
