from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from classifier.errors import ArtifactMismatch
from classifier.models import APIKey, ModelVersion
from classifier.registry import model_version_promote
from classifier.services import (
    api_key_create,
    api_key_revoke,
    api_key_role_allowed,
)
from config.display import admin_json, admin_number


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    """Versions are made by training runs; here they are read and promoted."""

    list_display = [
        "id",
        "is_current",
        "backbone",
        "labels",
        "error_rate_display",
        "valid_loss_display",
        "run",
        "created_at",
        "promoted_at",
        "decision",
    ]
    list_filter = ["is_current", "backbone"]
    search_fields = ["id", "backbone", "decision"]
    list_select_related = ["run"]
    actions = ["promote"]
    readonly_fields = [
        "run",
        "backbone",
        "label_names",
        "preprocessing",
        "metrics_display",
        "error_rate_display",
        "valid_loss_display",
        "onnx_link",
        "weights_path",
        "weights_sha256",
        "meta_path",
        "meta_sha256",
        "onnx_path",
        "onnx_sha256",
        "is_current",
        "comparison_display",
        "decision",
        "created_at",
        "promoted_at",
        "promoted_by",
    ]
    fields = readonly_fields
    error_rate_display = admin_number("error_rate", "error rate")
    valid_loss_display = admin_number("valid_loss", "valid loss")
    metrics_display = admin_json("metrics", "metrics")
    comparison_display = admin_json("comparison", "comparison")

    @admin.display(description="labels")
    def labels(self, version: ModelVersion) -> str:
        return ", ".join(version.label_names)

    @admin.display(description="ONNX model")
    def onnx_link(self, version: ModelVersion) -> str:
        return format_html('<a href="{}">{}</a>', version.onnx_url, version.onnx_path)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_promote_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("classifier.change_modelversion")

    @admin.action(
        description="Promote to current (rolls back if older)", permissions=["promote"]
    )
    def promote(self, request: HttpRequest, queryset: QuerySet[ModelVersion]) -> None:
        versions = list(queryset[:2])
        if len(versions) != 1:
            self.message_user(
                request, "Select exactly one version to promote.", messages.WARNING
            )
            return
        try:
            version = model_version_promote(version=versions[0], user=request.user)
        except ArtifactMismatch as exc:
            self.message_user(request, f"Not promoted: {exc.message}", messages.ERROR)
            return
        self.message_user(request, f"Model v{version.pk} is now the current model.")


class APIKeyForm(forms.ModelForm):
    """A new key's name and role; only roles the signed-in user holds are offered."""

    class Meta:
        model = APIKey
        fields = ["name", "role"]

    def __init__(self, *args, user=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        if "role" in self.fields:
            self.fields["role"].choices = [
                (value, text)
                for value, text in APIKey.Role.choices
                if api_key_role_allowed(user=user, role=value)
            ]

    def clean_role(self) -> str:
        role = self.cleaned_data["role"]
        if not api_key_role_allowed(user=self.user, role=role):
            raise forms.ValidationError(
                "You can only create keys with a role you hold yourself."
            )
        return role


@admin.register(APIKey)
class APIKeyAdmin(admin.ModelAdmin):
    """Keys are made here; the secret is shown once, then only its hash is kept."""

    form = APIKeyForm
    list_display = [
        "name",
        "role",
        "prefix",
        "active",
        "created_at",
        "last_used_at",
        "revoked_at",
        "created_by",
    ]
    list_filter = ["role", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix"]
    list_select_related = ["created_by"]
    readonly_fields = [
        "prefix",
        "created_at",
        "last_used_at",
        "revoked_at",
        "created_by",
    ]
    actions = ["revoke"]

    def get_fields(self, request: HttpRequest, obj: APIKey | None = None) -> list[str]:
        return ["name", "role"] if obj is None else ["name", *self.readonly_fields]

    def get_readonly_fields(self, request: HttpRequest, obj: APIKey | None = None):
        # A key's role is fixed: make a new key for another role.
        return self.readonly_fields if obj is None else ["role", *self.readonly_fields]

    def get_form(self, request: HttpRequest, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)

        class WithUser(form):
            def __init__(self, *args, **kw) -> None:
                super().__init__(*args, user=request.user, **kw)

        return WithUser

    @admin.display(boolean=True, description="active")
    def active(self, key: APIKey) -> bool:
        return key.is_active

    def save_model(self, request: HttpRequest, obj: APIKey, form, change: bool) -> None:
        if change:
            obj.save(update_fields=["name"])
            return
        key, raw = api_key_create(name=obj.name, role=obj.role, user=request.user)
        obj.pk, obj.prefix, obj.hashed_key = key.pk, key.prefix, key.hashed_key
        self.message_user(
            request,
            format_html(
                "The {} API key for “{}” is <code>{}</code>. Copy it now: it is "
                "shown only this once. Send it as "
                "<code>Authorization: Api-Key &lt;key&gt;</code>.",
                key.get_role_display().split(":")[0].lower(),
                key.name,
                raw,
            ),
            messages.WARNING,
        )

    @admin.action(description="Revoke the selected keys", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[APIKey]) -> None:
        revoked = sum(api_key_revoke(key=key) for key in queryset)
        self.message_user(request, f"Revoked {revoked} key(s).")


from classifier import feedback_admin  # noqa: E402, F401  (feedback and the prediction log)
