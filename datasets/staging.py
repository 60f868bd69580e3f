"""Staged image files: written off the storing thread, linked into place when stored.

Creating a file is the slow part of storing an image on some disks (allocating an
inode took 0.1-0.6 ms of kernel time on the development machine), and a scrape job
stores its images from one thread. So a job's worker threads write each image's two
files into a staging folder of their own, beside the media tree and on the same
filesystem, and `image_ingest_many` hard-links them to their final names just before
the rows are inserted: a link makes no new file. A worker killed mid-job leaves
its files in its staging folder only, which the next attempt or the reaper removes
whole; nothing half-made ever sits in the media tree.

Only for Django's FileSystemStorage; with any other storage `Staging.open` gives None
and images are saved through the storage as before.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, default_storage

logger = logging.getLogger(__name__)

FOLDER = ".staging"


@dataclass(frozen=True)
class StagedFile:
    """One file written under a staging folder, with the bytes it holds."""

    path: Path
    content: bytes


class Staging:
    """The staging folder of one job (`key`), e.g. ``.staging/scrape-12/``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._names = itertools.count()  # next() is atomic: unique across threads

    @classmethod
    def open(cls, key: str) -> Staging | None:
        """The staging folder for `key`, or None where files cannot be linked."""
        if not isinstance(default_storage, FileSystemStorage):
            return None
        if not key or "/" in key or key.startswith("."):
            raise ValueError(f"bad staging key {key!r}")
        return cls(Path(default_storage.location) / FOLDER / key)

    def write(self, content: bytes, final_name: str) -> StagedFile:
        """Write `content` to a new file of its own (thread-safe), and make the
        folder of `final_name` in the storage, where `staged_place` will put it."""
        _make_folder(default_storage, Path(default_storage.path(final_name)).parent)
        path = self.root / f"{os.getpid()}-{next(self._names)}.jpg"
        fd = _create(path)
        try:
            view = memoryview(content)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        return StagedFile(path, content)

    def clear(self) -> None:
        """Remove the folder and whatever is still in it."""
        _made_folders.discard(self.root)
        shutil.rmtree(self.root, ignore_errors=True)


def staging_clear(key: str) -> None:
    staging = Staging.open(key)
    if staging is not None:
        staging.clear()


def staged_place(staged: StagedFile, name: str) -> str:
    """Store a staged file under `name` (or a free variant of it) and return the
    name used: a hard link where the filesystem allows one, else a saved copy."""
    storage = default_storage
    for _ in range(100):
        target = Path(storage.path(name))
        try:
            _make_folder(storage, target.parent)
            os.link(staged.path, target)  # never replaces: EEXIST instead
        except FileExistsError:
            name = storage.get_available_name(name)
            continue
        except OSError as exc:  # another filesystem, no hard links, a folder gone
            logger.info("cannot link %s (%s); saving a copy", staged.path, exc)
            _made_folders.discard(target.parent)
            return storage.save(name, ContentFile(staged.content))
        if storage.file_permissions_mode is not None:
            os.chmod(target, storage.file_permissions_mode)
        _unlink_quietly(staged.path)
        return name
    return storage.save(name, ContentFile(staged.content))


def _create(path: Path) -> int:
    """Open a new file for writing, making its folder (again, if it went away)."""
    for _ in range(2):
        _make_folder(default_storage, path.parent)
        try:
            return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileNotFoundError:
            _made_folders.discard(path.parent)
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)


# Folders this process made or found: asked again for each file, and a failing
# mkdir costs a system call or two. Sharded media folders are never removed.
_made_folders: set[Path] = set()


def _make_folder(storage: FileSystemStorage, folder: Path) -> None:
    """As FileSystemStorage makes the folders of a file it saves."""
    if folder in _made_folders:
        return
    mode = storage.directory_permissions_mode
    if mode is None:
        folder.mkdir(parents=True, exist_ok=True)
    else:
        old_umask = os.umask(0o777 & ~mode)
        try:
            os.makedirs(folder, mode, exist_ok=True)
        finally:
            os.umask(old_umask)
    _made_folders.add(folder)


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass
