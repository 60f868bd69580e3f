from __future__ import annotations

from django.urls import path

from datasets import views

app_name = "datasets"
urlpatterns = [
    path("dataset/", views.dataset_summary, name="summary"),
    path("scrape-jobs/", views.scrape_job_list, name="scrape-jobs"),
]
