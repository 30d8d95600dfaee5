from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from . import docs, views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("docs/", docs.guides, name="guides"),
    path("docs/<slug:slug>/", docs.guide, name="guide"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("", include("dashboards.urls")),
    path("", include("gateway.urls")),
    path("playground/", include("playground.urls")),
    path("compare/", include("compare.urls")),
]
