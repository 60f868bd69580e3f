"""Google Images through SerpApi (engine=google_images), paged with ``ijn``."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from datasets.search.base import (
    DEFAULT_TIMEOUT,
    Candidate,
    JsonResponse,
    SearchError,
    check_query,
    collect_pages,
    get_json,
    http_url_or_none,
    int_or_none,
    normalize_license,
    option_timeout,
    str_or_none,
)

DEFAULT_ENDPOINT = "https://serpapi.com/search.json"
MAX_PAGES = 10  # about 100 images a page
# Google's usage-rights filters; it has none for public domain only.
_LICENSES = {
    "Share": "f",
    "ShareCommercially": "fc",
    "Modify": "fm",
    "ModifyCommercially": "fmc",
}


class SerpApiProvider:
    name = "serpapi"

    def __init__(
        self,
        *,
        api_key: str | None,
        endpoint: str = DEFAULT_ENDPOINT,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._api_key = api_key
        self._endpoint = endpoint
        self._timeout = timeout

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> SerpApiProvider:
        return cls(
            api_key=str_or_none(options.get("SERPAPI_KEY")),
            endpoint=str_or_none(options.get("SERPAPI_ENDPOINT")) or DEFAULT_ENDPOINT,
            timeout=option_timeout(options),
        )

    def search(
        self, query: str, max_results: int, *, license: str | None = None
    ) -> list[Candidate]:
        if not self._api_key:
            raise SearchError("missing_key", "SERPAPI_KEY is not set")
        query = check_query(query, max_results)
        license = normalize_license(license)
        if license is not None and license not in _LICENSES:
            raise SearchError(
                "bad_input", f"serpapi cannot filter by license {license!r}"
            )
        pages = self._pages(query, license)
        return collect_pages(pages, max_results, provider=self.name)

    def _pages(self, query: str, license: str | None) -> Iterator[list[Candidate]]:
        for page in range(MAX_PAGES):
            params: dict[str, str | int] = {
                "engine": "google_images",
                "q": query,
                "api_key": self._api_key or "",
                "ijn": page,
            }
            if license is not None:
                params["licenses"] = _LICENSES[license]
            response = get_json(
                self._endpoint, params, timeout=self._timeout, provider=self.name
            )
            rows = _rows(response)
            if not rows:
                return
            yield [c for row in rows if (c := _candidate(row, license)) is not None]


def _rows(response: JsonResponse) -> list[Any]:
    payload = response.payload
    message = None
    if isinstance(payload, dict):
        message = str_or_none(payload.get("error"))
    if response.status == 401:
        raise SearchError("missing_key", message or "SerpApi refused the API key")
    if response.status == 429:
        raise SearchError("rate_limited", message or "SerpApi rate limit")
    if response.status >= 400:
        raise SearchError(
            "provider_error", f"SerpApi HTTP {response.status}: {message or '?'}"
        )
    if not isinstance(payload, dict):
        raise SearchError("provider_error", "SerpApi answered with malformed JSON")
    rows = payload.get("images_results")
    if rows is None:
        # SerpApi reports "no (more) results" as a 200 carrying an error message.
        if message is None or "results" in message.lower():
            return []
        raise SearchError("provider_error", f"SerpApi: {message}")
    if not isinstance(rows, list):
        raise SearchError("provider_error", "SerpApi images_results is not a list")
    return rows


def _candidate(row: Any, license: str | None) -> Candidate | None:
    if not isinstance(row, dict):
        return None
    image_url = http_url_or_none(row.get("original"))
    if image_url is None:
        return None
    return Candidate(
        image_url=image_url,
        thumbnail_url=http_url_or_none(row.get("thumbnail")),
        page_url=http_url_or_none(row.get("link")),
        title=str_or_none(row.get("title")),
        width=int_or_none(row.get("original_width")),
        height=int_or_none(row.get("original_height")),
        license=http_url_or_none(row.get("license_details_url")) or license,
    )
