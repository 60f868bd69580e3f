"""A "provider" over a list of image URLs that someone pasted or uploaded."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from datasets.search.base import (
    Candidate,
    SearchError,
    check_max_results,
    http_url_or_none,
    normalize_license,
)

MAX_URLS = 10_000


def parse_url_list(text: str) -> list[str]:
    """One URL per line; blanks and ``#`` comments skipped; see ``clean_urls``."""
    return clean_urls(text.splitlines())


def clean_urls(urls: Iterable[str]) -> list[str]:
    """Stripped http(s) URLs, first occurrence kept, at most MAX_URLS; rest dropped."""
    kept: dict[str, None] = {}
    for line in urls:
        if not isinstance(line, str):
            continue
        url = line.strip()
        if not url or url.startswith("#") or any(ch.isspace() for ch in url):
            continue
        if http_url_or_none(url) is None:
            continue
        kept[url] = None
        if len(kept) >= MAX_URLS:
            break
    return list(kept)


class UrlListProvider:
    """Returns its URLs in order; the query and licence filter do not apply."""

    name = "urls"

    def __init__(self, urls: Iterable[str]) -> None:
        self.urls = clean_urls(urls)

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> UrlListProvider:
        urls = options.get("urls")
        if urls is None:
            return cls([])
        if isinstance(urls, str):
            return cls(parse_url_list(urls))
        if isinstance(urls, Iterable):
            return cls(urls)
        raise SearchError("bad_input", "urls must be text or a list of strings")

    def search(
        self, query: str, max_results: int, *, license: str | None = None
    ) -> list[Candidate]:
        check_max_results(max_results)
        normalize_license(license)
        return [Candidate(image_url=url) for url in self.urls[:max_results]]
