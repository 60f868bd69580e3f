from __future__ import annotations

from rest_framework.routers import SimpleRouter

from training import api

router = SimpleRouter()
router.register("training-runs", api.TrainingRunViewSet, basename="trainingrun")
urlpatterns = router.urls
