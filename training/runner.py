"""Training runs: snapshot the dataset, call training.ml.train, persist, register.

The Celery task, the `train` command, the admin and the API all call these.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import signal
import socket
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import (
    DatabaseError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    connection,
    transaction,
)
from django.db.models import Count, F, Q
from django.utils import timezone

from classifier import registry
from classifier.models import ModelVersion
from classifier.registry import HeldOut
from config.errors import Conflict, DomainError
from datasets import media
from datasets.models import Image, ImageStatus, JobStatus
from training import ml
from training.epochs import epoch_progress
from training.models import EpochMetric, RunImage, TrainingRun, Trigger
from training.selectors import run_freeze_epochs

logger = logging.getLogger(__name__)
ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)


class NotEnoughImages(Conflict):
    """The request is fine; the dataset is not ready for it (409)."""

    code = "not_enough_images"


class InvalidTrainingConfig(DomainError):
    code = "invalid_config"


class RunAlreadyActive(Conflict):
    code = "run_active"


def training_config_build(overrides: dict[str, Any] | None = None) -> ml.TrainConfig:
    """The settings' defaults with `overrides` on top, validated."""
    data = {**settings.SNAPCLASS_TRAIN_DEFAULTS, **(overrides or {})}
    data.setdefault("weights_dir", settings.SNAPCLASS_WEIGHTS_DIR)
    try:
        config = ml.TrainConfig.from_dict(data)
    except (TypeError, ValueError) as exc:
        raise InvalidTrainingConfig(str(exc)) from exc
    if config.backbone not in ml.BACKBONES:
        known = ", ".join(sorted(ml.BACKBONES))
        raise InvalidTrainingConfig(
            f"Unknown backbone {config.backbone!r}; known: {known}."
        )
    return config


def trainable_images():
    return Image.objects.filter(
        status=ImageStatus.ACTIVE, label__isnull=False, label__is_active=True
    )


def dataset_check() -> None:
    """Refuse to train on fewer than 2 labels or a label with too few images."""
    minimum = settings.SNAPCLASS_MIN_IMAGES_PER_LABEL
    counts = dict(
        trainable_images()
        .values_list("label__name")
        .annotate(n=Count("id"))
        .values_list("label__name", "n")
    )
    if len(counts) < 2:
        raise NotEnoughImages(
            "Training needs at least 2 labels with images; the dataset has "
            f"{len(counts)}."
        )
    short = sorted(f"{name} ({n})" for name, n in counts.items() if n < minimum)
    if short:
        raise NotEnoughImages(
            f"Every label needs at least {minimum} active images; too few: "
            + ", ".join(short)
            + "."
        )


def training_run_start(
    *,
    config: dict[str, Any] | None = None,
    user: Any = None,
    trigger: str = Trigger.MANUAL,
    enqueue: bool = True,
) -> TrainingRun:
    """Check the request and the dataset, then queue a run (one at a time)."""
    train_config = training_config_build(config)
    dataset_check()
    try:
        with transaction.atomic():
            run = TrainingRun.objects.create(
                config=train_config.to_dict(),
                trigger=trigger,
                created_by=user if getattr(user, "pk", None) else None,
            )
    except IntegrityError:
        active = TrainingRun.objects.filter(slot="active").first()
        which = (
            f"Run {active.pk} is already {active.status}"
            if active
            else "A run is active"
        )
        raise RunAlreadyActive(
            f"{which}; wait for it to finish or cancel it."
        ) from None
    if enqueue:
        from training.tasks import training_run_execute

        # robust: a broker that is down at commit leaves the run queued, and the
        # reaper sends it again (training_runs_requeue_stale); no 500 here.
        transaction.on_commit(lambda: training_run_execute.delay(run.pk), robust=True)
    return run


def training_run_cancel(*, run: TrainingRun) -> bool:
    now = timezone.now()
    if TrainingRun.objects.filter(pk=run.pk, status=JobStatus.QUEUED).update(
        status=JobStatus.CANCELLED, slot=None, finished_at=now, message="Cancelled."
    ):
        return True
    return bool(
        TrainingRun.objects.filter(pk=run.pk, status=JobStatus.RUNNING).update(
            cancel_requested=True
        )
    )


def training_run_claim(run_id: int) -> TrainingRun | None:
    now = timezone.now()
    stale = now - timedelta(seconds=settings.SNAPCLASS_JOB_HEARTBEAT_TIMEOUT)
    n = TrainingRun.objects.filter(
        Q(status=JobStatus.QUEUED)
        | Q(status=JobStatus.RUNNING, heartbeat_at__lt=stale),
        pk=run_id,
        cancel_requested=False,
    ).update(
        status=JobStatus.RUNNING,
        started_at=now,
        heartbeat_at=now,
        attempts=F("attempts") + 1,
        worker=socket.gethostname()[:255],
        progress_text="Preparing the data",
    )
    return TrainingRun.objects.get(pk=run_id) if n == 1 else None


def training_run_finish(
    run_id: int,
    *,
    status: str,
    message: str = "",
    attempt: int | None = None,
    **fields,
) -> None:
    """End a running run; with `attempt`, only if that claim still holds it.

    Retries for a while when the database is unreachable (a restart), so that a
    run does not stay `running` because its end could not be written.
    """
    rows = TrainingRun.objects.filter(pk=run_id, status=JobStatus.RUNNING)
    if attempt is not None:
        rows = rows.filter(attempts=attempt)
    db_retry(
        lambda: rows.update(
            status=status,
            message=message[:4000],
            finished_at=timezone.now(),
            slot=None,
            **fields,
        )
    )


def training_runs_reap_stale() -> int:
    """Runs left `running` by a worker that died are marked failed."""
    stale = timezone.now() - timedelta(seconds=settings.SNAPCLASS_JOB_HEARTBEAT_TIMEOUT)
    return TrainingRun.objects.filter(
        status=JobStatus.RUNNING, heartbeat_at__lt=stale
    ).update(
        status=JobStatus.FAILED,
        slot=None,
        finished_at=timezone.now(),
        message="The worker running this run stopped (no heartbeat).",
    )


REQUEUED = "Queued again: no worker had taken it"


def training_runs_requeue_stale() -> dict[str, int]:
    """Runs still `queued` long after they were queued: their message was lost
    (the broker was down at commit, say). Send it once more; a run still queued
    after that fails with a message, which frees the slot for later runs."""
    from training.tasks import training_run_execute

    limit = settings.SNAPCLASS_JOB_QUEUED_TIMEOUT
    stale = timezone.now() - timedelta(seconds=limit)
    queued = TrainingRun.objects.filter(status=JobStatus.QUEUED, updated_at__lt=stale)
    failed = queued.filter(message__startswith=REQUEUED).update(
        status=JobStatus.FAILED,
        slot=None,
        finished_at=timezone.now(),
        message=(
            f"No worker started this run within {2 * limit} s; is a worker "
            "consuming the `train` queue (and the broker up)? Start it again."
        ),
    )
    requeued = 0
    for run_id in queued.exclude(message__startswith=REQUEUED).values_list(
        "pk", flat=True
    ):
        n = TrainingRun.objects.filter(
            pk=run_id, status=JobStatus.QUEUED, updated_at__lt=stale
        ).update(message=f"{REQUEUED} within {limit} s.", updated_at=timezone.now())
        if n:
            training_run_execute.delay(run_id)
            requeued += 1
    return {"requeued": requeued, "failed": failed}


def db_retry(write, *, seconds: float = 60.0):
    """Run a database write, retrying while the database is unreachable."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return write()
        except (OperationalError, InterfaceError):
            if time.monotonic() > deadline:
                raise
            logger.warning("database unreachable; retrying a write in 2 s")
            connection.close()
            time.sleep(2)


def training_run_snapshot(run: TrainingRun) -> list[RunImage]:
    """Which images, labels and splits go into the run; kept for reproducibility."""
    existing = list(run.images.select_related(None).order_by("pk"))
    if existing:  # a resumed run trains on the snapshot it already took
        return existing
    dataset_check()
    config = ml.TrainConfig.from_dict(run.config)
    rows = list(
        trainable_images()
        .order_by("pk")
        .values_list("pk", "file", "group_key", "label_id", "label__name")
    )
    splits = ml.split_groups(
        [r[2] for r in rows],
        [r[4] for r in rows],
        valid_pct=config.valid_pct,
        test_pct=config.test_pct,
        seed=config.seed,
    )
    snapshot = [
        RunImage(
            run=run,
            image_id=pk,
            file=file,
            label_id=label_id,
            label_name=name,
            split=split,
        )
        for (pk, file, _, label_id, name), split in zip(rows, splits, strict=True)
    ]
    RunImage.objects.bulk_create(snapshot, batch_size=1000)
    TrainingRun.objects.filter(pk=run.pk).update(
        image_count=len(snapshot),
        valid_count=sum(1 for r in snapshot if r.split == RunImage.Split.VALID),
        test_count=sum(1 for r in snapshot if r.split == RunImage.Split.TEST),
    )
    return list(run.images.order_by("pk"))


class RunCallbacks(ml.TrainCallbacks):
    """Writes progress, epoch metrics and the heartbeat; reads the cancel flag.

    Also stops the run (through should_cancel, which the training loop polls
    between batches, whatever the worker's pool) when it passes its `deadline`
    (time.monotonic()) or when its `claim` is lost.
    """

    def __init__(
        self,
        run_id: int,
        on_progress=None,
        interval: float = 1.0,
        *,
        deadline: float | None = None,
        claim: RunClaim | None = None,
        freeze_epochs: int = 0,
    ) -> None:
        self.run_id = run_id
        self.freeze_epochs = freeze_epochs
        self.on_progress = on_progress
        self.interval = interval
        self.deadline = deadline
        self.claim = claim
        self.timed_out = False
        self._last = 0.0
        self._cancel = False

    def on_start(self, *, device: str, n_epochs: int, n_batches: int) -> None:
        best_effort(
            lambda: TrainingRun.objects.filter(pk=self.run_id).update(
                device=device[:255], progress_text=f"Training on {device}"
            )
        )

    def on_batch(
        self, *, epoch: int, batch: int, n_batches: int, n_epochs: int
    ) -> None:
        done = (epoch * n_batches + batch + 1) / max(1, n_epochs * n_batches)
        if self.on_progress:
            self.on_progress(done, epoch, n_epochs)
        now = time.monotonic()
        if now - self._last < self.interval:
            return
        self._last = now

        def write() -> None:
            TrainingRun.objects.filter(pk=self.run_id).update(
                progress=round(done, 4),
                progress_text=f"{epoch_progress(epoch, n_epochs, self.freeze_epochs)}"
                f", batch {batch + 1}/{n_batches}",
                heartbeat_at=timezone.now(),
            )
            self._cancel = TrainingRun.objects.filter(
                pk=self.run_id, cancel_requested=True
            ).exists()

        best_effort(write)

    def on_epoch_end(self, metrics: dict[str, Any]) -> None:
        db_retry(
            lambda: EpochMetric.objects.update_or_create(
                run_id=self.run_id,
                epoch=metrics["epoch"],
                defaults={key: metrics.get(key) for key in EpochMetric.RECORDED},
            )
        )

    def should_cancel(self) -> bool:
        if self.deadline is not None and time.monotonic() > self.deadline:
            self.timed_out = True
        lost = self.claim is not None and self.claim.lost.is_set()
        return self._cancel or self.timed_out or lost


def best_effort(write) -> None:
    """A progress write that may be skipped while the database is unreachable."""
    try:
        write()
    except DatabaseError:
        logger.warning("a progress write was skipped (database unreachable)")
        connection.close_if_unusable_or_obsolete()


class RunClaim:
    """The claim a worker holds on a run: its attempt number.

    The reaper (no heartbeat) or another worker (a redelivered message after the
    reaper) may take the run; from then on this worker must not write its
    outcome, and above all must not register or promote its model.
    """

    def __init__(self, run: TrainingRun) -> None:
        self.run_id = run.pk
        self.attempt = run.attempts
        self.lost = threading.Event()

    def rows(self):
        return TrainingRun.objects.filter(
            pk=self.run_id, status=JobStatus.RUNNING, attempts=self.attempt
        )

    def held(self) -> bool:
        held = bool(db_retry(lambda: self.rows().exists()))
        if not held:
            self.lost.set()
        return held


HEARTBEAT_EVERY = 10.0  # seconds


class _Heartbeat:
    """Beats every few seconds from a thread until the run is registered, so long
    steps (export, the promotion comparison) look alive.

    A beat that finds the claim gone sets `claim.lost`. With `kill_after`
    (seconds past the run's time limit) a worker whose training ignores the
    limit (stuck outside the training loop) marks the run failed and ends its
    own process, as Celery's hard time limit would in a prefork pool.
    """

    def __init__(
        self,
        run_id: int,
        every: float | None = None,
        *,
        claim: RunClaim | None = None,
        deadline: float | None = None,
        kill_after: float | None = None,
    ) -> None:
        self.run_id, self.every = run_id, every or HEARTBEAT_EVERY
        self.claim, self.deadline, self.kill_after = claim, deadline, kill_after
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    def _beat(self) -> None:
        try:
            while not self._stop.wait(self.every):
                self._check_hard_limit()
                try:
                    rows = (
                        self.claim.rows()
                        if self.claim is not None
                        else TrainingRun.objects.filter(pk=self.run_id)
                    )
                    beat = rows.update(heartbeat_at=timezone.now())
                    if not beat and self.claim and self._taken():
                        logger.warning("run %s: claim lost", self.run_id)
                        self.claim.lost.set()
                except DatabaseError:  # a busy or restarting database: beat again
                    logger.warning("heartbeat of run %s skipped", self.run_id)
                    connection.close()
        finally:
            connection.close()

    def _taken(self) -> bool:
        """The row is there but no longer ours (a row this thread cannot see at
        all, as in a test's open transaction, proves nothing)."""
        return TrainingRun.objects.filter(pk=self.run_id).exists()

    def _check_hard_limit(self) -> None:
        if self.deadline is None or self.kill_after is None:
            return
        if time.monotonic() < self.deadline + self.kill_after:
            return
        limit = settings.SNAPCLASS_TRAIN_TIME_LIMIT
        logger.error("run %s ignores its time limit: ending the worker", self.run_id)
        training_run_finish(
            self.run_id,
            status=JobStatus.FAILED,
            message=f"Training exceeded its time limit of {limit} s and did not "
            "stop; the worker process was ended.",
            attempt=self.claim.attempt if self.claim else None,
        )
        os.kill(os.getpid(), signal.SIGKILL)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def artifacts_dir(run: TrainingRun) -> Path:
    """Where training writes the run's files: in the media folder itself, or, with
    another storage, a local folder whose files are then uploaded."""
    if media.is_local():
        return Path(media.local_root()) / artifacts_prefix(run)
    return Path(settings.SNAPCLASS_MEDIA_CACHE_DIR).parent / "runs" / f"run-{run.pk}"


def artifacts_prefix(run: TrainingRun) -> str:
    return f"models/run-{run.pk}"


def training_run_execute(
    run: TrainingRun, *, on_progress=None, hard_limit: bool = False
) -> TrainingRun:
    """Train a claimed run to its end; every outcome is written to the row.

    The run stops itself at SNAPCLASS_TRAIN_TIME_LIMIT and ends `failed` (this
    works in a `--pool=solo` worker, where Celery enforces no time limit); with
    `hard_limit`, a run stuck past that limit ends its worker process.
    """
    claim = RunClaim(run)
    deadline = time.monotonic() + settings.SNAPCLASS_TRAIN_TIME_LIMIT
    kill_after = TRAIN_KILL_GRACE_S if hard_limit else None
    with _Heartbeat(run.pk, claim=claim, deadline=deadline, kill_after=kill_after):
        return _training_run_execute(
            run, on_progress=on_progress, claim=claim, deadline=deadline
        )


# How long past its time limit a stuck run may go before its worker is ended.
TRAIN_KILL_GRACE_S = 300


def _training_run_execute(
    run: TrainingRun, *, on_progress, claim: RunClaim, deadline: float
) -> TrainingRun:
    finish = functools.partial(training_run_finish, attempt=claim.attempt)
    callbacks = RunCallbacks(
        run.pk,
        on_progress,
        deadline=deadline,
        claim=claim,
        freeze_epochs=run_freeze_epochs(run),
    )
    try:
        snapshot = training_run_snapshot(run)
        config = ml.TrainConfig.from_dict(run.config)
        local = media.local_copies([r.file for r in snapshot])
        items = [ml.Item(str(local[r.file]), r.label_name, r.split) for r in snapshot]
        out_dir = artifacts_dir(run)
        shutil.rmtree(out_dir, ignore_errors=True)  # leftovers of a killed attempt
        result = ml.train(config, items, out_dir, callbacks)
    except ml.BackboneUnavailable as exc:
        finish(run.pk, status=JobStatus.FAILED, message=str(exc))
        return _reload(run)
    except NotEnoughImages as exc:
        finish(run.pk, status=JobStatus.FAILED, message=exc.message)
        return _reload(run)
    except Exception as exc:
        logger.exception("training run %s failed", run.pk)
        finish(run.pk, status=JobStatus.FAILED, message=f"{type(exc).__name__}: {exc}")
        return _reload(run)

    if claim.lost.is_set() or not claim.held():
        return _claim_lost(run, out_dir)
    if callbacks.timed_out:
        shutil.rmtree(out_dir, ignore_errors=True)
        limit = settings.SNAPCLASS_TRAIN_TIME_LIMIT
        finish(
            run.pk,
            status=JobStatus.FAILED,
            message=f"Training exceeded its time limit of {limit} s "
            f"(SNAPCLASS_TRAIN_TIME_LIMIT) and was stopped; no model was kept.",
        )
        return _reload(run)
    db_retry(lambda: _store_result(run, snapshot, result, local))
    if result.status == "cancelled":
        finish(run.pk, status=JobStatus.CANCELLED, message="Cancelled.")
        return _reload(run)
    try:
        version = registry.model_version_register(
            run=_reload(run),
            artifacts_dir=out_dir,
            result=result,
            prefix=artifacts_prefix(run),
        )
        # A run the reaper or another worker took over never changes the model.
        if not claim.held():
            return _claim_lost(run, out_dir)
        version = registry.model_version_after_training(
            version, held_out_for=lambda current: training_run_held_out(run, current)
        )
    except Exception as exc:
        logger.exception("registering the model of run %s failed", run.pk)
        finish(
            run.pk,
            status=JobStatus.FAILED,
            message=f"Registering the model failed: {exc}",
        )
        return _reload(run)
    message = " ".join(
        [*result.notes, version.decision or f"Model version {version.pk} registered."]
    )
    finish(
        run.pk,
        status=JobStatus.SUCCEEDED,
        message=message,
        progress=1.0,
        progress_text="Done",
        artifacts_dir=artifacts_prefix(run),
    )
    return _reload(run)


def training_run_held_out(run: TrainingRun, current: ModelVersion) -> HeldOut:
    """The run's validation and test images that the current model did not train on.

    Which images the current model trained on comes from its own run's snapshot;
    a version without a run (registered by hand) is compared on all of them.
    """
    held = RunImage.objects.filter(
        run=run, split__in=[RunImage.Split.VALID, RunImage.Split.TEST]
    ).order_by("pk")
    excluded = 0
    if current.run_id is not None:
        trained = RunImage.objects.filter(
            run_id=current.run_id, split=RunImage.Split.TRAIN, image__isnull=False
        ).values("image_id")
        excluded = held.filter(image_id__in=trained).count()
        held = held.exclude(image_id__in=trained)
    return HeldOut(
        items=list(held.values_list("file", "label_name", "split")),
        excluded=excluded,
        current_training_known=current.run_id is not None,
    )


def _claim_lost(run: TrainingRun, out_dir: Path) -> TrainingRun:
    logger.warning(
        "run %s: this worker lost its claim (reaped or taken over); its result "
        "is dropped and nothing is promoted",
        run.pk,
    )
    if not media.is_local():
        shutil.rmtree(out_dir, ignore_errors=True)
    return _reload(run)


def _store_result(
    run: TrainingRun,
    snapshot: list[RunImage],
    result: ml.TrainResult,
    local: dict[str, Path],
) -> None:
    by_path = {str(local[r.file]): r for r in snapshot}
    changed = []
    for row in result.per_image:
        image = by_path.get(row["path"])
        if image is not None:
            image.loss = row["loss"]
            image.predicted = row["predicted"]
            image.confidence = row["confidence"]
            changed.append(image)
    RunImage.objects.bulk_update(
        changed, ["loss", "predicted", "confidence"], batch_size=500
    )
    TrainingRun.objects.filter(pk=run.pk).update(
        device=result.device[:255],
        seconds=result.seconds,
        label_names=result.label_names,
        confusion_matrix=result.confusion_matrix,
        per_class=result.per_class,
        error_rate=result.error_rate,
        best_error_rate=result.best_error_rate,
        valid_loss=result.valid_loss,
        best_epoch=result.best_epoch,
        test_error_rate=result.test["error_rate"] if result.test else None,
        test_metrics=result.test or {},
        calibration=result.calibration,
    )


def _reload(run: TrainingRun) -> TrainingRun:
    run.refresh_from_db()
    return run


def training_retrain_if_needed(*, force: bool = False) -> TrainingRun | None:
    """Start a run with the last run's config when enough changed (or when forced).

    Returns None, with the reason logged, when nothing needs doing or a run is
    already active: the one-active-run constraint makes a second trigger harmless.
    """
    from training.selectors import dataset_changes_since, last_run

    previous = last_run()
    changes = dataset_changes_since(previous.created_at if previous else None)
    needed = settings.SNAPCLASS_RETRAIN_MIN_CHANGES
    if not force and previous is not None and changes["total"] < needed:
        logger.info(
            "scheduled retraining skipped: %s changes since run %s, %s needed",
            changes["total"],
            previous.pk,
            needed,
        )
        return None
    config = dict(previous.config) if previous else None
    try:
        run = training_run_start(config=config, trigger=Trigger.SCHEDULE)
    except RunAlreadyActive as exc:
        logger.warning("scheduled retraining refused: %s", exc.message)
        return None
    except NotEnoughImages as exc:
        logger.warning("scheduled retraining refused: %s", exc.message)
        return None
    logger.info(
        "scheduled retraining started run %s (%s changes)", run.pk, changes["total"]
    )
    return run
