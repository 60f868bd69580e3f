from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from config.permissions import (
    WritesNeed,
    can_view_jobs,
    can_view_private_images,
    require,
)
from datasets import scraping
from datasets.models import ImageStatus, ScrapeJob, SourceKind
from datasets.selectors import images_visible, label_list_with_counts
from datasets.serializers import (
    ImageSerializer,
    LabelSerializer,
    ScrapeJobCreateSerializer,
    ScrapeJobSerializer,
)


class LabelViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = LabelSerializer
    lookup_field = "slug"
    pagination_class = None

    def get_queryset(self) -> QuerySet:
        return label_list_with_counts()


@extend_schema(
    parameters=[
        OpenApiParameter("label", str, description="label slug"),
        OpenApiParameter("status", str, enum=ImageStatus.values),
        OpenApiParameter("source_kind", str, enum=SourceKind.values),
    ]
)
class ImageViewSet(viewsets.ReadOnlyModelViewSet):
    """Images. Anonymous clients and predict-only keys see the active images of
    active labels (none with SNAPCLASS_PUBLIC_IMAGES=none); review, deleted and
    feedback images need a viewer or curator (account or key)."""

    serializer_class = ImageSerializer

    def get_queryset(self) -> QuerySet:
        qs = images_visible(private=can_view_private_images(self.request))
        qs = qs.select_related("label").order_by("-id")
        params = self.request.query_params
        if label := params.get("label"):
            qs = qs.filter(label__slug=label)
        if (value := params.get("status")) in ImageStatus.values:
            qs = qs.filter(status=value)
        if (value := params.get("source_kind")) in SourceKind.values:
            qs = qs.filter(source_kind=value)
        return qs


class ScrapeJobViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Scrape jobs (their queries and URLs): viewers and curators, or everyone
    with SNAPCLASS_PUBLIC_DASHBOARD; starting and cancelling: curators."""

    queryset = ScrapeJob.objects.select_related("label")
    serializer_class = ScrapeJobSerializer
    permission_classes = [
        WritesNeed.of(create="datasets.add_scrapejob", cancel="datasets.add_scrapejob")
    ]

    def check_permissions(self, request) -> None:
        super().check_permissions(request)
        require(
            request,
            can_view_jobs(request),
            "Scrape jobs need a signed-in viewer or curator, or an API key with "
            "the viewer or curator role.",
        )

    @extend_schema(
        request=ScrapeJobCreateSerializer, responses={201: ScrapeJobSerializer}
    )
    def create(self, request):
        data = ScrapeJobCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        job = scraping.scrape_job_create(
            label=v["label"],
            provider=v.get("provider"),
            query=v.get("query"),
            requested=v["max"],
            license=v.get("license", ""),
            urls=v.get("urls"),
            user=request.user,
        )
        return Response(ScrapeJobSerializer(job).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: ScrapeJobSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        job = self.get_object()
        scraping.scrape_job_cancel(job=job)
        job.refresh_from_db()
        return Response(ScrapeJobSerializer(job).data)
