from __future__ import annotations

from rest_framework.routers import SimpleRouter

from datasets import api

router = SimpleRouter()
router.register("labels", api.LabelViewSet, basename="label")
router.register("images", api.ImageViewSet, basename="image")
router.register("scrape-jobs", api.ScrapeJobViewSet, basename="scrapejob")
urlpatterns = router.urls
