"""Staged files: written beside the media tree, linked into place, never replacing."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.storage import default_storage

from datasets.staging import Staging, staged_place


@pytest.fixture
def staging(settings) -> Staging:
    staging = Staging.open("scrape-1")
    assert staging is not None
    assert staging.root == Path(settings.MEDIA_ROOT) / ".staging" / "scrape-1"
    return staging


def test_a_staged_file_is_linked_to_its_name_and_leaves_the_staging_folder(staging):
    staged = staging.write(b"image bytes", "images/ab/abc.jpg")
    assert staged.path.parent == staging.root
    assert Path(default_storage.path("images/ab")).is_dir(), "made beforehand"

    name = staged_place(staged, "images/ab/abc.jpg")

    assert name == "images/ab/abc.jpg"
    assert default_storage.open(name).read() == b"image bytes"
    assert not staged.path.exists()


def test_placing_never_replaces_a_file_already_there(staging):
    default_storage.save("images/ab/abc.jpg", _content(b"someone else's"))
    staged = staging.write(b"ours", "images/ab/abc.jpg")

    name = staged_place(staged, "images/ab/abc.jpg")

    assert name != "images/ab/abc.jpg" and name.startswith("images/ab/abc")
    assert default_storage.open("images/ab/abc.jpg").read() == b"someone else's"
    assert default_storage.open(name).read() == b"ours"


def test_a_staged_file_that_cannot_be_linked_is_saved_from_memory(staging):
    staged = staging.write(b"ours", "images/cd/cde.jpg")
    staging.clear()  # gone, as if another attempt had cleared the folder

    name = staged_place(staged, "images/cd/cde.jpg")

    assert default_storage.open(name).read() == b"ours"


def test_writing_again_after_a_clear_makes_the_folder_again(staging):
    staging.write(b"one", "images/ab/abc.jpg")
    staging.clear()
    assert not staging.root.exists()

    staged = staging.write(b"two", "images/ab/abd.jpg")

    assert staged.path.read_bytes() == b"two"


def test_only_a_filesystem_storage_stages(settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }

    assert Staging.open("scrape-1") is None


@pytest.mark.parametrize("key", ["", "../up", ".hidden", "a/b"])
def test_a_bad_key_is_refused(key):
    with pytest.raises(ValueError):
        Staging.open(key)


def _content(data: bytes):
    from django.core.files.base import ContentFile

    return ContentFile(data)
