from __future__ import annotations

from django.urls import path

from datasets import views
from datasets.duplicates_views import duplicate_groups

app_name = "datasets"
urlpatterns = [
    path("dataset/", views.dataset_summary, name="summary"),
    path("scrape-jobs/", views.scrape_job_list, name="scrape-jobs"),
    path("dataset/duplicates/", duplicate_groups, name="duplicates"),
]
