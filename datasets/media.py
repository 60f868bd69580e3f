"""Media files through Django's storage: the local folder or S3-compatible storage.

Everything that reads or writes media by name goes through here, so that images,
thumbnails and model artifacts work the same on one host (FileSystemStorage)
and on several (django-storages' S3Storage, SNAPCLASS_STORAGE=s3). Training
needs local files: `local_copies` gives the media folder's own paths, or
downloads each image once into a content-named cache.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage, default_storage


def is_local() -> bool:
    """Whether media are plain files on this host's disk."""
    return isinstance(default_storage, FileSystemStorage)


def local_root() -> str:
    return default_storage.location


def media_read(name: str) -> bytes:
    """The bytes of a stored file; OSError when it is missing.

    Names are checked by the storage (no `..` out of the media folder).
    """
    if is_local():
        return Path(default_storage.path(name)).read_bytes()
    try:
        with default_storage.open(name, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        raise
    except Exception as exc:  # botocore errors for a missing key, say
        raise FileNotFoundError(f"{name}: {exc}") from exc


def local_copies(names: Iterable[str]) -> dict[str, Path]:
    """A local path for each stored name (downloaded once into the media cache)."""
    names = list(dict.fromkeys(names))
    if is_local():
        return {name: Path(default_storage.path(name)) for name in names}
    cache = Path(settings.SNAPCLASS_MEDIA_CACHE_DIR)
    paths = {}
    for name in names:
        target = (cache / name).resolve()
        if not target.is_relative_to(cache.resolve()):
            raise ValueError(f"{name!r} leaves the media cache")
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            data = media_read(name)
            # Write then rename: a killed download never leaves a partial file.
            fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".part")
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, target)
        paths[name] = target
    return paths


def store_files(paths: dict[str, Path], *, prefix: str) -> dict[str, str]:
    """Put local files into the storage under `prefix`; kind -> stored name.

    Files already in the local media folder are stored as they lie (their name is
    their path relative to it); others are uploaded, replacing any earlier
    upload of a killed attempt.
    """
    names = {}
    for kind, path in paths.items():
        path = Path(path)
        if is_local():
            root = Path(local_root()).resolve()
            resolved = path.resolve()
            if resolved.is_relative_to(root):
                names[kind] = resolved.relative_to(root).as_posix()
                continue
        name = f"{prefix.strip('/')}/{path.name}"
        if default_storage.exists(name):
            default_storage.delete(name)
        with path.open("rb") as handle:
            names[kind] = default_storage.save(name, File(handle, name=path.name))
    return names


def walk(prefix: str = "") -> Iterator[tuple[str, datetime | None]]:
    """Every stored file under `prefix` (recursively) with its modification time."""
    if not is_local():
        bucket = getattr(default_storage, "bucket", None)
        if bucket is not None:  # one listing instead of a request per file
            location = default_storage.location.strip("/")
            start = f"{location}/{prefix}" if location else prefix
            for obj in bucket.objects.filter(Prefix=start):
                name = obj.key[len(location) + 1 :] if location else obj.key
                yield name, obj.last_modified
            return
    try:
        folders, files = default_storage.listdir(prefix)
    except FileNotFoundError:
        return
    for file in files:
        name = f"{prefix.rstrip('/')}/{file}" if prefix else file
        try:
            modified = default_storage.get_modified_time(name)
        except OSError:
            modified = None
        yield name, modified
    for folder in folders:
        yield from walk(f"{prefix.rstrip('/')}/{folder}" if prefix else folder)
