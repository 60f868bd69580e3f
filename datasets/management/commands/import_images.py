from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from datasets.importing import import_images


class Command(BaseCommand):
    help = (
        "Import images from a folder or ZIP whose sub-folders name the labels "
        "(fastai's parent_label layout). Ends with one JSON line of counts."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "path",
            help="a folder or a .zip file (a relative name is also looked for in "
            "SNAPCLASS_IMPORT_DIR)",
        )
        parser.add_argument("--label", help="put every image under this label")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, path: str, label: str | None, no_progress: bool, **opts):
        if not Path(path).exists():
            in_import_dir = Path(settings.SNAPCLASS_IMPORT_DIR) / path
            if Path(path).is_absolute() or not in_import_dir.exists():
                raise CommandError(f"{path} does not exist")
            path = str(in_import_dir)
        bar = tqdm(
            unit="img", disable=no_progress or opts["verbosity"] == 0, file=self.stderr
        )

        def progress(done: int, total: int | None) -> None:
            bar.total = total
            bar.update(done - bar.n)

        try:
            report = import_images(path, label=label, progress=progress)
        except FileNotFoundError as exc:
            raise CommandError(str(exc)) from exc
        finally:
            bar.close()
        self.stdout.write(report.to_json())
