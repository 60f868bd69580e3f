"""Bing Image Search API v7, paged with ``offset`` and ``nextOffset``."""

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

DEFAULT_ENDPOINT = "https://api.bing.microsoft.com/v7.0/images/search"
MAX_COUNT = 150  # the API's largest page
MAX_PAGES = 20
SAFE_SEARCH = ("Off", "Moderate", "Strict")


class BingProvider:
    name = "bing"

    def __init__(
        self,
        *,
        api_key: str | None,
        endpoint: str = DEFAULT_ENDPOINT,
        timeout: float = DEFAULT_TIMEOUT,
        safe_search: str = "Moderate",
    ) -> None:
        by_lower = {value.lower(): value for value in SAFE_SEARCH}
        if safe_search.lower() not in by_lower:
            raise SearchError(
                "bad_input", f"safe_search must be one of {', '.join(SAFE_SEARCH)}"
            )
        self._api_key = api_key
        self._endpoint = endpoint
        self._timeout = timeout
        self._safe_search = by_lower[safe_search.lower()]

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> BingProvider:
        return cls(
            api_key=str_or_none(options.get("BING_SEARCH_KEY")),
            endpoint=str_or_none(options.get("BING_SEARCH_ENDPOINT"))
            or DEFAULT_ENDPOINT,
            timeout=option_timeout(options),
            safe_search=str_or_none(options.get("BING_SAFESEARCH")) or "Moderate",
        )

    def search(
        self, query: str, max_results: int, *, license: str | None = None
    ) -> list[Candidate]:
        if not self._api_key:
            raise SearchError("missing_key", "BING_SEARCH_KEY is not set")
        query = check_query(query, max_results)
        license = normalize_license(license)
        pages = self._pages(query, max_results, license)
        return collect_pages(pages, max_results, provider=self.name)

    def _pages(
        self, query: str, max_results: int, license: str | None
    ) -> Iterator[list[Candidate]]:
        offset = 0
        for _ in range(MAX_PAGES):
            params: dict[str, str | int] = {
                "q": query,
                "count": min(MAX_COUNT, max_results),
                "offset": offset,
                "safeSearch": self._safe_search,
            }
            if license is not None:
                params["license"] = license
            response = get_json(
                self._endpoint,
                params,
                headers={"Ocp-Apim-Subscription-Key": self._api_key or ""},
                timeout=self._timeout,
                provider=self.name,
            )
            payload = _payload(response)
            rows = payload.get("value", [])
            if not isinstance(rows, list):
                raise SearchError("provider_error", "Bing 'value' is not a list")
            if not rows:
                return
            next_offset = payload.get("nextOffset")
            if next_offset is None:
                next_offset = offset + len(rows)
            if isinstance(next_offset, bool) or not isinstance(next_offset, int):
                raise SearchError("provider_error", "Bing nextOffset is not a number")
            yield [c for row in rows if (c := _candidate(row, license)) is not None]
            if next_offset <= offset:
                return
            offset = next_offset


def _payload(response: JsonResponse) -> dict[str, Any]:
    payload = response.payload
    message = _error_message(payload)
    if response.status == 401:
        raise SearchError("missing_key", message or "Bing refused the key")
    if response.status == 429:
        raise SearchError("rate_limited", message or "Bing rate limit")
    if response.status >= 400:
        raise SearchError(
            "provider_error", f"Bing HTTP {response.status}: {message or '?'}"
        )
    if not isinstance(payload, dict):
        raise SearchError("provider_error", "Bing answered with malformed JSON")
    if message is not None:
        raise SearchError("provider_error", f"Bing: {message}")
    return payload


def _error_message(payload: Any) -> str | None:
    """The message of either error shape: the gateway's or the API's own."""
    if not isinstance(payload, dict):
        return None
    error = payload.get("error")  # {"error": {"code": ..., "message": ...}}
    errors = payload.get("errors")  # {"_type": "ErrorResponse", "errors": [...]}
    if not isinstance(error, dict) and isinstance(errors, list) and errors:
        error = errors[0]
    if not isinstance(error, dict):
        return None
    message = str_or_none(error.get("message"))
    code = str_or_none(error.get("code"))
    if message and code:
        return f"{message} ({code})"
    return message or code


def _candidate(row: Any, license: str | None) -> Candidate | None:
    if not isinstance(row, dict):
        return None
    image_url = http_url_or_none(row.get("contentUrl"))
    if image_url is None:
        return None
    return Candidate(
        image_url=image_url,
        thumbnail_url=http_url_or_none(row.get("thumbnailUrl")),
        page_url=http_url_or_none(row.get("hostPageUrl")),
        title=str_or_none(row.get("name")),
        width=int_or_none(row.get("width")),
        height=int_or_none(row.get("height")),
        license=license,
    )
