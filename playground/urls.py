from django.urls import path

from playground import views

app_name = "playground"

urlpatterns = [
    path("", views.index, name="index"),
    path("route-prompt/", views.route_prompt, name="route_prompt"),
    path("history/", views.history, name="history"),
    path("runs/<int:run_id>/", views.run_detail, name="run"),
    path("runs/<int:run_id>/stop/", views.run_stop, name="stop"),
    path("runs/<int:run_id>/consensus/stream/", views.consensus_stream, name="consensus_stream"),
    path("runs/<int:run_id>/columns/<int:position>/", views.column_detail, name="column"),
    path("runs/<int:run_id>/columns/<int:position>/stream/", views.column_stream, name="column_stream"),
    path("runs/<int:run_id>/columns/<int:position>/rerun/", views.column_rerun, name="rerun"),
    path("arena/", views.arena, name="arena"),
    path("arena/<int:run_id>/vote/", views.arena_vote, name="vote"),
    path("leaderboard/", views.leaderboard, name="leaderboard"),
]
