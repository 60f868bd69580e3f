from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from config.permissions import WritesNeed, can_view_run_images, require
from training import runner
from training.interfaces import config_overrides
from training.models import TrainingRun, Trigger
from training.serializers import (
    RunImageSerializer,
    TrainingRunCreateSerializer,
    TrainingRunDetailSerializer,
    TrainingRunSerializer,
)


class TrainingRunViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    queryset = TrainingRun.objects.select_related("model_version")
    # Model permissions, not staff: curators (and curator keys) may, viewers not.
    permission_classes = [
        WritesNeed.of(
            create="training.add_trainingrun", cancel="training.change_trainingrun"
        )
    ]

    def get_serializer_class(self):
        if self.action == "retrieve":
            return TrainingRunDetailSerializer
        return TrainingRunSerializer

    def get_queryset(self):
        qs = super().get_queryset()
        if self.action == "retrieve":
            qs = qs.prefetch_related("epochs")
        return qs

    @extend_schema(
        request=TrainingRunCreateSerializer, responses={201: TrainingRunSerializer}
    )
    def create(self, request):
        data = TrainingRunCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        run = runner.training_run_start(
            config=config_overrides(data.validated_data),
            user=request.user,
            trigger=Trigger.API,
        )
        return Response(TrainingRunSerializer(run).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: TrainingRunSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        run = self.get_object()
        runner.training_run_cancel(run=run)
        run.refresh_from_db()
        return Response(TrainingRunSerializer(run).data)

    @extend_schema(responses={200: RunImageSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def images(self, request, pk=None):
        """The run's images, highest loss first (what the cleaner reads).

        Viewers, curators and their keys only (or everyone with
        SNAPCLASS_PUBLIC_DASHBOARD): they name every image, rejected ones too."""
        require(
            request,
            can_view_run_images(request),
            "A run's per-image results need a signed-in viewer or curator, "
            "or an API key with the viewer or curator role.",
        )
        run = self.get_object()
        qs = run.images.order_by("-loss", "pk")
        if (split := request.query_params.get("split")) in ("train", "valid"):
            qs = qs.filter(split=split)
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(RunImageSerializer(page, many=True).data)
