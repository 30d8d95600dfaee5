"""Template tags for routing pages: what cannot answer on a route (overview, admin route page)."""

from django import template

from routing.models import TaskRoute
from routing.selectors import route_answer_warnings

register = template.Library()


@register.simple_tag
def route_warnings(route: TaskRoute | None) -> list[str]:
    return route_answer_warnings(route=route) if route is not None and route.pk else []
