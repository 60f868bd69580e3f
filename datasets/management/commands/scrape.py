from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from config.errors import DomainError
from datasets import scraping
from datasets.models import Label
from datasets.search.urls import parse_url_list

COUNTS = ("found", "downloaded", "duplicates", "rejected", "failed")


class Command(BaseCommand):
    help = (
        "Search the web for images of a label and download them. Without --wait the "
        "job is queued for the scrape workers; with --wait it runs here and ends with "
        "one JSON line of counts."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--label", required=True, help="label name or slug")
        parser.add_argument("--query", help="default: the label's search queries")
        parser.add_argument("--provider", help="ddg (default), serpapi, bing, urls")
        parser.add_argument("--max", type=int, default=150, dest="requested")
        parser.add_argument("--license", default="", help="ddg/bing license filter")
        parser.add_argument(
            "--urls-file", help="a text file of image URLs (urls provider)"
        )
        parser.add_argument(
            "--wait", action="store_true", help="run here, not on a worker"
        )

    def handle(self, *args, **opts) -> None:
        label = (
            Label.objects.filter(slug__iexact=opts["label"]).first()
            or Label.objects.filter(name__iexact=opts["label"]).first()
        )
        if label is None:
            raise CommandError(f"No label named {opts['label']!r}.")
        urls = None
        if opts["urls_file"]:
            path = Path(opts["urls_file"])
            if not path.is_file():
                raise CommandError(f"{path} is not a file")
            urls = parse_url_list(path.read_text(errors="replace"))
            opts["provider"] = opts["provider"] or "urls"
        queries = [opts["query"]] if opts["query"] or urls else None
        try:
            if queries:
                jobs = [
                    scraping.scrape_job_create(
                        label=label,
                        provider=opts["provider"],
                        query=queries[0],
                        requested=opts["requested"],
                        license=opts["license"],
                        urls=urls,
                        enqueue=not opts["wait"],
                    )
                ]
            else:
                jobs = self._per_query(label, opts)
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        if not opts["wait"]:
            for job in jobs:
                self.stdout.write(f"Queued scrape job {job.pk}: {job.query!r}")
            return
        totals = dict.fromkeys(COUNTS, 0)
        reasons: dict[str, int] = {}
        statuses = []
        for job in jobs:
            job = self._run_here(job)
            statuses.append(job.status)
            for name in COUNTS:
                totals[name] += getattr(job, name)
            for code, n in job.reasons.items():
                reasons[code] = reasons.get(code, 0) + n
        status = (
            "succeeded" if all(s == "succeeded" for s in statuses) else statuses[-1]
        )
        line = {
            "jobs": [j.pk for j in jobs],
            "status": status,
            **totals,
            "reasons": reasons,
        }
        if len(jobs) == 1:
            line["message"] = jobs[0].message
        self.stdout.write(json.dumps(line))

    def _per_query(self, label, opts):
        queries = [q for q in label.queries if q.strip()] or [label.name]
        share = max(1, opts["requested"] // len(queries))
        return [
            scraping.scrape_job_create(
                label=label,
                provider=opts["provider"],
                query=q,
                requested=share,
                license=opts["license"],
                enqueue=not opts["wait"],
            )
            for q in queries
        ]

    def _run_here(self, job):
        claimed = scraping.scrape_job_claim(job.pk)
        if claimed is None:
            raise CommandError(f"Scrape job {job.pk} is not queued any more.")
        bar = tqdm(desc=job.query[:30], unit="img", file=self.stderr)

        def progress(job, counts) -> None:
            bar.total = job.requested
            bar.update(counts["processed"] - bar.n)

        try:
            return scraping.scrape_job_run(claimed, on_progress=progress)
        except scraping.TransientScrapeError as exc:
            scraping.scrape_job_finish(job.pk, status="failed", message=str(exc))
            claimed.refresh_from_db()
            return claimed
        finally:
            bar.close()
