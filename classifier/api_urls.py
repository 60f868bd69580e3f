from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from classifier import api, feedback_api

router = SimpleRouter()
router.register("models", api.ModelVersionViewSet, basename="modelversion")
urlpatterns = [
    path("predict/", api.PredictView.as_view(), name="api-predict"),
    path("feedback/", feedback_api.FeedbackView.as_view(), name="api-feedback"),
    *router.urls,
]
