"""Image search providers behind one small interface.

Adding a provider: one module with a class that has ``name``, ``search(...)`` and
``from_options(options)``, and one entry in PROVIDERS.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from datasets.search import bing, ddg, serpapi, urls
from datasets.search.base import Candidate, SearchError, SearchProvider

__all__ = [
    "PROVIDERS",
    "Candidate",
    "SearchError",
    "SearchProvider",
    "get_provider",
]

PROVIDERS: dict[str, Callable[[Mapping[str, Any]], SearchProvider]] = {
    "ddg": ddg.DdgProvider.from_options,
    "serpapi": serpapi.SerpApiProvider.from_options,
    "bing": bing.BingProvider.from_options,
    "urls": urls.UrlListProvider.from_options,
}


def get_provider(name: str, options: Mapping[str, Any] | None = None) -> SearchProvider:
    """Build the provider called ``name`` from ``options`` (keys, endpoints, timeout).

    Options: SERPAPI_KEY, SERPAPI_ENDPOINT, BING_SEARCH_KEY, BING_SEARCH_ENDPOINT,
    BING_SAFESEARCH, DDG_SAFESEARCH, timeout (seconds), urls (text or list).
    """
    factory = PROVIDERS.get(name)
    if factory is None:
        raise SearchError(
            "unknown_provider",
            f"unknown search provider {name!r}; known: {', '.join(PROVIDERS)}",
        )
    return factory(options or {})
