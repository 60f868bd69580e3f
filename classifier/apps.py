from __future__ import annotations

import mimetypes

from django.apps import AppConfig


class ClassifierConfig(AppConfig):
    name = "classifier"
    verbose_name = "Classifier"

    def ready(self) -> None:
        from classifier import schema  # noqa: F401  (registers the API-key scheme)

        # Browsers refuse ES modules and streaming WebAssembly served with other
        # types; some systems' mime tables lack these (static and media serving).
        mimetypes.add_type("text/javascript", ".mjs")
        mimetypes.add_type("application/wasm", ".wasm")
