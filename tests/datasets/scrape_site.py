"""A local web site for scraping tests: a Bing-compatible search endpoint and images.

`build_site(server, ...)` serves `good` distinct images, `duplicates` URLs whose bytes
repeat earlier images, `broken` URLs that are not usable images, and `slow` URLs that
drip bytes or are oversized. It returns the expected counts.
"""

from __future__ import annotations

import json

from tests.conftest import make_jpeg
from tests.webserver import LocalServer, drip

JPEG = {"Content-Type": "image/jpeg"}


def _broken(i: int) -> tuple[int, dict, bytes]:
    kinds = [
        (404, {"Content-Type": "text/plain"}, b"gone"),
        (200, {"Content-Type": "text/html"}, b"<html><body>not an image</body></html>"),
        (200, JPEG, make_jpeg(10_000 + i)[:300]),  # truncated
        (200, JPEG, b""),  # empty
        (200, JPEG, b"GIF89a but not really a gif at all"),
    ]
    return kinds[i % len(kinds)]


def build_site(
    server: LocalServer,
    *,
    good: int = 165,
    duplicates: int = 10,
    broken: int = 20,
    slow: int = 5,
    latency: float = 0.0,
    size=(160, 120),
    max_bytes: int = 1024 * 1024,
) -> list[str]:
    urls: list[str] = []
    bodies = [make_jpeg(i, size=size) for i in range(good)]
    for i, body in enumerate(bodies):
        urls.append(server.add(f"/img/{i}.jpg", headers=JPEG, body=body, delay=latency))
    for i in range(duplicates):
        urls.append(
            server.add(f"/dup/{i}.jpg", headers=JPEG, body=bodies[i], delay=latency)
        )
    for i in range(broken):
        status, headers, body = _broken(i)
        urls.append(
            server.add(f"/broken/{i}", status=status, headers=headers, body=body)
        )
    for i in range(slow):
        if i % 2 == 0:
            body = make_jpeg(20_000 + i)

            def handler(request, body=body):
                return 200, JPEG, drip(body, interval=0.5, chunk=64)

            urls.append(server.add(f"/slow/{i}.jpg", handler))
        else:
            big = b"\xff\xd8\xff\xe0" + b"\0" * (max_bytes + 1000)
            urls.append(server.add(f"/big/{i}.jpg", headers=JPEG, body=big))
    # Interleave so duplicates and problems are spread through the job.
    urls = urls[::2] + urls[1::2]
    serve_bing(server, urls)
    return urls


def serve_bing(server: LocalServer, urls: list[str], key: str = "test-key") -> str:
    """A Bing Image Search v7 endpoint over `urls` (paging with count/offset)."""

    def search(request):
        if request.headers.get("Ocp-Apim-Subscription-Key") != key:
            body = {"error": {"code": "401", "message": "Access denied: bad key"}}
            return 401, {"Content-Type": "application/json"}, json.dumps(body).encode()
        count = int(request.param("count") or 35)
        offset = int(request.param("offset") or 0)
        page = urls[offset : offset + count]
        body = {
            "value": [
                {
                    "contentUrl": u,
                    "thumbnailUrl": u,
                    "hostPageUrl": f"{server.url('/page')}?u={n}",
                    "name": f"image {n}",
                }
                for n, u in enumerate(page, start=offset)
            ],
            "nextOffset": offset + len(page),
            "totalEstimatedMatches": len(urls),
        }
        return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()

    return server.add("/bing/v7.0/images/search", search)


PALETTE = [(220, 40, 40), (40, 200, 60), (40, 60, 220), (230, 200, 30), (160, 40, 200)]
PNG = {"Content-Type": "image/png"}


def class_image(index: int, seed: int) -> bytes:
    """A noisy image dominated by the colour of class `index`: easy to learn."""
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(1000 * index + seed)
    colour = np.array(PALETTE[index % len(PALETTE)])
    blocks = rng.integers(0, 90, size=(6, 6, 3)) + colour * 0.6
    img = Image.fromarray(blocks.clip(0, 255).astype(np.uint8), "RGB")
    out = io.BytesIO()
    img.resize((96, 96), Image.NEAREST).save(out, "PNG")
    return out.getvalue()


def serve_classes(
    server: LocalServer, names: list[str], *, per_class: int = 12, key: str = "test-key"
) -> dict[str, list[str]]:
    """Images of each class and a Bing-compatible search that finds a class's images
    when its name is in the query. Returns the image URLs per class name."""
    from django.utils.text import slugify

    by_class: dict[str, list[str]] = {}
    for index, name in enumerate(names):
        slug = slugify(name)
        by_class[name] = [
            server.add(f"/img/{slug}/{j}.png", headers=PNG, body=class_image(index, j))
            for j in range(per_class)
        ]

    def search(request):
        if request.headers.get("Ocp-Apim-Subscription-Key") != key:
            body = {"error": {"code": "401", "message": "Access denied: bad key"}}
            return 401, {"Content-Type": "application/json"}, json.dumps(body).encode()
        query = (request.param("q") or "").lower()
        urls = next(
            (u for name, u in by_class.items() if name.lower() in query.split()), []
        )
        count = int(request.param("count") or 35)
        offset = int(request.param("offset") or 0)
        page = urls[offset : offset + count]
        body = {
            "value": [
                {"contentUrl": u, "name": f"image {n}"} for n, u in enumerate(page)
            ],
            "nextOffset": offset + len(page),
        }
        return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()

    server.add("/bing/v7.0/images/search", search)
    return by_class
