from __future__ import annotations

from rest_framework.routers import SimpleRouter

from training import api

router = SimpleRouter()
router.register("training-runs", api.TrainingRunViewSet, basename="trainingrun")
router.register("projects", api.ProjectViewSet, basename="project")
urlpatterns = router.urls
