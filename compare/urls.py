from django.urls import path

from . import views

app_name = "compare"

urlpatterns = [
    path("", views.index, name="index"),
    path("estimate/", views.estimate, name="estimate"),
    path("new/", views.create, name="create"),
    path("runs/<int:pk>/", views.run_detail, name="run"),
    path("runs/<int:pk>/progress/", views.run_progress, name="progress"),
    path("runs/<int:pk>/cancel/", views.run_cancel_view, name="cancel"),
    path("runs/<int:pk>/vote/", views.run_vote, name="vote"),
    path("runs/<int:pk>/export.<str:fmt>", views.run_export, name="export"),
    path("drills/", views.drills, name="drills"),
    path("drills/new/", views.drill_create_view, name="drill_create"),
    path("drills/<int:pk>/", views.drill_detail, name="drill"),
]
