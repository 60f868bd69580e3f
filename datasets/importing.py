"""Folder and ZIP import in fastai's `parent_label` layout: `<label>/<file>`."""

from __future__ import annotations

import json
import os
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from django.conf import settings

from datasets import imaging
from datasets.models import ImageStatus, SourceKind
from datasets.services import (
    DuplicateImage,
    InvalidLabel,
    image_ingest,
    label_get_or_create,
)

SKIPPED_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini"}


@dataclass
class ImportReport:
    imported: int = 0
    joined_groups: int = 0  # near duplicates of the same label: stored and trained
    conflicts: int = 0  # near duplicates of another label: waiting for review
    duplicates: int = 0
    rejected: int = 0
    rejected_reasons: Counter[str] = field(default_factory=Counter)

    def reject(self, code: str) -> None:
        self.rejected += 1
        self.rejected_reasons[code] += 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "imported": self.imported,
            "joined_groups": self.joined_groups,
            "conflicts": self.conflicts,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "rejected_reasons": dict(sorted(self.rejected_reasons.items())),
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict())


@dataclass(frozen=True)
class Entry:
    """One file of an import: its label folder, its name, and how to read it."""

    label: str | None
    name: str
    read: Callable[[], bytes] | None
    reject_code: str | None = None


def _label_of(parts: tuple[str, ...]) -> str | None:
    return parts[-2] if len(parts) >= 2 else None


def _skipped(parts: tuple[str, ...]) -> bool:
    return any(p.startswith(".") or p == "__MACOSX" for p in parts) or (
        parts[-1] in SKIPPED_NAMES
    )


def iter_folder(root: Path, *, max_file_bytes: int) -> Iterator[Entry]:
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for filename in sorted(filenames):
            path = Path(dirpath) / filename
            parts = path.relative_to(root).parts
            if _skipped(parts):
                continue
            if path.is_symlink() or not path.is_file():
                yield Entry(_label_of(parts), str(path), None, "not_a_file")
                continue
            if path.stat().st_size > max_file_bytes:
                yield Entry(_label_of(parts), str(path), None, "too_large")
                continue
            yield Entry(_label_of(parts), str(path), path.read_bytes)


def iter_zip(
    archive: zipfile.ZipFile, *, max_file_bytes: int, max_files: int, max_bytes: int
) -> Iterator[Entry]:
    """Entries of a ZIP, read into memory with hard caps: nothing is extracted to disk.

    Unsafe names (absolute, `..`, drive letters) are rejected; a declared or actual
    size over the caps is rejected without reading further, so a ZIP bomb is bounded.
    """
    total = 0
    for count, info in enumerate(archive.infolist()):
        if info.is_dir():
            continue
        if count >= max_files:
            yield Entry(None, info.filename, None, "too_many_files")
            return
        name = info.filename.replace("\\", "/")
        parts = PurePosixPath(name).parts
        if (
            name.startswith("/")
            or ".." in parts
            or (parts and ":" in parts[0])
            or not parts
        ):
            yield Entry(None, info.filename, None, "unsafe_path")
            continue
        if _skipped(parts):
            continue
        if info.file_size > max_file_bytes:
            yield Entry(_label_of(parts), name, None, "too_large")
            continue
        if total + info.file_size > max_bytes:
            yield Entry(_label_of(parts), name, None, "archive_too_large")
            return

        def read(info: zipfile.ZipInfo = info) -> bytes:
            # Never trust the declared size: read at most one byte past the cap.
            with archive.open(info) as fh:
                data = fh.read(max_file_bytes + 1)
            if len(data) > max_file_bytes:
                raise imaging.ImageRejected("too_large", "archive member too large")
            return data

        total += info.file_size
        yield Entry(_label_of(parts), name, read)


def import_images(
    path: str | Path,
    *,
    label: str | None = None,
    user: Any = None,
    progress: Callable[[int, int | None], None] | None = None,
) -> ImportReport:
    """Import a folder or a ZIP file; unknown labels are created. Idempotent."""
    path = Path(path)
    report = ImportReport()
    limits = {
        "max_file_bytes": settings.SNAPCLASS_MAX_FILE_BYTES,
    }
    if path.is_dir():
        entries = list(iter_folder(path, **limits))
        _ingest_entries(entries, report, label=label, user=user, progress=progress)
    elif zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            entries = list(
                iter_zip(
                    archive,
                    max_files=settings.SNAPCLASS_IMPORT_MAX_FILES,
                    max_bytes=settings.SNAPCLASS_IMPORT_MAX_BYTES,
                    **limits,
                )
            )
            _ingest_entries(entries, report, label=label, user=user, progress=progress)
    else:
        raise FileNotFoundError(f"{path} is neither a folder nor a ZIP file")
    return report


def _ingest_entries(
    entries: list[Entry],
    report: ImportReport,
    *,
    label: str | None,
    user: Any,
    progress: Callable[[int, int | None], None] | None,
) -> None:
    labels: dict[str, Any] = {}
    for done, entry in enumerate(entries, start=1):
        _ingest_entry(entry, report, labels, forced_label=label, user=user)
        if progress:
            progress(done, len(entries))


def _ingest_entry(
    entry: Entry, report: ImportReport, labels: dict, *, forced_label, user
) -> None:
    if entry.reject_code:
        report.reject(entry.reject_code)
        return
    label_name = forced_label or entry.label
    if not label_name:
        report.reject("no_label")
        return
    try:
        if label_name not in labels:
            labels[label_name] = label_get_or_create(name=label_name)
        image = image_ingest(
            data=entry.read(),
            label=labels[label_name],
            source_kind=SourceKind.IMPORT,
            original_name=entry.name[-255:],
            user=user,
        )
    except imaging.ImageRejected as exc:
        report.reject(exc.code)
    except DuplicateImage:
        report.duplicates += 1
    except InvalidLabel:
        report.reject("invalid_label")
    except (zipfile.BadZipFile, EOFError):
        report.reject("corrupt")
    except OSError:
        report.reject("unreadable")
    else:
        report.imported += 1
        if image.status == ImageStatus.REVIEW:
            report.conflicts += 1
        elif image.near_duplicate_of_id is not None:
            report.joined_groups += 1
