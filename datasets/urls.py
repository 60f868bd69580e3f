from __future__ import annotations

from django.urls import path

from datasets import views
from datasets.duplicates_views import duplicate_groups

app_name = "datasets"
urlpatterns = [
    path("dataset/", views.dataset_summary, name="summary"),
    path("dataset/labels/", views.label_create, name="label-create"),
    path("dataset/labels/<int:pk>/", views.label_edit, name="label-edit"),
    path("dataset/labels/<int:pk>/scrape/", views.label_scrape, name="label-scrape"),
    path("scrape-jobs/", views.scrape_job_list, name="scrape-jobs"),
    path("scrape-jobs/<int:pk>/", views.scrape_job_detail, name="scrape-job"),
    path("dataset/duplicates/", duplicate_groups, name="duplicates"),
]
