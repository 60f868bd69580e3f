"""Scrape jobs: search, download safely, ingest. The task only calls these."""

from __future__ import annotations

import logging
import queue
import socket
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from config.errors import DomainError
from datasets import fetch, imaging, search
from datasets.models import ImageStatus, JobStatus, Label, ScrapeJob, SourceKind
from datasets.services import (
    DuplicateImage,
    IngestItem,
    image_fields,
    image_file_name,
    image_ingest_many,
    image_normalize,
)
from datasets.staging import StagedFile, Staging, staging_clear

logger = logging.getLogger(__name__)

MAX_REASON_SAMPLES = 20
# Images are stored in batches of this many, or of what arrived in this long.
INGEST_BATCH_SIZE = 32
INGEST_BATCH_SECONDS = 0.25
LICENSES = (
    "any",
    "Public",
    "Share",
    "ShareCommercially",
    "Modify",
    "ModifyCommercially",
)


class InvalidScrapeRequest(DomainError):
    code = "invalid_scrape_request"


PROVIDER_TITLES = {
    "ddg": "DuckDuckGo",
    "serpapi": "SerpApi (Google Images)",
    "bing": "Bing",
    "urls": "the URL list",
}
# What each provider needs before it can run: (setting, words for the page).
PROVIDER_NEEDS = {
    "ddg": (None, "No key needed."),
    "serpapi": ("SERPAPI_KEY", "Needs a SerpApi key in SERPAPI_KEY."),
    "bing": (
        "BING_SEARCH_KEY",
        "Needs a key in BING_SEARCH_KEY (and BING_SEARCH_ENDPOINT for a "
        "Bing-compatible service).",
    ),
    "urls": (None, "Paste the image URLs of each class."),
}
# Why a URL gave no image, in words (codes from fetch.py, imaging.py and ingest).
REASON_WORDS = {
    "private_address": "points at a private address (refused)",
    "dns_error": "host name not found",
    "timeout": "timed out",
    "connection_error": "connection failed",
    "tls_error": "TLS (https) error",
    "bad_url": "not a valid URL",
    "bad_scheme": "not an http(s) URL",
    "bad_redirect": "bad redirect",
    "too_many_redirects": "too many redirects",
    "bad_response": "malformed HTTP response",
    "too_large": "file too large",
    "not_an_image": "not an image",
    "empty": "empty file",
    "corrupt": "damaged image",
    "truncated": "incomplete image",
    "too_small": "image too small",
    "unsupported_format": "unsupported image format",
    "decompression_bomb": "too many pixels",
    "http_404": "not found (HTTP 404)",
    "http_403": "forbidden (HTTP 403)",
    "http_410": "gone (HTTP 410)",
}


def provider_title(provider: str) -> str:
    """The provider's name for people; a Bing-compatible endpoint says where."""
    if provider == "bing":
        endpoint = settings.BING_SEARCH_ENDPOINT
        default = "https://api.bing.microsoft.com/v7.0/images/search"
        if endpoint and endpoint != default:
            from urllib.parse import urlsplit

            return f"the Bing-compatible search at {urlsplit(endpoint).netloc}"
    return PROVIDER_TITLES.get(provider, provider)


def provider_missing_setting(provider: str) -> str | None:
    """The setting a provider needs that is not set, or None."""
    setting = PROVIDER_NEEDS.get(provider, (None, ""))[0]
    if setting and not getattr(settings, setting, ""):
        return setting
    return None


def reason_words(code: str) -> str:
    if code in REASON_WORDS:
        return REASON_WORDS[code]
    if code.startswith("http_"):
        return f"HTTP error {code[5:]}"
    return code.replace("_", " ")


def search_error_words(provider: str, exc: search.SearchError) -> str:
    """Why a search could not run, naming the provider that was asked."""
    title = provider_title(provider)
    if exc.code == "no_connection":
        return f"No internet connection to {title} ({exc.message[:300]})."
    if exc.code == "missing_key":
        setting = PROVIDER_NEEDS.get(provider, (None, ""))[0] or "its key"
        if "not set" in exc.message:
            return f"{title} needs an API key: set {setting}."
        return f"{title} refused the key in {setting}: {exc.message[:200]}."
    if exc.code == "rate_limited":
        return f"{title} refused: too many searches; try again later."
    if exc.code == "bad_input":
        return f"{title} refused the request: {exc.message[:300]}."
    return f"{title} failed: {exc.message[:300]}."


def scrape_outcome(
    *, provider: str, query: str, found: int, counts: Counter, reasons: Counter
) -> tuple[str, str]:
    """(status, message) of a job that ran to its end, in words.

    Nothing new stored is a failure unless every image was already in the dataset.
    """
    title = provider_title(provider)
    downloaded, duplicates = counts["downloaded"], counts["duplicates"]
    lost = counts["rejected"] + counts["failed"]
    if found == 0:
        if provider == "urls":
            return JobStatus.FAILED, "The URL list has no usable http(s) URLs."
        return JobStatus.FAILED, f"{title} found no images for “{query}”."
    similar = []
    if counts["grouped"]:
        similar.append(f"{counts['grouped']} joined a group of near duplicates")
    if counts["conflicts"]:
        similar.append(
            f"{counts['conflicts']} wait for review as look-alikes of another "
            "label's images"
        )
    summary = (
        f"{downloaded} new image{'s' if downloaded != 1 else ''}"
        + (f" ({', '.join(similar)})" if similar else "")
        + f", {duplicates} already in the dataset, {lost} not usable"
    )
    if downloaded == 0 and duplicates == 0:
        what = "URLs" if provider == "urls" else f"images {title} found"
        if reasons.get("private_address", 0) == lost and lost:
            return JobStatus.FAILED, (
                f"Nothing downloaded: all {lost} {what} point at private "
                "addresses; allow them with SNAPCLASS_FETCH_ALLOW_PRIVATE_HOSTS."
            )
        top = ", ".join(
            f"{n} {reason_words(code)}" for code, n in reasons.most_common(4)
        )
        return JobStatus.FAILED, f"Nothing downloaded from {lost} {what}: {top}."
    if lost:
        top = ", ".join(
            f"{n} {reason_words(code)}" for code, n in reasons.most_common(3)
        )
        return JobStatus.SUCCEEDED, f"{summary} ({top})."
    return JobStatus.SUCCEEDED, f"{summary}."


class TransientScrapeError(Exception):
    """A network problem talking to the search provider: worth a retry later."""


def fetch_limits() -> fetch.FetchLimits:
    return fetch.FetchLimits(
        max_bytes=settings.SNAPCLASS_FETCH_MAX_BYTES,
        deadline=settings.SNAPCLASS_FETCH_DEADLINE,
        max_redirects=settings.SNAPCLASS_FETCH_MAX_REDIRECTS,
        allow_private_hosts=frozenset(settings.SNAPCLASS_FETCH_ALLOW_PRIVATE_HOSTS),
    )


def provider_options() -> dict[str, Any]:
    return {
        "DDG_PROXY": settings.DDG_PROXY,
        "SERPAPI_KEY": settings.SERPAPI_KEY,
        "SERPAPI_ENDPOINT": settings.SERPAPI_ENDPOINT,
        "BING_SEARCH_KEY": settings.BING_SEARCH_KEY,
        "BING_SEARCH_ENDPOINT": settings.BING_SEARCH_ENDPOINT,
        "DDG_SAFESEARCH": settings.DDG_SAFESEARCH,
        "timeout": 30,
    }


def scrape_job_create(
    *,
    label: Label,
    provider: str | None = None,
    query: str | None = None,
    requested: int = 150,
    license: str = "",
    urls: list[str] | None = None,
    user: Any = None,
    enqueue: bool = True,
) -> ScrapeJob:
    """Validate a request, store the job and (after commit) queue it for a worker."""
    provider = provider or settings.SNAPCLASS_SEARCH_PROVIDER
    if provider not in search.PROVIDERS:
        known = ", ".join(sorted(search.PROVIDERS))
        raise InvalidScrapeRequest(f"Unknown provider {provider!r}; known: {known}.")
    if not 1 <= requested <= settings.SNAPCLASS_SCRAPE_MAX_IMAGES:
        raise InvalidScrapeRequest(
            f"Ask for between 1 and {settings.SNAPCLASS_SCRAPE_MAX_IMAGES} images."
        )
    if license and license not in LICENSES:
        raise InvalidScrapeRequest(f"Unknown license filter {license!r}.")
    if provider == "urls":
        if not urls:
            raise InvalidScrapeRequest("The urls provider needs a list of image URLs.")
        query = query or f"{len(urls)} pasted URLs"
    else:
        urls = []
        query = (query or (label.queries[0] if label.queries else label.name)).strip()
    if not query or len(query) > 255:
        raise InvalidScrapeRequest("The query must be 1 to 255 characters.")
    job = ScrapeJob.objects.create(
        label=label,
        provider=provider,
        query=query,
        requested=requested,
        license="" if license == "any" else license,
        urls=urls,
        created_by=user if getattr(user, "pk", None) else None,
    )
    if enqueue:
        from datasets.tasks import scrape_job_execute

        # robust: a broker that is down at commit leaves the job queued, and the
        # reaper sends it again (scrape_jobs_requeue_stale); no 500 here.
        transaction.on_commit(lambda: scrape_job_execute.delay(job.pk), robust=True)
    return job


def scrape_jobs_create_for_label(
    *,
    label: Label,
    requested: int,
    provider: str | None = None,
    urls: list[str] | None = None,
    user: Any = None,
    enqueue: bool = True,
) -> list[ScrapeJob]:
    """One job per search query of the label, sharing the requested count; for the
    urls provider, one job over the label's URLs."""
    provider = provider or settings.SNAPCLASS_SEARCH_PROVIDER
    if provider == "urls":
        return [
            scrape_job_create(
                label=label,
                provider=provider,
                requested=max(1, min(requested, len(urls or ()))),
                urls=urls,
                user=user,
                enqueue=enqueue,
            )
        ]
    queries = [q for q in label.queries if q.strip()] or [label.name]
    share = max(1, requested // len(queries))
    return [
        scrape_job_create(
            label=label,
            provider=provider,
            query=q,
            requested=share,
            user=user,
            enqueue=enqueue,
        )
        for q in queries
    ]


def scrape_job_cancel(*, job: ScrapeJob) -> bool:
    """Ask a job to stop; a queued job is cancelled at once."""
    if ScrapeJob.objects.filter(pk=job.pk, status=JobStatus.QUEUED).update(
        status=JobStatus.CANCELLED, finished_at=timezone.now(), message="Cancelled."
    ):
        return True
    return bool(
        ScrapeJob.objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(
            cancel_requested=True
        )
    )


def scrape_job_claim(job_id: int) -> ScrapeJob | None:
    """Move a queued job (or a stale running one) to running; None if not ours."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.SNAPCLASS_JOB_HEARTBEAT_TIMEOUT)
    claimable = Q(status=JobStatus.QUEUED) | Q(
        status=JobStatus.RUNNING, heartbeat_at__lt=stale
    )
    n = (
        ScrapeJob.objects.filter(claimable, pk=job_id)
        .filter(cancel_requested=False)
        .update(
            status=JobStatus.RUNNING,
            started_at=now,
            heartbeat_at=now,
            attempts=F("attempts") + 1,
            worker=socket.gethostname()[:255],
        )
    )
    return ScrapeJob.objects.get(pk=job_id) if n == 1 else None


def scrape_jobs_reap_stale() -> int:
    """Jobs left `running` by a worker that died are marked failed, and the files
    their worker had staged but not stored are removed."""
    stale = timezone.now() - timedelta(seconds=settings.SNAPCLASS_JOB_HEARTBEAT_TIMEOUT)
    dead = ScrapeJob.objects.filter(status=JobStatus.RUNNING, heartbeat_at__lt=stale)
    ids = list(dead.values_list("pk", flat=True))
    n = dead.filter(pk__in=ids).update(
        status=JobStatus.FAILED,
        finished_at=timezone.now(),
        message="The worker running this job stopped (no heartbeat); start it again.",
    )
    for job_id in ScrapeJob.objects.filter(
        pk__in=ids, status=JobStatus.FAILED
    ).values_list("pk", flat=True):
        staging_clear(_staging_key(job_id))
    return n


REQUEUED = "Queued again: no worker had taken it"


def scrape_jobs_requeue_stale() -> dict[str, int]:
    """Jobs still `queued` long after they were queued lost their message: send it
    once more, then fail them with a message."""
    from datasets.tasks import scrape_job_execute

    limit = settings.SNAPCLASS_JOB_QUEUED_TIMEOUT
    stale = timezone.now() - timedelta(seconds=limit)
    queued = ScrapeJob.objects.filter(status=JobStatus.QUEUED, updated_at__lt=stale)
    failed = queued.filter(message__startswith=REQUEUED).update(
        status=JobStatus.FAILED,
        finished_at=timezone.now(),
        message=(
            f"No worker started this job within {2 * limit} s; is a worker "
            "consuming the `scrape` queue (and the broker up)? Start it again."
        ),
    )
    requeued = 0
    for job_id in queued.exclude(message__startswith=REQUEUED).values_list(
        "pk", flat=True
    ):
        n = ScrapeJob.objects.filter(
            pk=job_id, status=JobStatus.QUEUED, updated_at__lt=stale
        ).update(message=f"{REQUEUED} within {limit} s.", updated_at=timezone.now())
        if n:
            scrape_job_execute.delay(job_id)
            requeued += 1
    return {"requeued": requeued, "failed": failed}


def _staging_key(job_id: int) -> str:
    return f"scrape-{job_id}"


def scrape_job_finish(job_id: int, *, status: str, message: str) -> None:
    ScrapeJob.objects.filter(pk=job_id, status=JobStatus.RUNNING).update(
        status=status, message=message[:2000], finished_at=timezone.now()
    )


def scrape_job_release(job_id: int, message: str) -> None:
    """Hand a running job back to the queue, for a retry."""
    ScrapeJob.objects.filter(pk=job_id, status=JobStatus.RUNNING).update(
        status=JobStatus.QUEUED, message=message[:2000]
    )


class _Tally:
    """Counts of one run of a job, written to the row at most every `interval` s."""

    def __init__(self, job: ScrapeJob, interval: float = 0.5) -> None:
        self.job = job
        self.counts: Counter[str] = Counter()
        self.reasons: Counter[str] = Counter()
        self.samples: list[dict[str, str]] = []
        self.interval = interval
        self._last = 0.0

    def add(self, field: str, reason: str | None = None, url: str = "", msg: str = ""):
        self.counts[field] += 1
        self.counts["processed"] += 1
        if reason:
            self.reasons[reason] += 1
            if len(self.samples) < MAX_REASON_SAMPLES:
                self.samples.append(
                    {"url": url[:300], "code": reason, "message": msg[:200]}
                )

    def flush(self, *, force: bool = False, **extra: Any) -> bool:
        """Save the counts and a heartbeat; return whether cancellation was asked."""
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return False
        self._last = now
        fields = {
            name: self.counts[name]
            for name in (
                "downloaded",
                "duplicates",
                "grouped",
                "conflicts",
                "rejected",
                "failed",
                "processed",
            )
        }
        ScrapeJob.objects.filter(pk=self.job.pk).update(
            reasons=dict(self.reasons),
            reason_samples=self.samples,
            heartbeat_at=timezone.now(),
            **fields,
            **extra,
        )
        return ScrapeJob.objects.filter(pk=self.job.pk, cancel_requested=True).exists()


def scrape_job_run(
    job: ScrapeJob, *, on_progress: Callable[[ScrapeJob, Counter], None] | None = None
) -> ScrapeJob:
    """Run a claimed job to its end: search, download, ingest, count.

    Safe to run again on the same job: URLs already ingested by this job are skipped
    and `image_ingest` refuses duplicates. Raises TransientScrapeError for network
    trouble with the search provider (the caller retries); every other problem ends
    the job `failed` with a message.
    """
    tally = _Tally(job)
    try:
        candidates = _search(job)
    except search.SearchError as exc:
        scrape_job_finish(
            job.pk,
            status=JobStatus.FAILED,
            message=search_error_words(job.provider, exc),
        )
        return _reload(job)

    done_urls = set(job.images.values_list("source_url", flat=True))
    tally.counts["downloaded"] = len(done_urls)
    by_url = {}
    for c in candidates:
        if c.image_url not in done_urls:
            by_url.setdefault(c.image_url, c)
    tally.flush(force=True, found=len(candidates))

    cancelled = False

    def cancel() -> bool:
        return cancelled

    kind = SourceKind.URL if job.provider == "urls" else SourceKind.SEARCH
    # Decoding, re-encoding and writing the files to a staging folder happen beside
    # the downloads, in a small pool; this thread stores them, in batches: each
    # batch costs a handful of queries however many images it holds, and links
    # (rather than writes) its files into place.
    finished: queue.SimpleQueue[Future] = queue.SimpleQueue()
    ready: list[_Normalized] = []
    last_store = time.monotonic()

    def store(*, force: bool = False) -> None:
        nonlocal last_store, cancelled
        while True:
            try:
                ready.append(finished.get_nowait().result())
            except queue.Empty:
                break
        due = time.monotonic() - last_store >= INGEST_BATCH_SECONDS
        if ready and (force or due or len(ready) >= INGEST_BATCH_SIZE):
            _ingest_results(job, ready, by_url, kind, tally)
            ready.clear()
            last_store = time.monotonic()
            if on_progress:
                on_progress(job, tally.counts)
            if tally.flush(force=True):
                cancelled = True

    # What an earlier, killed attempt staged is of no use: start clean.
    staging = Staging.open(_staging_key(job.pk))
    if staging is not None:
        staging.clear()
    try:
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="normalize") as pool:
            for result in fetch.fetch_many(
                list(by_url),
                fetch_limits(),
                max_workers=settings.SNAPCLASS_FETCH_CONCURRENCY,
                per_host=settings.SNAPCLASS_FETCH_PER_HOST,
                cancel=cancel,
            ):
                future = pool.submit(_normalize, result, staging)
                future.add_done_callback(finished.put)
                store()
                if tally.flush():
                    cancelled = True
        # The pool has finished every normalisation: store what is left.
        store(force=True)
    finally:
        if staging is not None:
            staging.clear()

    if cancelled or tally.flush(force=True):
        scrape_job_finish(job.pk, status=JobStatus.CANCELLED, message="Cancelled.")
    else:
        status, message = scrape_outcome(
            provider=job.provider,
            query=job.query,
            found=len(candidates),
            counts=tally.counts,
            reasons=tally.reasons,
        )
        scrape_job_finish(job.pk, status=status, message=message)
    return _reload(job)


def _reload(job: ScrapeJob) -> ScrapeJob:
    job.refresh_from_db()
    return job


def _search(job: ScrapeJob) -> list[search.Candidate]:
    options = provider_options()
    if job.provider == "urls":
        options["urls"] = list(job.urls)
    provider = search.get_provider(job.provider, options)
    try:
        return provider.search(job.query, job.requested, license=job.license or None)
    except (ConnectionError, TimeoutError) as exc:
        raise TransientScrapeError(str(exc)) from exc


_Normalized = tuple[
    fetch.FetchResult,
    imaging.NormalizedImage | imaging.ImageRejected | None,
    tuple[StagedFile, StagedFile] | None,
]


def _normalize(result: fetch.FetchResult, staging: Staging | None) -> _Normalized:
    if not result.ok:
        return result, None, None
    try:
        norm = image_normalize(result.data or b"")
    except imaging.ImageRejected as exc:
        return result, exc, None
    if staging is None:
        return result, norm, None
    try:
        staged = (
            staging.write(norm.jpeg, image_file_name("file", norm.sha256)),
            staging.write(norm.thumbnail, image_file_name("thumbnail", norm.sha256)),
        )
    except OSError as exc:  # the batch saves this one through the storage instead
        logger.warning("could not stage %s: %s", result.url, exc)
        return result, norm, None
    return result, norm, staged


def _ingest_results(
    job: ScrapeJob,
    results: list[_Normalized],
    by_url: dict[str, search.Candidate],
    kind: str,
    tally: _Tally,
) -> None:
    """Count the failures and store the good images of one batch together."""
    items = []
    for result, norm, staged in results:
        if not result.ok:
            field = "rejected" if result.code == "not_an_image" else "failed"
            tally.add(field, result.code or "error", result.url, result.message or "")
        elif isinstance(norm, imaging.ImageRejected):
            tally.add("rejected", norm.code, result.url, norm.message)
        else:
            candidate = by_url[result.url]
            fields = image_fields(
                label=job.label,
                source_kind=kind,
                source_url=result.url,
                page_url=candidate.page_url or "",
                provider=job.provider,
                query=job.query,
                license=candidate.license or job.license,
                extra={"scrape_job": job},
            )
            items.append(IngestItem(norm, fields, staged))
    for outcome in image_ingest_many(items):
        if isinstance(outcome, DuplicateImage):
            tally.add("duplicates")
            continue
        tally.add("downloaded")
        if outcome.status == ImageStatus.REVIEW:
            tally.counts["conflicts"] += 1
        elif outcome.near_duplicate_of_id is not None:
            tally.counts["grouped"] += 1
