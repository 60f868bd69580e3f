from __future__ import annotations

import json
import time

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from config.errors import DomainError
from training import runner
from training.epochs import epoch_progress
from training.interfaces import add_config_flags, config_overrides
from training.models import Trigger


class Command(BaseCommand):
    help = (
        "Fine-tune a model on the active images. Without --wait the run is queued for "
        "the train workers; with --wait it runs here (no worker or broker needed) and "
        "the last line is one JSON object."
    )

    def add_arguments(self, parser) -> None:
        add_config_flags(parser)  # one flag per TrainConfig field, same bounds
        parser.add_argument("--wait", action="store_true", help="train in this process")

    def handle(self, *args, **opts) -> None:
        config = config_overrides(opts)
        try:
            run = runner.training_run_start(
                config=config, trigger=Trigger.MANUAL, enqueue=not opts["wait"]
            )
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        if not opts["wait"]:
            self.stdout.write(f"Queued training run {run.pk}")
            return
        claimed = runner.training_run_claim(run.pk)
        if claimed is None:
            raise CommandError(f"Run {run.pk} could not be claimed.")
        started = time.monotonic()
        bar = tqdm(total=100, unit="%", file=self.stderr, desc=f"run {run.pk}")

        freeze = claimed.config.get("freeze_epochs", 0)

        def progress(done: float, epoch: int, n_epochs: int) -> None:
            where = epoch_progress(epoch, n_epochs, freeze).lower()
            bar.set_description(f"run {run.pk} {where}")
            bar.update(round(done * 100) - bar.n)

        try:
            run = runner.training_run_execute(claimed, on_progress=progress)
        finally:
            bar.close()
        version = getattr(run, "model_version", None)
        self.stdout.write(
            json.dumps(
                {
                    "run": run.pk,
                    "status": run.status,
                    "device": run.device,
                    "seconds": round(time.monotonic() - started, 2),
                    "error_rate": run.error_rate,
                    "best_error_rate": run.best_error_rate,
                    "model_version": version.pk if version else None,
                    "message": run.message,
                }
            )
        )
        if run.status != "succeeded":
            raise SystemExit(1)
