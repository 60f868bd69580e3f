from __future__ import annotations

import io
import json
import zipfile

import pytest
from django.core.management import call_command

from datasets.importing import import_images
from datasets.models import Image, Label
from tests.conftest import make_jpeg

pytestmark = pytest.mark.django_db


def write_tree(root, files: dict[str, bytes]):
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def run_import(*args) -> dict:
    out = io.StringIO()
    call_command("import_images", *args, "--no-progress", stdout=out)
    return json.loads(out.getvalue().strip().splitlines()[-1])


def test_it_imports_a_parent_label_folder_and_creates_labels(tmp_path):
    root = write_tree(
        tmp_path / "data",
        {
            "cats/a.jpg": make_jpeg(1),
            "cats/nested/b.jpg": make_jpeg(2),  # label = immediate parent ("nested")
            "dogs/c.png": make_jpeg(3, fmt="PNG"),
            "dogs/notes.txt": b"not an image",
            "dogs/.DS_Store": b"junk",
        },
    )

    report = run_import(str(root))

    assert report == {
        "imported": 3,
        "duplicates": 0,
        "joined_groups": 0,
        "conflicts": 0,
        "rejected": 1,
        "rejected_reasons": {"not_an_image": 1},
    }
    assert set(Label.objects.values_list("name", flat=True)) == {
        "cats",
        "nested",
        "dogs",
    }
    assert Image.objects.filter(source_kind="import").count() == 3


def test_importing_the_same_folder_twice_imports_nothing_the_second_time(tmp_path):
    root = write_tree(
        tmp_path / "d", {"a/1.jpg": make_jpeg(4), "b/2.jpg": make_jpeg(5)}
    )
    run_import(str(root))

    again = run_import(str(root))

    assert again["imported"] == 0 and again["duplicates"] == 2
    assert Image.objects.count() == 2


def test_label_option_overrides_folders(tmp_path):
    root = write_tree(tmp_path / "d", {"x/1.jpg": make_jpeg(6), "2.jpg": make_jpeg(7)})

    report = run_import(str(root), "--label", "camera")

    assert report["imported"] == 2
    assert set(Image.objects.values_list("label__name", flat=True)) == {"camera"}


def test_a_file_without_label_folder_is_rejected(tmp_path):
    root = write_tree(tmp_path / "d", {"1.jpg": make_jpeg(8)})
    assert run_import(str(root))["rejected_reasons"] == {"no_label": 1}


def make_zip(path, members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_it_imports_a_zip_and_rejects_unsafe_paths(tmp_path, settings):
    archive = make_zip(
        tmp_path / "d.zip",
        {
            "man/1.jpg": make_jpeg(9),
            "../evil/2.jpg": make_jpeg(10),
            "/abs/3.jpg": make_jpeg(11),
            "woman/../../4.jpg": make_jpeg(12),
        },
    )

    report = import_images(archive)

    assert report.imported == 1
    assert report.rejected_reasons == {"unsafe_path": 3}
    # Nothing outside the media root; only content-addressed names inside it.
    assert not (tmp_path / "evil").exists() and not (tmp_path.parent / "evil").exists()
    names = [p.name for p in settings.MEDIA_ROOT.rglob("*.jpg")]
    assert len(names) == 2  # one image + its thumbnail


def test_a_zip_bomb_is_bounded(tmp_path, settings):
    settings.SNAPCLASS_MAX_FILE_BYTES = 1024 * 1024
    settings.SNAPCLASS_IMPORT_MAX_BYTES = 4 * 1024 * 1024
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(8):  # each member 50 MB of zeros, a few KB compressed
            with zf.open(f"cats/{i}.jpg", "w") as fh:
                chunk = b"\0" * (1024 * 1024)
                for _ in range(50):
                    fh.write(chunk)
    assert archive.stat().st_size < 1024 * 1024

    report = import_images(archive)

    assert report.imported == 0
    assert report.rejected_reasons == {"too_large": 8}


def test_a_zip_whose_members_lie_about_their_size_is_bounded(tmp_path, settings):
    settings.SNAPCLASS_MAX_FILE_BYTES = 64 * 1024
    archive = make_zip(
        tmp_path / "lie.zip", {"cats/1.jpg": b"\xff\xd8" + b"\0" * 500_000}
    )
    # Rewrite the central directory's declared size to something small.
    raw = bytearray(archive.read_bytes())
    with zipfile.ZipFile(archive) as zf:
        info = zf.infolist()[0]
    cd = raw.rfind(b"PK\x01\x02")
    raw[cd + 24 : cd + 28] = (100).to_bytes(4, "little")
    archive.write_bytes(bytes(raw))
    assert info.file_size == 500_002

    report = import_images(archive)

    assert report.imported == 0 and report.rejected == 1


@pytest.mark.django_db
def test_the_command_finds_a_relative_name_in_the_import_folder(settings, tmp_path):
    # Operators put imports in their own folder, never under media.
    settings.SNAPCLASS_IMPORT_DIR = tmp_path / "import"
    (settings.SNAPCLASS_IMPORT_DIR / "set" / "cat").mkdir(parents=True)
    (settings.SNAPCLASS_IMPORT_DIR / "set" / "cat" / "a.jpg").write_bytes(make_jpeg(77))
    out = io.StringIO()

    call_command("import_images", "set", "--no-progress", stdout=out)

    assert json.loads(out.getvalue())["imported"] == 1
