from __future__ import annotations

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from config.fields import StrictJSONSerializer
from datasets.models import Image, Label, ScrapeJob
from datasets.search import PROVIDERS
from datasets.search.base import LICENSES


@extend_schema_field(OpenApiTypes.URI)
class FileURLField(serializers.FileField):
    """A stored file, answered as its absolute URL."""


class LabelSerializer(serializers.ModelSerializer):
    active_count = serializers.IntegerField(read_only=True)
    review_count = serializers.IntegerField(read_only=True)
    deleted_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Label
        fields = [
            "id",
            "slug",
            "name",
            "queries",
            "is_active",
            "active_count",
            "review_count",
            "deleted_count",
            "created_at",
        ]


class ImageSerializer(serializers.ModelSerializer):
    label = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    url = FileURLField(source="file", read_only=True)
    thumbnail_url = FileURLField(source="thumbnail", read_only=True)

    class Meta:
        model = Image
        fields = [
            "id",
            "label",
            "url",
            "thumbnail_url",
            "width",
            "height",
            "sha256",
            "phash",
            "source_kind",
            "source_url",
            "page_url",
            "provider",
            "query",
            "license",
            "status",
            "near_duplicate_of",
            "scrape_job",
            "created_at",
        ]


class ScrapeJobSerializer(serializers.ModelSerializer):
    label = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    progress = serializers.FloatField(read_only=True)

    class Meta:
        model = ScrapeJob
        fields = [
            "id",
            "label",
            "provider",
            "query",
            "license",
            "requested",
            "status",
            "progress",
            "found",
            "downloaded",
            "duplicates",
            "grouped",
            "conflicts",
            "rejected",
            "failed",
            "reasons",
            "reason_samples",
            "message",
            "created_at",
            "started_at",
            "finished_at",
        ]


class ScrapeJobCreateSerializer(StrictJSONSerializer):
    label = serializers.SlugRelatedField(
        slug_field="slug", queryset=Label.objects.all(), help_text="A label's slug."
    )
    provider = serializers.ChoiceField(
        choices=list(PROVIDERS),
        required=False,
        help_text="Default: SNAPCLASS_SEARCH_PROVIDER.",
    )
    query = serializers.RegexField(
        r"\S",
        required=False,
        max_length=255,
        help_text="Default: the label's first query, or its name.",
    )
    max = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=settings.SNAPCLASS_SCRAPE_MAX_IMAGES,
        default=150,
    )
    license = serializers.ChoiceField(
        choices=["", *LICENSES], required=False, help_text="ddg and bing only."
    )
    urls = serializers.ListField(
        child=serializers.URLField(max_length=2000),
        required=False,
        max_length=settings.SNAPCLASS_SCRAPE_MAX_IMAGES,
        help_text="For the urls provider: the image URLs (at most `max` are used).",
    )
