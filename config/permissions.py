"""Who may do what: Django model permissions, for users and for API keys alike.

A signed-in user has the permissions of their groups (`curators` may scrape,
train and promote; `viewers` may only read); superusers have all. An API key has
the permissions of its role (see classifier.models.APIKey.ROLE_PERMS). Being
staff grants nothing by itself.
"""

from __future__ import annotations

from django.conf import settings
from rest_framework import exceptions
from rest_framework.permissions import SAFE_METHODS, BasePermission


def has_perm(request, perm: str) -> bool:
    """Whether the request's user, or its API key's role, holds `perm`."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return user.has_perm(perm)
    key_has_perm = getattr(getattr(request, "auth", None), "has_perm", None)
    return bool(key_has_perm and key_has_perm(perm))


def is_curator(user) -> bool:
    """Superusers and anyone allowed to change images (the `curators` group)."""
    return bool(
        user and user.is_authenticated and user.has_perm("datasets.change_image")
    )


def can_view_private_images(request) -> bool:
    """Review, deleted and feedback images: viewers, curators and their keys."""
    return has_perm(request, "datasets.view_image")


def can_view_jobs(request) -> bool:
    """Scrape jobs and runs' per-image results (or everyone, by a setting)."""
    return settings.SNAPCLASS_PUBLIC_DASHBOARD or has_perm(
        request, "datasets.view_scrapejob"
    )


def can_view_run_images(request) -> bool:
    return settings.SNAPCLASS_PUBLIC_DASHBOARD or has_perm(
        request, "training.view_trainingrun"
    )


def require(request, allowed: bool, message: str) -> None:
    """401 for a client that did not say who it is, 403 for one that did."""
    if allowed:
        return
    user = getattr(request, "user", None)
    known = (user is not None and user.is_authenticated) or request.auth is not None
    if known:
        raise exceptions.PermissionDenied(message)
    raise exceptions.NotAuthenticated(message)


class HasModelPerm(BasePermission):
    """Allows a request whose user or key holds every permission in `perms`."""

    perms: tuple[str, ...] = ()
    message = "You do not have permission to do this."

    @classmethod
    def of(cls, *perms: str, message: str = "") -> type[HasModelPerm]:
        text = message or f"This needs the {', '.join(perms)} permission."
        return type("HasModelPerm", (cls,), {"perms": tuple(perms), "message": text})

    def has_permission(self, request, view) -> bool:
        return all(has_perm(request, perm) for perm in self.perms)


class WritesNeed(HasModelPerm):
    """Reads for everyone let in; each write method needs its permission.

    `write_perms` maps a view action (`create`, `cancel`, ...) to a permission.
    """

    write_perms: dict[str, str] = {}

    @classmethod
    def of(cls, **write_perms: str) -> type[WritesNeed]:  # type: ignore[override]
        return type("WritesNeed", (cls,), {"write_perms": write_perms})

    def has_permission(self, request, view) -> bool:
        if request.method in SAFE_METHODS:
            return True
        perm = self.write_perms.get(getattr(view, "action", None) or "")
        if perm is None:
            return False
        self.message = f"This needs the {perm} permission (a curator or curator key)."
        return has_perm(request, perm)


class IsCuratorOrReadOnly(BasePermission):
    """Reads for everyone let in; writes for curators and superusers."""

    message = "Changing data needs curator rights (a curator account or key)."

    def has_permission(self, request, view) -> bool:
        return request.method in SAFE_METHODS or has_perm(
            request, "datasets.change_image"
        )


def page_perm_required(perm: str):
    """For pages: anonymous users go to the login page; others without `perm`, 403."""
    from functools import wraps

    from django.contrib.auth.views import redirect_to_login
    from django.core.exceptions import PermissionDenied

    def decorate(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not request.user.has_perm(perm):
                raise PermissionDenied(f"This needs the {perm} permission.")
            return view(request, *args, **kwargs)

        return wrapped

    return decorate
