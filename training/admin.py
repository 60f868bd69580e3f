from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from config.display import admin_json, admin_number
from config.errors import DomainError
from training import runner
from training.epochs import epoch_name
from training.forms import TrainingRunForm
from training.models import EpochMetric, Project, TrainingRun, Trigger
from training.selectors import run_freeze_epochs

FLOATS = {
    "train_loss": "train loss",
    "valid_loss": "valid loss",
    "error_rate": "error rate",
    "best_error_rate": "best error rate",
    "test_error_rate": "test error rate",
    "accuracy": "accuracy",
    "seconds": "seconds",
    "progress": "progress",
}


class EpochMetricInline(admin.TabularInline):
    model = EpochMetric
    extra = 0
    can_delete = False
    readonly_fields = [
        "name",
        "phase",
        *(f"{f}_display" for f in EpochMetric.RECORDED if f in FLOATS),
    ]
    fields = readonly_fields
    train_loss_display = admin_number("train_loss", "train loss")
    valid_loss_display = admin_number("valid_loss", "valid loss")
    error_rate_display = admin_number("error_rate", "error rate")
    accuracy_display = admin_number("accuracy", "accuracy")
    seconds_display = admin_number("seconds", "seconds", digits=1)

    @admin.display(description="epoch")
    def name(self, obj: EpochMetric) -> str:
        return epoch_name(obj.epoch, run_freeze_epochs(obj.run))

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "status",
        "trigger",
        "backbone",
        "progress_pct",
        "error_rate_display",
        "test_error_rate_display",
        "device",
        "page",
        "cleaner",
        "created_at",
    ]
    list_filter = ["status", "trigger"]
    readonly_fields = [
        f"{f.name}_display" if f.name in FLOATS or f.name == "per_class" else f.name
        for f in TrainingRun._meta.fields
        if f.name != "id"
    ]
    fields = readonly_fields
    inlines = [EpochMetricInline]
    error_rate_display = admin_number("error_rate", "error rate")
    best_error_rate_display = admin_number("best_error_rate", "best error rate")
    test_error_rate_display = admin_number("test_error_rate", "test error rate")
    valid_loss_display = admin_number("valid_loss", "valid loss")
    seconds_display = admin_number("seconds", "seconds", digits=1)
    progress_display = admin_number("progress", "progress")
    per_class_display = admin_json("per_class", "per class")
    actions = ["cancel"]
    change_list_template = "admin/training/trainingrun/change_list.html"

    @admin.display(description="Backbone")
    def backbone(self, obj: TrainingRun) -> str:
        return obj.config.get("backbone", "")

    @admin.display(description="Progress")
    def progress_pct(self, obj: TrainingRun) -> str:
        return f"{obj.progress * 100:.0f}%"

    @admin.display(description="Page")
    def page(self, obj: TrainingRun) -> str:
        return format_html(
            '<a href="{}">metrics</a>', reverse("training:run", args=[obj.pk])
        )

    @admin.display(description="Cleaner")
    def cleaner(self, obj: TrainingRun) -> str:
        if not obj.is_finished or not obj.image_count:
            return "–"
        return format_html(
            '<a href="{}">clean images</a>', reverse("training:cleaner", args=[obj.pk])
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.user.is_superuser

    # Model permissions decide, as in the API and the pages: curators may start
    # and cancel runs, viewers (staff or not) may not.
    def has_train_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("training.add_trainingrun")

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("training.change_trainingrun")

    @admin.action(description="Cancel selected runs", permissions=["cancel"])
    def cancel(self, request: HttpRequest, queryset) -> None:
        n = sum(runner.training_run_cancel(run=run) for run in queryset)
        self.message_user(request, f"{n} run(s) cancelled or asked to stop.")

    def get_urls(self):
        view = self.admin_site.admin_view(self.start_view)
        return [
            path("start/", view, name="training_trainingrun_start"),
            *super().get_urls(),
        ]

    def start_view(self, request: HttpRequest):
        if not self.has_train_permission(request):
            raise PermissionDenied
        form = TrainingRunForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                run = runner.training_run_start(
                    config=form.overrides(), user=request.user, trigger=Trigger.MANUAL
                )
            except DomainError as exc:
                self.message_user(request, exc.message, messages.ERROR)
            else:
                self.message_user(request, f"Run {run.pk} queued.")
                return HttpResponseRedirect(
                    reverse("admin:training_trainingrun_changelist")
                )
        context = {
            **self.admin_site.each_context(request),
            "title": "Start a training run",
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(
            request, "admin/training/trainingrun/start.html", context
        )


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    """Classifiers made from words (the new-classifier page); read here."""

    list_display = ["id", "name", "provider", "per_label", "status", "run", "page"]
    list_filter = ["status", "provider"]
    search_fields = ["name"]
    list_select_related = ["run"]
    readonly_fields = [f.name for f in Project._meta.fields if f.name != "id"]

    @admin.display(description="Page")
    def page(self, obj: Project) -> str:
        return format_html(
            '<a href="{}">progress</a>', reverse("training:project", args=[obj.pk])
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
