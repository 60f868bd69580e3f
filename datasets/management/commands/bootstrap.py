from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from datasets.importing import import_images
from datasets.models import Image
from datasets.services import label_get_or_create


class Command(BaseCommand):
    help = (
        "First-run setup, safe to repeat: an admin account if none exists, the example "
        "labels, and the bundled demo images if the dataset is empty."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--no-demo", action="store_true", help="skip the demo images"
        )

    def handle(self, *args, no_demo: bool, **opts) -> None:
        self._admin()
        for name, queries in settings.SNAPCLASS_EXAMPLE_LABELS.items():
            label = label_get_or_create(name=name, queries=queries)
            if not label.queries:
                label.queries = queries
                label.save(update_fields=["queries"])
        if not no_demo and not Image.objects.exists():
            demo = settings.SNAPCLASS_DEMO_DIR
            if demo.is_dir():
                report = import_images(demo)
                self.stdout.write(f"Imported the demo images: {report.to_json()}")
            else:
                self.stdout.write(f"No demo images at {demo}; skipped.")

    def _admin(self) -> None:
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            return
        username = settings.SNAPCLASS_ADMIN_USERNAME
        password = settings.SNAPCLASS_ADMIN_PASSWORD
        generated = not password
        if generated and settings.SNAPCLASS_ADMIN_PASSWORD_REQUIRED:
            # A printed password would stay in `docker compose logs`.
            raise CommandError(
                "Set SNAPCLASS_ADMIN_PASSWORD (in .env) for the first admin account: "
                "production never generates and prints one."
            )
        if generated:
            password = secrets.token_urlsafe(12)
        else:
            try:
                validate_password(password, User(username=username))
            except ValidationError as exc:
                raise CommandError(
                    "SNAPCLASS_ADMIN_PASSWORD is too weak: " + " ".join(exc.messages)
                ) from None
        User.objects.create_superuser(username=username, email="", password=password)
        if generated:
            self.stdout.write(
                self.style.WARNING(
                    "Created the admin account (shown once, write it down):\n"
                    f"  username: {username}\n  password: {password}\n"
                    "  (set SNAPCLASS_ADMIN_PASSWORD to choose it instead)"
                )
            )
        else:
            self.stdout.write(f"Created the admin account {username!r}.")
