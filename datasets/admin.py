from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from config.errors import DomainError
from datasets import imaging, scraping
from datasets.forms import ImageUploadForm, LinesField, provider_choices
from datasets.labels import label_create, label_slug, label_update, sections_parse
from datasets.models import Image, ImageChange, Label, ScrapeJob
from datasets.selectors import label_list_with_counts
from datasets.services import (
    DuplicateImage,
    image_delete,
    image_flag,
    image_ingest,
    image_mark_reviewed,
    image_relabel,
    image_restore,
)


class ImageActionForm(ActionForm):
    label = forms.ModelChoiceField(
        queryset=Label.objects.all(), required=False, empty_label="(label for relabel)"
    )


def thumbnail_tag(image: Image, size: int = 80) -> str:
    if not image.thumbnail:
        return "-"
    return format_html(
        '<img src="{}" alt="image {}" loading="lazy" '
        'style="max-width:{}px;max-height:{}px;border-radius:3px">',
        image.thumbnail.url,
        image.pk,
        size,
        size,
    )


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "thumb",
        "label",
        "status",
        "review_reason",
        "source_kind",
        "size",
        "provider",
        "created_at",
    ]
    list_display_links = ["id", "thumb"]
    list_filter = ["label", "status", "review_reason", "source_kind", "provider"]
    search_fields = ["source_url", "page_url", "query", "original_name", "sha256"]
    list_select_related = ["label"]
    list_per_page = 100
    action_form = ImageActionForm
    actions = ["relabel", "soft_delete", "restore", "mark_reviewed", "flag"]
    readonly_fields = [
        "preview",
        "file",
        "thumbnail",
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
        "original_name",
        "status",
        "review_reason",
        "status_changed_at",
        "status_changed_by",
        "near_duplicate_of",
        "group_key",
        "added_by",
        "created_at",
    ]
    fields = ["preview", "label", *readonly_fields[1:]]
    change_list_template = "admin/datasets/image/change_list.html"

    @admin.display(description="Image")
    def thumb(self, obj: Image) -> str:
        return thumbnail_tag(obj)

    @admin.display(description="Preview")
    def preview(self, obj: Image) -> str:
        if not obj.file:
            return "-"
        return format_html('<img src="{}" style="max-width:512px">', obj.file.url)

    @admin.display(description="Size", ordering="width")
    def size(self, obj: Image) -> str:
        return f"{obj.width}×{obj.height}"

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Images arrive only through image_ingest: the upload page, imports, scraping.
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        # Deleting is soft (status `deleted`); only superusers may remove rows for good.
        return request.user.is_superuser

    def get_actions(self, request: HttpRequest):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def save_model(self, request, obj: Image, form, change: bool) -> None:
        # Label edits on the change form go through the service so they are recorded.
        if change and "label" in form.changed_data and obj.label is not None:
            image_relabel(images=[obj.pk], label=obj.label, user=request.user)
        elif not change:  # pragma: no cover - add is disabled
            super().save_model(request, obj, form, change)

    @admin.action(
        description="Relabel selected images to the chosen label",
        permissions=["change"],
    )
    def relabel(self, request: HttpRequest, queryset) -> None:
        label_id = request.POST.get("label")
        label = Label.objects.filter(pk=label_id).first() if label_id else None
        if label is None:
            self.message_user(request, "Choose a label to relabel to.", messages.ERROR)
            return
        n = image_relabel(images=queryset, label=label, user=request.user)
        self.message_user(request, f"{n} image(s) relabelled to {label}.")

    @admin.action(
        description="Delete selected images (restorable)", permissions=["change"]
    )
    def soft_delete(self, request: HttpRequest, queryset) -> None:
        n = image_delete(images=queryset, user=request.user)
        self.message_user(
            request, f"{n} image(s) deleted; restore them from the 'Deleted' filter."
        )

    @admin.action(description="Restore selected images", permissions=["change"])
    def restore(self, request: HttpRequest, queryset) -> None:
        n = image_restore(images=queryset, user=request.user)
        self.message_user(request, f"{n} image(s) restored.")

    @admin.action(description="Mark selected images reviewed", permissions=["change"])
    def mark_reviewed(self, request: HttpRequest, queryset) -> None:
        n = image_mark_reviewed(images=queryset, user=request.user)
        self.message_user(request, f"{n} image(s) marked reviewed.")

    @admin.action(
        description="Send selected images to review (not trained on until then)",
        permissions=["change"],
    )
    def flag(self, request: HttpRequest, queryset) -> None:
        n = image_flag(images=queryset, user=request.user)
        self.message_user(request, f"{n} image(s) sent to review.")

    def get_urls(self):
        return [
            path(
                "upload/",
                self.admin_site.admin_view(self.upload_view),
                name="datasets_image_upload",
            ),
            *super().get_urls(),
        ]

    def upload_view(self, request: HttpRequest):
        if not self.has_change_permission(request):
            raise PermissionDenied
        form = ImageUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            added, problems = 0, []
            for upload in form.cleaned_data["files"]:
                try:
                    image_ingest(
                        data=upload.read(),
                        label=form.cleaned_data["label"],
                        source_kind="upload",
                        original_name=upload.name,
                        user=request.user,
                    )
                    added += 1
                except imaging.ImageRejected as exc:
                    problems.append(f"{upload.name}: {exc.message}")
                except DuplicateImage as exc:
                    problems.append(f"{upload.name}: {exc.message}")
            self.message_user(request, f"{added} image(s) added.")
            for problem in problems[:50]:
                self.message_user(request, problem, messages.WARNING)
            return HttpResponseRedirect(reverse("admin:datasets_image_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": "Upload images",
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/datasets/image/upload.html", context)


class LabelAdminForm(forms.ModelForm):
    """Name, queries as plain lines, active; the slug is derived from the name."""

    queries = LinesField(
        label="Search queries",
        help_text="One per line; without any, the name is searched.",
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60}),
    )

    class Meta:
        model = Label
        fields = ["name", "queries", "is_active"]

    def clean_name(self) -> str:
        name = " ".join(self.cleaned_data["name"].split())
        slug = label_slug(name)
        if not slug:
            raise forms.ValidationError(
                "The name needs letters or digits to make a slug from."
            )
        other = (
            Label.objects.filter(Q(slug=slug) | Q(name__iexact=name))
            .exclude(pk=self.instance.pk)
            .first()
        )
        if other is not None:
            raise forms.ValidationError(
                f"“{name}” would clash with the label “{other.name}” (slug "
                f"“{other.slug}”): choose another name, or edit that label."
            )
        return name


class LabelScrapeActionForm(forms.Form):
    """The scrape action's own page: provider, count, and URLs for the URL list."""

    provider = forms.ChoiceField(choices=provider_choices, widget=forms.RadioSelect)
    count = forms.IntegerField(
        min_value=1, max_value=1000, initial=150, label="Images per label"
    )
    urls = forms.CharField(
        required=False,
        label="Image URLs (URL list only)",
        widget=forms.Textarea(attrs={"rows": 6, "cols": 80}),
        help_text="A line with a label's name, then its image URLs, one per line.",
    )


@admin.register(Label)
class LabelAdmin(admin.ModelAdmin):
    form = LabelAdminForm
    actions = ["scrape"]
    list_display = [
        "name",
        "slug",
        "is_active",
        "queries_text",
        "active_count",
        "review_count",
        "deleted_count",
        "created_at",
    ]
    list_filter = ["is_active"]
    search_fields = ["name", "slug"]
    readonly_fields = ["slug", "created_at"]
    change_list_template = "admin/datasets/label/change_list.html"

    def get_queryset(self, request: HttpRequest):
        return label_list_with_counts()

    def get_fields(self, request: HttpRequest, obj=None) -> list[str]:
        fields = ["name", "queries", "is_active"]
        return fields if obj is None else ["name", "slug", *fields[1:], "created_at"]

    def save_model(self, request, obj: Label, form, change: bool) -> None:
        # Through the label services, which derive the slug and check clashes.
        v = form.cleaned_data
        if change:
            label = label_update(
                label=obj,
                name=v["name"],
                queries=v["queries"],
                is_active=v["is_active"],
            )
        else:
            label = label_create(name=v["name"], queries=v["queries"])
            if not v["is_active"]:
                label = label_update(label=label, is_active=False)
        obj.pk, obj.slug = label.pk, label.slug

    @admin.display(description="Queries")
    def queries_text(self, obj: Label) -> str:
        return "; ".join(obj.queries) or "–"

    @admin.display(description="Active", ordering="active_count")
    def active_count(self, obj: Label) -> int:
        return obj.active_count

    @admin.display(description="To review", ordering="review_count")
    def review_count(self, obj: Label) -> int:
        return obj.review_count

    @admin.display(description="Deleted", ordering="deleted_count")
    def deleted_count(self, obj: Label) -> int:
        return obj.deleted_count

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.user.is_superuser

    def has_scrape_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("datasets.add_scrapejob")

    @admin.action(
        description="Scrape images for the selected labels (choose the provider)",
        permissions=["scrape"],
    )
    def scrape(self, request: HttpRequest, queryset):
        labels = list(queryset.order_by("name"))
        form = LabelScrapeActionForm(
            request.POST if "apply" in request.POST else None,
            initial={"provider": settings.SNAPCLASS_SEARCH_PROVIDER},
        )
        if "apply" in request.POST and form.is_valid():
            v = form.cleaned_data
            try:
                urls = sections_parse(
                    v["urls"], [label.name for label in labels], what="URLs"
                )
                jobs = []
                with transaction.atomic():
                    for label in labels:
                        jobs += scraping.scrape_jobs_create_for_label(
                            label=label,
                            requested=v["count"],
                            provider=v["provider"],
                            urls=urls.get(label.slug),
                            user=request.user,
                        )
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                self.message_user(
                    request,
                    format_html(
                        '{} scrape job(s) queued with {}. <a href="{}">Follow their '
                        "progress</a>.",
                        len(jobs),
                        scraping.provider_title(v["provider"]),
                        reverse("datasets:scrape-jobs"),
                    ),
                )
                return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Scrape images",
            "labels": labels,
            "form": form,
            "opts": self.model._meta,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/datasets/label/scrape.html", context)

    def get_urls(self):
        return [
            path(
                "summary/",
                self.admin_site.admin_view(self.summary_view),
                name="datasets_label_summary",
            ),
            *super().get_urls(),
        ]

    def summary_view(self, request: HttpRequest):
        labels = list(label_list_with_counts())
        context = {
            **self.admin_site.each_context(request),
            "title": "Dataset summary",
            "labels": labels,
            "totals": {
                key: sum(getattr(label, key) for label in labels)
                for key in ("active_count", "review_count", "deleted_count")
            },
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/datasets/label/summary.html", context)


@admin.register(ImageChange)
class ImageChangeAdmin(admin.ModelAdmin):
    list_display = ["created_at", "image", "action", "old_label", "new_label", "user"]
    list_filter = ["action", "new_label"]
    list_select_related = ["image", "old_label", "new_label", "user"]
    readonly_fields = [f.name for f in ImageChange._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(ScrapeJob)
class ScrapeJobAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "label",
        "provider",
        "query",
        "status",
        "progress_bar",
        "found",
        "downloaded",
        "grouped",
        "conflicts",
        "duplicates",
        "rejected",
        "failed",
        "created_at",
    ]
    list_filter = ["status", "provider", "label"]
    search_fields = ["query", "message"]
    list_select_related = ["label"]
    readonly_fields = [f.name for f in ScrapeJob._meta.fields if f.name != "id"]
    actions = ["cancel"]

    @admin.display(description="Progress")
    def progress_bar(self, obj: ScrapeJob) -> str:
        return format_html(
            '<progress value="{}" max="100"></progress> {}%',
            round(obj.progress * 100),
            round(obj.progress * 100),
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.user.is_superuser

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("datasets.add_scrapejob")

    @admin.action(description="Cancel selected jobs", permissions=["cancel"])
    def cancel(self, request: HttpRequest, queryset) -> None:
        n = sum(scraping.scrape_job_cancel(job=job) for job in queryset)
        self.message_user(request, f"{n} job(s) cancelled or asked to stop.")
