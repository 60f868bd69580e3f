from __future__ import annotations

from django.urls import path

from training import cleaner, views

app_name = "training"
urlpatterns = [
    path("runs/", views.run_list, name="runs"),
    path("classifiers/new/", views.project_new, name="new"),
    path("classifiers/<int:pk>/", views.project_detail, name="project"),
    path("runs/start/", views.run_start, name="start"),
    path("runs/<int:pk>/", views.run_detail, name="run"),
    path("runs/<int:pk>/cancel/", views.run_cancel, name="cancel"),
    path("runs/<int:pk>/cleaner/", cleaner.cleaner, name="cleaner"),
]
