from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from datasets.sweep import media_sweep


class Command(BaseCommand):
    help = (
        "Remove media files (images, thumbnails, model artifacts, staging files) "
        "that no row references; --dry-run only lists them."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="remove nothing")
        parser.add_argument(
            "--min-age",
            type=float,
            default=None,
            help="seconds; younger files are kept (SNAPCLASS_MEDIA_SWEEP_MIN_AGE)",
        )

    def handle(self, *args, dry_run: bool, min_age: float | None, **opts) -> None:
        report = media_sweep(dry_run=dry_run, min_age=min_age)
        self.stdout.write(json.dumps(report.as_dict()))
