from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect, JsonResponse
from django.shortcuts import render
from django.templatetags.static import static

from routing.selectors import chains_overview, models_with_status, routes_overview


def home(request: HttpRequest) -> HttpResponse:
    """The overview: what is configured and where to go next."""
    return render(
        request,
        "home.html",
        {
            "models": models_with_status(),
            "routes": routes_overview(),
            "chains": chains_overview(),
            "gateway_url": request.build_absolute_uri("/v1"),
        },
    )


@login_not_required
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True})


@login_not_required
def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico on every page that names none (admin, API docs): no 404s."""
    return HttpResponsePermanentRedirect(static("img/favicon.svg"))
