from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from routing.selectors import models_with_status


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html", {"models": models_with_status()})


@login_not_required
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True})
