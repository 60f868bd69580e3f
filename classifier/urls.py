from __future__ import annotations

from django.urls import path

from classifier import views

app_name = "classifier"
urlpatterns = [
    path("", views.predict_page, name="predict"),
    path("feedback/", views.feedback_page, name="feedback"),
    path("models/", views.model_list, name="models"),
    path("models/<int:pk>/promote/", views.model_promote, name="promote"),
]
