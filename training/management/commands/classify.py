from __future__ import annotations

import json
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from config.errors import DomainError
from datasets import scraping
from datasets.labels import class_specs_build
from datasets.models import JobStatus
from datasets.search.urls import parse_url_list
from training import projects, runner
from training.models import Project


def _pairs(values: list[str], what: str) -> dict[str, list[str]]:
    """["camera=digital camera", ...] -> {"camera": ["digital camera"], ...}"""
    out: dict[str, list[str]] = {}
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name.strip() or not rest.strip():
            raise CommandError(f"Give {what} as CLASS=VALUE, not {value!r}.")
        out.setdefault(name.strip(), []).append(rest.strip())
    return out


class Command(BaseCommand):
    help = (
        "Make a classifier from class names: create the labels, search the web for "
        "images of each, and train a model when they are in (like the new-classifier "
        "page). Without --wait the work is queued for the workers; with --wait it runs "
        "here and the last line is one JSON object."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("classes", nargs="+", help="class names, e.g. woman man")
        parser.add_argument("--per-label", type=int, default=150, dest="per_label")
        parser.add_argument("--provider", help="ddg (default), serpapi, bing, urls")
        parser.add_argument(
            "--query",
            action="append",
            default=[],
            metavar="CLASS=QUERY",
            help="a search query for a class (repeatable)",
        )
        parser.add_argument(
            "--urls-file",
            action="append",
            default=[],
            metavar="CLASS=FILE",
            help="a file of image URLs for a class (urls provider; repeatable)",
        )
        parser.add_argument("--no-train", action="store_true", dest="no_train")
        parser.add_argument("--backbone")
        parser.add_argument("--epochs", type=int)
        parser.add_argument("--image-size", type=int, dest="image_size")
        parser.add_argument("--wait", action="store_true", help="do all of it here")

    def handle(self, *args, **opts) -> None:
        urls = {}
        for name, paths in _pairs(opts["urls_file"], "--urls-file").items():
            urls[name] = []
            for path in map(Path, paths):
                if not path.is_file():
                    raise CommandError(f"{path} is not a file")
                urls[name] += parse_url_list(path.read_text(errors="replace"))
        provider = opts["provider"] or ("urls" if urls else None)
        config = {
            key: opts[key]
            for key in ("backbone", "epochs", "image_size")
            if opts[key] is not None
        }
        try:
            specs = class_specs_build(
                opts["classes"], queries=_pairs(opts["query"], "--query"), urls=urls
            )
            project = projects.project_create(
                classes=specs,
                provider=provider,
                per_label=opts["per_label"],
                train=not opts["no_train"],
                train_config=config,
                enqueue=not opts["wait"],
            )
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        for note in project.notes:
            self.stderr.write(note)
        if not opts["wait"]:
            self.stdout.write(
                f"Queued classifier {project.pk}: "
                f"{project.scrape_jobs.count()} scrape jobs; follow it at "
                f"/classifiers/{project.pk}/"
            )
            return
        started = time.monotonic()
        for job in project.scrape_jobs.order_by("pk"):
            self._scrape_here(job)
        project = projects.project_advance(project.pk, enqueue=False)
        if project.run is not None:
            self._train_here(project.run)
        state = projects.project_state(Project.objects.get(pk=project.pk))
        self.stdout.write(
            json.dumps(
                {
                    "project": project.pk,
                    "stage": state.stage,
                    "message": state.headline,
                    "classes": {
                        row.slug: {
                            "downloaded": row.downloaded,
                            "active_images": row.active_images,
                            "status": row.status,
                        }
                        for row in state.classes
                    },
                    "training_run": state.run.pk if state.run else None,
                    "model_version": state.model_version.pk
                    if state.model_version
                    else None,
                    "model_is_current": state.is_current,
                    "seconds": round(time.monotonic() - started, 2),
                }
            )
        )
        if state.stage == "failed":
            raise SystemExit(1)

    def _scrape_here(self, job) -> None:
        claimed = scraping.scrape_job_claim(job.pk)
        if claimed is None:
            return
        bar = tqdm(desc=f"{job.label.name}: {job.query}"[:40], file=self.stderr)

        def progress(job, counts) -> None:
            bar.total = job.found or job.requested
            bar.update(counts["processed"] - bar.n)

        try:
            job = scraping.scrape_job_run(claimed, on_progress=progress)
        except scraping.TransientScrapeError as exc:
            scraping.scrape_job_finish(
                job.pk, status=JobStatus.FAILED, message=str(exc)
            )
            job.refresh_from_db()
        finally:
            bar.close()
        self.stderr.write(
            f"{job.label.name} ({job.query}): {job.status}. {job.message}"
        )

    def _train_here(self, run) -> None:
        claimed = runner.training_run_claim(run.pk)
        if claimed is None:
            raise CommandError(f"Run {run.pk} could not be claimed.")
        bar = tqdm(total=100, unit="%", file=self.stderr, desc=f"run {run.pk}")

        def progress(done: float, epoch: int, n_epochs: int) -> None:
            bar.update(round(done * 100) - bar.n)

        try:
            runner.training_run_execute(claimed, on_progress=progress)
        finally:
            bar.close()
