"""What every image search provider returns, raises and accepts.

Pure library code: providers get their keys, endpoints and timeouts as arguments.
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit

__all__ = [
    "LICENSES",
    "SEARCH_ERROR_CODES",
    "Candidate",
    "JsonResponse",
    "SearchError",
    "SearchProvider",
    "check_max_results",
    "check_query",
    "collect_pages",
    "get_json",
    "http_url_or_none",
    "int_or_none",
    "normalize_license",
    "option_timeout",
    "str_or_none",
]

SEARCH_ERROR_CODES = frozenset(
    {
        "unknown_provider",
        "missing_key",
        "provider_error",
        "rate_limited",
        "bad_input",
        "no_connection",
    }
)
# The licence filter vocabulary shared by the providers (Bing's and DuckDuckGo's
# names); "any" means no filter.
LICENSES = (
    "any",
    "Public",
    "Share",
    "ShareCommercially",
    "Modify",
    "ModifyCommercially",
)
logger = logging.getLogger(__name__)

MAX_QUERY_LENGTH = 500
DEFAULT_TIMEOUT = 15.0
_MAX_RESPONSE_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class Candidate:
    """One image a provider found; nothing has been downloaded yet."""

    image_url: str
    thumbnail_url: str | None = None
    page_url: str | None = None
    title: str | None = None
    width: int | None = None
    height: int | None = None
    license: str | None = None


class SearchError(Exception):
    """A search that could not run; ``code`` is one of SEARCH_ERROR_CODES."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class SearchProvider(Protocol):
    name: str

    def search(
        self, query: str, max_results: int, *, license: str | None = None
    ) -> list[Candidate]: ...


def check_query(query: str, max_results: int) -> str:
    """The stripped query, or SearchError("bad_input")."""
    if not isinstance(query, str) or not query.strip():
        raise SearchError("bad_input", "the query is empty")
    if len(query) > MAX_QUERY_LENGTH:
        raise SearchError("bad_input", f"the query is over {MAX_QUERY_LENGTH} chars")
    check_max_results(max_results)
    return query.strip()


def check_max_results(max_results: int) -> None:
    """SearchError("bad_input") unless ``max_results`` is a positive int."""
    if isinstance(max_results, bool) or not isinstance(max_results, int):
        raise SearchError("bad_input", "max_results must be an integer")
    if max_results < 1:
        raise SearchError("bad_input", "max_results must be at least 1")


def normalize_license(license: str | None) -> str | None:
    """The canonical licence name (any case accepted); None for no filter."""
    if license is None or not license.strip():
        return None
    by_lower = {name.lower(): name for name in LICENSES}
    name = by_lower.get(license.strip().lower())
    if name is None:
        raise SearchError(
            "bad_input",
            f"unknown license {license!r}; use one of {', '.join(LICENSES)}",
        )
    return None if name == "any" else name


def collect_pages(
    pages: Iterable[list[Candidate]], max_results: int, *, provider: str
) -> list[Candidate]:
    """Gather candidates page by page, without repeats, until there are enough.

    Stops early when a page adds nothing new. A failure on a later page keeps what
    the earlier pages found (logged), so a rate limit halfway costs only the rest.
    """
    found: dict[str, Candidate] = {}
    try:
        for page in pages:
            before = len(found)
            for candidate in page:
                found.setdefault(candidate.image_url, candidate)
                if len(found) >= max_results:
                    return list(found.values())
            if len(found) == before:
                break
    except SearchError as exc:
        if not found:
            raise
        logger.warning(
            "%s search stopped after %d results: %s", provider, len(found), exc
        )
    return list(found.values())


@dataclass(frozen=True)
class JsonResponse:
    status: int
    payload: Any  # None when the body was not JSON


def get_json(
    endpoint: str,
    params: Mapping[str, str | int],
    *,
    headers: Mapping[str, str] | None = None,
    timeout: float,
    provider: str,
) -> JsonResponse:
    """GET ``endpoint?params`` and parse the JSON body, whatever the status.

    Network failures raise SearchError("provider_error"); HTTP error statuses are
    returned so that each provider can read its own error format.
    """
    separator = "&" if urlsplit(endpoint).query else "?"
    request = urllib.request.Request(
        endpoint + separator + urlencode(params),
        headers={"Accept": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, body = response.status, response.read(_MAX_RESPONSE_BYTES)
    except urllib.error.HTTPError as exc:
        with exc:
            status, body = exc.code, exc.read(_MAX_RESPONSE_BYTES)
    except (OSError, ValueError, http.client.HTTPException) as exc:
        # URLError, timeouts, resets, cut-off bodies, malformed endpoint URLs
        reason = getattr(exc, "reason", None) or exc
        if isinstance(reason, (ConnectionError, TimeoutError, socket.gaierror)):
            # Nothing answered at all: no route, no DNS, refused, silent.
            host = urlsplit(endpoint).netloc or endpoint
            raise SearchError("no_connection", f"{host}: {reason}") from None
        raise SearchError("provider_error", f"{provider}: {reason}") from None
    try:
        payload = json.loads(body)
    except ValueError:  # includes UnicodeDecodeError
        payload = None
    return JsonResponse(status=status, payload=payload)


def option_timeout(
    options: Mapping[str, Any], default: float = DEFAULT_TIMEOUT
) -> float:
    """The ``timeout`` option in seconds, or SearchError("bad_input")."""
    value = options.get("timeout", default)
    try:
        timeout = float(value)
    except (TypeError, ValueError):
        raise SearchError("bad_input", f"timeout must be a number: {value!r}") from None
    if not timeout > 0:
        raise SearchError("bad_input", f"timeout must be positive: {value!r}")
    return timeout


def str_or_none(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def http_url_or_none(value: Any) -> str | None:
    """``value`` if it is an absolute http(s) URL, else None."""
    text = str_or_none(value)
    if text is None:
        return None
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return text


def int_or_none(value: Any) -> int | None:
    """A positive int from an int or a numeric string, else None."""
    if isinstance(value, bool):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if number > 0 else None
