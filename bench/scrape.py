"""Scraping throughput: search + concurrent download + validate + ingest, end to end,
beside the same downloads done one after another, against local servers that answer
each image after 20 ms. The images are spread over four loopback addresses
(127.0.0.1-4), as web images are spread over many hosts.

Each side runs ROUNDS times, each round on its own 200 images (a job per round, its
own query, one database and media folder), and the medians are compared: on the
development VM one run varies by +-20%.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import shutil
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
from PIL import Image as PILImage

from bench import Figure
from bench.common import child_env, django_ready, run_child, scratch

N_IMAGES = 200
ROUNDS = 3
LATENCY = 0.020
HOSTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4")


def make_images() -> list[bytes]:
    rng = np.random.default_rng(1)
    out = []
    for _ in range(N_IMAGES * ROUNDS):
        blocks = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
        img = PILImage.fromarray(blocks).resize((256, 192), PILImage.BILINEAR)
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=85)
        out.append(buf.getvalue())
    return out


def serve(images: list[bytes]) -> tuple[list[ThreadingHTTPServer], list[str], str]:
    """Serve the images; the search endpoint answers round R (query "round-R")
    with that round's N_IMAGES URLs."""
    servers = []
    urls: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:
            if self.path.startswith("/search"):
                query = parse_qs(urlsplit(self.path).query).get("q", ["round-0"])[0]
                r = int(query.rsplit("-", 1)[1])
                value = urls[r * N_IMAGES : (r + 1) * N_IMAGES]
                body = json.dumps(
                    {
                        "value": [{"contentUrl": u} for u in value],
                        "nextOffset": N_IMAGES,
                    }
                ).encode()
                ctype = "application/json"
            else:
                time.sleep(LATENCY)
                body = images[int(self.path.rsplit("/", 1)[1].split(".")[0])]
                ctype = "image/jpeg"
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    for host in HOSTS:
        server = ThreadingHTTPServer((host, 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    for i in range(len(images)):
        host, port = servers[i % len(servers)].server_address[:2]
        urls.append(f"http://{host}:{port}/img/{i}.jpg")
    host, port = servers[0].server_address[:2]
    return servers, urls, f"http://{host}:{port}/search"


def _serve_forever(conn) -> None:
    servers, urls, endpoint = serve(make_images())
    conn.send((urls, endpoint))
    conn.recv()  # until the parent is done
    for server in servers:
        server.shutdown()


def child() -> dict:
    """Measure in this process; the servers run in another, so they take no GIL."""
    django_ready()
    from django.conf import settings

    from datasets import fetch, scraping
    from datasets.services import label_get_or_create

    parent_end, child_end = multiprocessing.Pipe()
    server = multiprocessing.get_context("fork").Process(
        target=_serve_forever, args=(child_end,), daemon=True
    )
    server.start()
    urls, endpoint = parent_end.recv()
    settings.BING_SEARCH_ENDPOINT = endpoint
    settings.BING_SEARCH_KEY = "bench"
    limits = scraping.fetch_limits()
    sequential, downloads_only, ours = [], [], []
    try:
        for r in range(ROUNDS):
            batch = urls[r * N_IMAGES : (r + 1) * N_IMAGES]
            started = time.perf_counter()
            for url in batch:
                assert fetch.fetch_one(url, limits).ok
            sequential.append(time.perf_counter() - started)

            started = time.perf_counter()
            results = list(
                fetch.fetch_many(
                    batch,
                    limits,
                    max_workers=settings.SNAPCLASS_FETCH_CONCURRENCY,
                    per_host=settings.SNAPCLASS_FETCH_PER_HOST,
                )
            )
            downloads_only.append(time.perf_counter() - started)
            assert len(results) == N_IMAGES and all(r.ok for r in results)

            label = label_get_or_create(name=f"camera {r}")
            job = scraping.scrape_job_create(
                label=label,
                provider="bing",
                query=f"round-{r}",
                requested=N_IMAGES,
                enqueue=False,
            )
            started = time.perf_counter()
            job = scraping.scrape_job_run(scraping.scrape_job_claim(job.pk))
            ours.append(time.perf_counter() - started)
            assert job.downloaded == N_IMAGES, (job.status, job.message, job.reasons)
    finally:
        parent_end.send("stop")
        server.join(10)
    return {
        "sequential": statistics.median(sequential),
        "downloads_only": statistics.median(downloads_only),
        "ours": statistics.median(ours),
        "ours_rounds": ours,
        "n": N_IMAGES,
    }


def run() -> list[Figure]:
    # A new folder for each run, and the old ones removed only after measuring:
    # on an ext4 without a journal (the development VM's disk) every file created
    # in the next 30 s after a mass delete pays for skipping the freed inodes
    # (`recently_deleted`), which made creating a file up to 6x slower.
    parent = scratch("scrape")
    work = Path(tempfile.mkdtemp(prefix="run-", dir=parent))
    # Django's debug query log is off, as on a production worker.
    env = child_env(
        work,
        SNAPCLASS_FETCH_ALLOW_PRIVATE_HOSTS=",".join(HOSTS),
        DJANGO_DEBUG="false",
    )
    try:
        result = run_child("bench.scrape", "child", env=env)
    finally:
        shutil.rmtree(parent, ignore_errors=True)
    n = result["n"]
    return [
        Figure(
            name="concurrent downloads alone (fetch_many, 200 images, 20 ms latency)",
            value=n / result["downloads_only"],
            baseline=n / result["sequential"],
            unit="images/s",
            better="higher",
            target_ratio=8.0,
            notes="the download stage of a job, without validation and ingest",
        ),
        Figure(
            name="scrape throughput (200 images, 20 ms latency)",
            value=result["n"] / result["ours"],
            baseline=result["n"] / result["sequential"],
            unit="images/s",
            better="higher",
            target_ratio=8.0,
            notes=(
                "search+download+validate+ingest vs downloads one by one; median "
                f"of {ROUNDS} rounds; rounds: "
                + ", ".join(f"{n / t:.0f}/s" for t in result["ours_rounds"])
            ),
        ),
    ]


if __name__ == "__main__":
    assert sys.argv[1:] == ["child"]
    print(json.dumps(child()))
