from django.urls import path

from dashboards import views

urlpatterns = [
    path("dashboard/", views.dashboard, name="dashboard"),
    path("calls/", views.calls, name="calls"),
    path("calls/<int:call_id>/", views.call_detail, name="call_detail"),
]
