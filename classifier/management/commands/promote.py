from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from classifier.errors import ArtifactMismatch
from classifier.models import ModelVersion
from classifier.registry import model_version_promote
from classifier.selectors import model_version_current


class Command(BaseCommand):
    help = "Make model version ID the current one (an older ID rolls back)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("id", type=int)

    def handle(self, *args, id: int, **options) -> None:
        version = ModelVersion.objects.filter(pk=id).first()
        if version is None:
            raise CommandError(f"There is no model version {id}.")
        before = model_version_current()
        try:
            version = model_version_promote(version=version)
        except ArtifactMismatch as exc:
            raise CommandError(f"Not promoted: {exc.message}") from None
        was = f"v{before.pk}" if before else "none"
        self.stdout.write(f"Model v{version.pk} is now current (was {was}).")
