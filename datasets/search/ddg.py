"""DuckDuckGo (and the other ddgs backends) image search; needs no key."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

from ddgs import DDGS
from ddgs.exceptions import DDGSException, RatelimitException, TimeoutException

from datasets.search.base import (
    DEFAULT_TIMEOUT,
    Candidate,
    SearchError,
    check_query,
    collect_pages,
    http_url_or_none,
    int_or_none,
    normalize_license,
    option_timeout,
    str_or_none,
)

SAFESEARCH = ("on", "moderate", "off")
MAX_PAGES = 5
# ddgs raises this, with this text, when every backend came back empty.
_NO_RESULTS = "No results found."
# What ddgs's messages say when no request got an answer at all.
_NO_CONNECTION = (
    "DNSError",
    "ConnectError",
    "Connection refused",
    "error sending request",
    "Network is unreachable",
    "timed out",
)


class ImagesClient(Protocol):
    def images(self, query: str, **kwargs: Any) -> list[dict[str, Any]]: ...


class DdgProvider:
    name = "ddg"

    def __init__(
        self,
        *,
        safesearch: str = "moderate",
        timeout: float = DEFAULT_TIMEOUT,
        proxy: str | None = None,
        client_factory: Callable[[], ImagesClient] | None = None,
    ) -> None:
        if safesearch.lower() not in SAFESEARCH:
            raise SearchError(
                "bad_input", f"DDG_SAFESEARCH must be one of {', '.join(SAFESEARCH)}"
            )
        self._safesearch = safesearch.lower()
        # DDGS wants whole seconds.
        seconds = max(1, math.ceil(timeout))
        self._client_factory = client_factory or (
            lambda: DDGS(timeout=seconds, proxy=proxy)
        )

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> DdgProvider:
        return cls(
            safesearch=str_or_none(options.get("DDG_SAFESEARCH")) or "moderate",
            timeout=option_timeout(options),
            proxy=str_or_none(options.get("DDG_PROXY")),
        )

    def search(
        self, query: str, max_results: int, *, license: str | None = None
    ) -> list[Candidate]:
        query = check_query(query, max_results)
        license = normalize_license(license)
        pages = self._pages(query, max_results, license)
        return collect_pages(pages, max_results, provider=self.name)

    def _pages(
        self, query: str, max_results: int, license: str | None
    ) -> Iterator[list[Candidate]]:
        client = self._client_factory()
        options: dict[str, Any] = {
            "max_results": max_results,
            "safesearch": self._safesearch,
        }
        if license is not None:
            options["license_image"] = license
        for page in range(1, MAX_PAGES + 1):
            try:
                rows = client.images(query, page=page, **options)
            except RatelimitException as exc:
                raise SearchError("rate_limited", str(exc) or "rate limited") from None
            except TimeoutException:
                raise SearchError("no_connection", "timed out") from None
            except DDGSException as exc:
                if str(exc) == _NO_RESULTS:
                    return
                text = str(exc) or repr(exc)
                if any(marker in text for marker in _NO_CONNECTION):
                    # ddgs's text names the hosts of the engines it tried behind
                    # DuckDuckGo; only the kind of failure is worth repeating.
                    raise SearchError(
                        "no_connection", _connection_failure(text)
                    ) from None
                raise SearchError("provider_error", text) from None
            if not isinstance(rows, list):
                raise SearchError("provider_error", "ddgs returned no list of results")
            yield [c for row in rows if (c := _candidate(row, license)) is not None]


def _connection_failure(text: str) -> str:
    lowered = text.lower()
    if "dns" in lowered:
        return "DNS lookup failed"
    if "refused" in lowered:
        return "connection refused"
    if "timed out" in lowered or "timeout" in lowered:
        return "timed out"
    if "unreachable" in lowered:
        return "network unreachable"
    return "could not connect"


def _candidate(row: Any, license: str | None) -> Candidate | None:
    if not isinstance(row, dict):
        return None
    image_url = http_url_or_none(row.get("image"))
    if image_url is None:
        return None
    return Candidate(
        image_url=image_url,
        thumbnail_url=http_url_or_none(row.get("thumbnail")),
        page_url=http_url_or_none(row.get("url")),
        title=str_or_none(row.get("title")),
        width=int_or_none(row.get("width")),
        height=int_or_none(row.get("height")),
        license=license,
    )
