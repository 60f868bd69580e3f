from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from config.parsers import SafeJSONParser
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


class ImageFilterSerializer(serializers.Serializer):
    label = serializers.SlugField(required=False, help_text="A label's slug.")
    status = serializers.ChoiceField(choices=ImageStatus.values, required=False)
    source_kind = serializers.ChoiceField(choices=SourceKind.values, required=False)


@extend_schema_view(list=extend_schema(parameters=[ImageFilterSerializer]))
class ImageViewSet(viewsets.ReadOnlyModelViewSet):
    """Images. Anonymous clients and predict-only keys see the active images of
    active labels (none with SNAPCLASS_PUBLIC_IMAGES=none); review, deleted and
    feedback images need a viewer or curator (account or key)."""

    serializer_class = ImageSerializer

    def get_queryset(self) -> QuerySet:
        qs = images_visible(private=can_view_private_images(self.request))
        qs = qs.select_related("label").order_by("-id")
        if self.action != "list":
            return qs
        # A filter value that cannot match is a 400, not a silently full list.
        # A plain dict: from a QueryDict, DRF would read "?status=" as no filter.
        filters = ImageFilterSerializer(data=self.request.query_params.dict())
        filters.is_valid(raise_exception=True)
        v = filters.validated_data
        if "label" in v:
            qs = qs.filter(label__slug=v["label"])
        if "status" in v:
            qs = qs.filter(status=v["status"])
        if "source_kind" in v:
            qs = qs.filter(source_kind=v["source_kind"])
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
    # JSON only: from a form, DRF reads an empty field as "not given".
    parser_classes = [SafeJSONParser]

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
