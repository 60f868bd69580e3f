from __future__ import annotations

import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand

from classifier.services import image_predict
from config.api import error_response_data


class Command(BaseCommand):
    help = (
        "Classify image files with the current model: one JSON line per file, "
        "errors included; exits with 1 if any file failed."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("files", nargs="+", metavar="FILE")

    def handle(self, *args, files: list[str], **options) -> None:
        failed = 0
        for name in files:
            line = {"file": name}
            try:
                data = Path(name).read_bytes()
            except OSError as exc:
                line.update(error=exc.strerror or str(exc), code="unreadable")
                failed += 1
            else:
                try:
                    line.update(image_predict(data=data).as_dict())
                except Exception as exc:
                    mapped = error_response_data(exc)
                    if mapped is None:
                        raise
                    line.update(error=mapped[1]["detail"], code=mapped[1]["code"])
                    failed += 1
            self.stdout.write(json.dumps(line))
        if failed:
            sys.exit(1)
