"""The near-duplicate groups page, and the curator checks the cleaner shares."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from config.errors import DomainError
from config.permissions import is_curator
from datasets import duplicates

GROUPS_PER_PAGE = 20


def curator_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Anonymous users go to the login page; others without `change_image`, 403."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not is_curator(request.user):
            raise PermissionDenied("Curators only.")
        return view(request, *args, **kwargs)

    return wrapped


def wants_json(request: HttpRequest) -> bool:
    """The page's script asks for JSON; browsers and plain forms get HTML."""
    preferred = request.get_preferred_type(["text/html", "application/json"])
    return preferred == "application/json"


def safe_next(request: HttpRequest, default: str) -> str:
    """The `next` field when it points back into this site, else `default`."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


def input_error(
    request: HttpRequest,
    message: str,
    *,
    code: str = "invalid",
    status: int = 400,
    back: str = "",
) -> HttpResponse:
    """A 4xx answer: {"detail", "code"} for the script, a short page for forms."""
    if wants_json(request):
        return JsonResponse({"detail": message, "code": code}, status=status)
    context = {"message": message, "code": code, "back": back}
    return render(request, "training/curation_error.html", context, status=status)


def form_error_text(form: forms.Form) -> str:
    return " ".join(
        f"{'' if field == '__all__' else field + ': '}{' '.join(errors)}"
        for field, errors in form.errors.items()
    )


class ImageIdsField(forms.Field):
    """Many integer ids from repeated form fields (`image=1&image=2`)."""

    widget = forms.MultipleHiddenInput
    default_error_messages = {
        "invalid": "Image ids must be whole numbers.",
        "too_many": "At most %(limit)s images at a time.",
    }

    def __init__(self, *, limit: int = 500, **kwargs: Any) -> None:
        self.limit = limit
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> list[int]:
        if not value:
            return []
        try:
            ids = list(dict.fromkeys(int(v) for v in value))
        except (TypeError, ValueError):
            raise forms.ValidationError(
                self.error_messages["invalid"], code="invalid"
            ) from None
        if len(ids) > self.limit:
            raise forms.ValidationError(
                self.error_messages["too_many"],
                code="too_many",
                params={"limit": self.limit},
            )
        return ids


class DuplicateGroupForm(forms.Form):
    action = forms.ChoiceField(
        choices=[("keep_one", "Keep one"), ("keep_all", "Not duplicates")]
    )
    image = ImageIdsField(error_messages={"required": "The group has no images."})
    keep = forms.IntegerField(required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("action") == "keep_one":
            if data.get("keep") is None:
                raise forms.ValidationError("Choose the image to keep.")
            if data["keep"] not in data.get("image", []):
                raise forms.ValidationError("The image to keep is not in the group.")
        return data


@curator_required
@require_http_methods(["GET", "POST"])
def duplicate_groups(request: HttpRequest) -> HttpResponse:
    """Near-duplicate groups (perceptual hash): keep one and delete the rest."""
    here = reverse("datasets:duplicates")
    max_distance = settings.SNAPCLASS_NEAR_DUPLICATE_DISTANCE
    if request.method == "POST":
        back = safe_next(request, here)
        form = DuplicateGroupForm(request.POST)
        if not form.is_valid():
            return input_error(request, form_error_text(form), back=back)
        data = form.cleaned_data
        try:
            if data["action"] == "keep_one":
                n = duplicates.duplicate_group_keep_one(
                    keep=data["keep"],
                    images=data["image"],
                    max_distance=max_distance,
                    user=request.user,
                )
                text = f"Kept image {data['keep']}, deleted {n} near duplicate(s)."
            else:
                n = duplicates.duplicate_group_keep_all(
                    images=data["image"], user=request.user
                )
                text = f"Kept all {n} images of the group."
        except DomainError as exc:
            return input_error(request, exc.message, code=exc.code, back=back)
        if wants_json(request):
            return JsonResponse({"detail": text, "changed": n})
        messages.success(request, text)
        return redirect(back)

    include_kept = request.GET.get("all") == "1"
    groups = duplicates.near_duplicate_group_list(
        max_distance=max_distance, include_kept=include_kept
    )
    page = Paginator(groups, GROUPS_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "group_count": len(groups),
        "max_distance": max_distance,
        "include_kept": include_kept,
        "next": request.get_full_path(),
    }
    return render(request, "training/duplicates.html", context)
