from __future__ import annotations

from rest_framework import serializers

from datasets.models import Image, Label, ScrapeJob


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
    url = serializers.FileField(source="file", read_only=True)
    thumbnail_url = serializers.FileField(source="thumbnail", read_only=True)

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


class ScrapeJobCreateSerializer(serializers.Serializer):
    label = serializers.SlugRelatedField(
        slug_field="slug", queryset=Label.objects.all()
    )
    provider = serializers.CharField(required=False, max_length=32)
    query = serializers.CharField(required=False, max_length=255)
    max = serializers.IntegerField(required=False, min_value=1, default=150)
    license = serializers.CharField(required=False, allow_blank=True, max_length=32)
    urls = serializers.ListField(
        child=serializers.URLField(max_length=2000), required=False, max_length=10_000
    )
