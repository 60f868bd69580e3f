from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from classifier.serializers import ErrorSerializer
from config.parsers import SafeJSONParser
from config.permissions import (
    WritesNeed,
    can_view_jobs,
    can_view_run_images,
    has_perm,
    require,
)
from datasets.labels import class_specs_build
from training import projects, runner
from training.interfaces import config_overrides
from training.models import Project, TrainingRun, Trigger
from training.serializers import (
    ProjectCreateSerializer,
    ProjectSerializer,
    RunImageSerializer,
    TrainingRunCreateSerializer,
    TrainingRunDetailSerializer,
    TrainingRunSerializer,
)


class RunImageFilterSerializer(serializers.Serializer):
    split = serializers.ChoiceField(choices=["train", "valid"], required=False)


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
    # JSON only: from a form, DRF reads an empty field as "not given".
    parser_classes = [SafeJSONParser]

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
        request=TrainingRunCreateSerializer,
        responses={
            201: TrainingRunSerializer,
            409: OpenApiResponse(
                ErrorSerializer,
                description="A run is already active, or the dataset has too few "
                "images (`run_active`, `not_enough_images`).",
            ),
        },
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

    @extend_schema(
        parameters=[RunImageFilterSerializer],
        responses={200: RunImageSerializer(many=True)},
    )
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
        filters = RunImageFilterSerializer(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        qs = run.images.order_by("-loss", "pk")
        if split := filters.validated_data.get("split"):
            qs = qs.filter(split=split)
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(RunImageSerializer(page, many=True).data)


class ProjectViewSet(viewsets.GenericViewSet):
    """Classifiers made from words: one call creates the labels, starts the scrape
    jobs and, when the images are in, the training run."""

    queryset = Project.objects.select_related("run", "run__model_version")
    # Creating one scrapes (and trains): curators and curator keys.
    permission_classes = [WritesNeed.of(create="datasets.add_scrapejob")]
    parser_classes = [SafeJSONParser]  # nested lists: JSON only

    def check_permissions(self, request) -> None:
        super().check_permissions(request)
        # A project shows its scrape jobs' queries: readable like the jobs.
        require(
            request,
            can_view_jobs(request),
            "Projects need a signed-in viewer or curator, or an API key with the "
            "viewer or curator role.",
        )

    serializer_class = ProjectSerializer

    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        states = [projects.project_state(project) for project in page]
        return self.get_paginated_response(ProjectSerializer(states, many=True).data)

    def retrieve(self, request, pk=None):
        state = projects.project_state(self.get_object())
        return Response(ProjectSerializer(state).data)

    @extend_schema(
        request=ProjectCreateSerializer,
        responses={
            201: ProjectSerializer,
            409: OpenApiResponse(
                ErrorSerializer,
                description="Two class names would make one label (`label_clash`), "
                "or the provider is not configured on the server "
                "(`provider_not_configured`).",
            ),
        },
    )
    def create(self, request):
        data = ProjectCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        if v["train"]:
            require(
                request,
                has_perm(request, "training.add_trainingrun"),
                "Training when the images are in needs the "
                'training.add_trainingrun permission; send "train": false to '
                "only collect images.",
            )
        classes = v["classes"]
        project = projects.project_create(
            classes=class_specs_build(
                [c["name"] for c in classes],
                queries={c["name"]: c["queries"] for c in classes if "queries" in c},
                urls={c["name"]: c["urls"] for c in classes if "urls" in c},
            ),
            provider=v.get("provider"),
            per_label=v["per_label"],
            train=v["train"],
            train_config=config_overrides(v.get("training") or {}),
            user=request.user,
        )
        return Response(
            ProjectSerializer(projects.project_state(project)).data,
            status=status.HTTP_201_CREATED,
        )
