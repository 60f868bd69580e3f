from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from classifier.models import APIKey
from classifier.services import api_key_create
from config.errors import DomainError


class Command(BaseCommand):
    help = "Create an API key with a role and print its secret (shown only once)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("name", help="who the key is for, e.g. 'shop backend'")
        parser.add_argument(
            "--role",
            choices=APIKey.Role.values,
            default=APIKey.Role.PREDICT,
            help="predict (default), viewer or curator",
        )

    def handle(self, *args, name: str, role: str, **opts) -> None:
        try:
            key, raw = api_key_create(name=name, role=role)
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stderr.write(f"Created the {role} key {key.name!r} ({key.prefix}…).")
        self.stdout.write(raw)
