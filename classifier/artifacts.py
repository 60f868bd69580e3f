"""Where a model version's files lie and the check that they are unaltered.

Files are read once, hashed, and the very bytes that were hashed are what the
caller loads, so a file swapped after the check is never used.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from django.conf import settings

from classifier.errors import ArtifactMismatch
from classifier.models import ModelVersion
from datasets import media
from training.ml.artifact import FILES, ModelMeta

KINDS = tuple(FILES)


def media_path(relative: str) -> Path:
    """An absolute path under MEDIA_ROOT; refuses anything that would leave it."""
    root = Path(settings.MEDIA_ROOT).resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root):
        raise ArtifactMismatch(f"{relative!r} is outside the media folder.")
    return path


def media_relative(path: Path) -> str:
    root = Path(settings.MEDIA_ROOT).resolve()
    resolved = Path(path).resolve()
    if not resolved.is_relative_to(root):
        raise ValueError(f"{path} is not under MEDIA_ROOT ({root})")
    return resolved.relative_to(root).as_posix()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def artifact_read(version: ModelVersion, kind: str) -> bytes:
    """The bytes of one artifact, after checking them against the recorded sha256."""
    if kind not in KINDS:
        raise ValueError(f"unknown artifact kind {kind!r}")
    relative = getattr(version, f"{kind}_path")
    expected = getattr(version, f"{kind}_sha256")
    try:
        if media.is_local():
            data = media_path(relative).read_bytes()
        else:
            data = media.media_read(relative)
    except OSError as exc:
        raise ArtifactMismatch(
            f"Model v{version.pk}: {relative} cannot be read ({exc.strerror or exc})."
        ) from None
    digest = sha256_bytes(data)
    if digest != expected:
        raise ArtifactMismatch(
            f"Model v{version.pk}: {relative} has sha256 {digest[:12]}…, the "
            f"registry recorded {expected[:12]}…; refusing to load an altered file."
        )
    return data


def artifacts_verify(version: ModelVersion) -> None:
    """Raise ArtifactMismatch unless every artifact matches its recorded sha256."""
    for kind in KINDS:
        artifact_read(version, kind)


def meta_read(version: ModelVersion) -> ModelMeta:
    return ModelMeta.from_json(artifact_read(version, "meta"))
