from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission


def is_curator(user) -> bool:
    """Superusers and anyone allowed to change images (the `curators` group)."""
    return bool(
        user and user.is_authenticated and user.has_perm("datasets.change_image")
    )


class IsCuratorOrReadOnly(BasePermission):
    """Reads for everyone let in; writes for curators and superusers."""

    message = "Changing data needs staff or curator rights."

    def has_permission(self, request, view) -> bool:
        return request.method in SAFE_METHODS or is_curator(request.user)


class IsStaff(BasePermission):
    message = "This needs staff rights."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.is_staff)
