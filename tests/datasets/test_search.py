"""Search providers against local servers that speak Bing's and SerpApi's JSON."""

from __future__ import annotations

import json
import logging
import socket
from pathlib import Path
from typing import Any

import pytest
from ddgs.exceptions import DDGSException, RatelimitException, TimeoutException

from datasets.search import PROVIDERS, Candidate, SearchError, get_provider
from datasets.search.ddg import DdgProvider
from datasets.search.urls import MAX_URLS, UrlListProvider, parse_url_list
from tests.webserver import LocalServer, Request, Response, local_server

__all__ = ["local_server"]  # the fixture, imported for pytest

FIXTURES = Path(__file__).parent / "fixtures"
KEY = "good-key"


def json_response(status: int, payload: Any) -> Response:
    return status, {"Content-Type": "application/json"}, json.dumps(payload).encode()


# --- Bing Image Search v7 ---


def bing_image(i: int) -> dict[str, Any]:
    return {
        "name": f"Cat {i}",
        "contentUrl": f"https://images.example.com/cat{i}.jpg",
        "thumbnailUrl": f"https://tse.example.net/th?id={i}",
        "hostPageUrl": f"https://pages.example.com/cat{i}",
        "width": 800 + i,
        "height": 600,
        "encodingFormat": "jpeg",
    }


class FakeBing:
    """Bing's paging: ``count`` and ``offset`` in, ``value`` and ``nextOffset`` out."""

    def __init__(self, total: int) -> None:
        self.images = [bing_image(i) for i in range(total)]

    def __call__(self, request: Request) -> Response:
        if request.headers.get("Ocp-Apim-Subscription-Key") != KEY:
            return json_response(
                401,
                {
                    "error": {
                        "code": "401",
                        "message": "Access denied due to invalid subscription key.",
                    }
                },
            )
        count = int(request.param("count") or 35)
        offset = int(request.param("offset") or 0)
        assert count <= 150
        page = self.images[offset : offset + count]
        return json_response(
            200,
            {
                "_type": "Images",
                "totalEstimatedMatches": len(self.images),
                "nextOffset": offset + len(page),
                "value": page,
            },
        )


def bing(server: LocalServer, key: str | None = KEY, **options: Any) -> Any:
    return get_provider(
        "bing",
        {
            "BING_SEARCH_KEY": key,
            "BING_SEARCH_ENDPOINT": server.url("/v7.0/images/search"),
            "timeout": 5,
            **options,
        },
    )


def test_bing_pages_until_it_has_enough(local_server: LocalServer) -> None:
    local_server.add("/v7.0/images/search", FakeBing(total=400))

    results = bing(local_server).search("tabby cat", 320)

    assert len(results) == 320
    assert results[0] == Candidate(
        image_url="https://images.example.com/cat0.jpg",
        thumbnail_url="https://tse.example.net/th?id=0",
        page_url="https://pages.example.com/cat0",
        title="Cat 0",
        width=800,
        height=600,
    )
    assert [r.param("offset") for r in local_server.requests] == ["0", "150", "300"]
    assert {r.param("q") for r in local_server.requests} == {"tabby cat"}
    assert {r.param("safeSearch") for r in local_server.requests} == {"Moderate"}


def test_bing_stops_when_results_run_out(local_server: LocalServer) -> None:
    local_server.add("/v7.0/images/search", FakeBing(total=200))

    results = bing(local_server).search("cat", 1000)

    assert len(results) == 200
    assert [r.param("offset") for r in local_server.requests] == ["0", "150", "200"]


def test_bing_stops_when_next_offset_does_not_advance(
    local_server: LocalServer,
) -> None:
    def stuck(request: Request) -> Response:
        page = [bing_image(i) for i in range(10)]
        return json_response(200, {"nextOffset": 0, "value": page})

    local_server.add("/v7.0/images/search", stuck)

    results = bing(local_server).search("cat", 100)

    assert len(results) == 10
    assert len(local_server.requests) == 1


def test_bing_follows_next_offset_past_skipped_results(
    local_server: LocalServer,
) -> None:
    def skipping(request: Request) -> Response:
        offset = int(request.param("offset") or 0)
        page = [bing_image(offset + i) for i in range(5)] if offset < 100 else []
        return json_response(200, {"nextOffset": offset + 50, "value": page})

    local_server.add("/v7.0/images/search", skipping)

    results = bing(local_server).search("cat", 8)

    assert len(results) == 8
    assert [r.param("offset") for r in local_server.requests] == ["0", "50"]


def test_bing_passes_the_license_filter(local_server: LocalServer) -> None:
    local_server.add("/v7.0/images/search", FakeBing(total=3))

    results = bing(local_server).search("cat", 3, license="sharecommercially")

    assert local_server.requests[0].param("license") == "ShareCommercially"
    assert {r.license for r in results} == {"ShareCommercially"}


def test_bing_without_a_key_fails_before_any_request(
    local_server: LocalServer,
) -> None:
    local_server.add("/v7.0/images/search", FakeBing(total=3))

    with pytest.raises(SearchError) as excinfo:
        bing(local_server, key=None).search("cat", 3)

    assert excinfo.value.code == "missing_key"
    assert local_server.requests == []


def test_bing_reports_a_refused_key_with_the_api_message(
    local_server: LocalServer,
) -> None:
    local_server.add("/v7.0/images/search", FakeBing(total=3))

    with pytest.raises(SearchError) as excinfo:
        bing(local_server, key="wrong-key").search("cat", 3)

    assert excinfo.value.code == "missing_key"
    assert "invalid subscription key" in excinfo.value.message
    assert local_server.requests[0].headers["Ocp-Apim-Subscription-Key"] == (
        "wrong-key"
    )


@pytest.mark.parametrize(
    ("status", "body", "code", "text"),
    [
        (
            429,
            {"error": {"code": "429", "message": "Rate limit is exceeded."}},
            "rate_limited",
            "Rate limit is exceeded.",
        ),
        (
            403,
            {"error": {"code": "403", "message": "Out of call volume quota."}},
            "provider_error",
            "Out of call volume quota.",
        ),
        (
            400,
            {
                "_type": "ErrorResponse",
                "errors": [{"code": "InvalidRequest", "message": "bad count"}],
            },
            "provider_error",
            "bad count",
        ),
        (500, "<html>oops</html>", "provider_error", "500"),
        (200, "{not json", "provider_error", "malformed"),
        (200, ["a", "list"], "provider_error", "malformed"),
        (200, {"value": {"not": "a list"}}, "provider_error", "not a list"),
        (200, {"value": [bing_image(0)], "nextOffset": "x"}, "provider_error", ""),
    ],
)
def test_bing_errors(
    local_server: LocalServer, status: int, body: Any, code: str, text: str
) -> None:
    raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    local_server.add("/v7.0/images/search", status=status, body=raw)

    with pytest.raises(SearchError) as excinfo:
        bing(local_server).search("cat", 3)

    assert excinfo.value.code == code
    assert text in excinfo.value.message


def test_bing_skips_unusable_rows(local_server: LocalServer) -> None:
    rows = [
        "not an object",
        {"name": "no url"},
        {"contentUrl": "javascript:alert(1)"},
        {"contentUrl": "https://ok.example.com/a.jpg", "width": "wide", "height": -1},
    ]
    local_server.add("/v7.0/images/search", body=json.dumps({"value": rows}).encode())

    results = bing(local_server).search("cat", 10)

    assert results == [Candidate(image_url="https://ok.example.com/a.jpg")]


def test_a_failure_after_the_first_page_keeps_what_was_found(
    local_server: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeBing(total=400)

    def flaky(request: Request) -> Response:
        if request.param("offset") != "0":
            return json_response(429, {"error": {"message": "slow down"}})
        return fake(request)

    local_server.add("/v7.0/images/search", flaky)

    with caplog.at_level(logging.WARNING):
        results = bing(local_server).search("cat", 300)

    assert len(results) == 150
    assert "slow down" in caplog.text


def test_an_unreachable_endpoint_is_no_connection() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    provider = get_provider(
        "bing",
        {"BING_SEARCH_KEY": KEY, "BING_SEARCH_ENDPOINT": f"http://127.0.0.1:{port}/"},
    )

    with pytest.raises(SearchError) as excinfo:
        provider.search("cat", 3)

    assert excinfo.value.code == "no_connection"
    assert f"127.0.0.1:{port}" in excinfo.value.message


def test_a_slow_endpoint_times_out_as_no_connection(
    local_server: LocalServer,
) -> None:
    local_server.add("/v7.0/images/search", FakeBing(total=3), delay=2)

    with pytest.raises(SearchError) as excinfo:
        bing(local_server, timeout=0.3).search("cat", 3)

    assert excinfo.value.code == "no_connection"


# --- SerpApi (Google Images) ---


def serp_image(i: int) -> dict[str, Any]:
    return {
        "position": i + 1,
        "thumbnail": f"https://serpapi.example.com/thumb/{i}.jpeg",
        "source": "Example Photos",
        "title": f"Dog {i}",
        "link": f"https://photos.example.com/dog{i}",
        "original": f"https://photos.example.com/full/dog{i}.jpg",
        "original_width": 1200,
        "original_height": 900,
        "is_product": False,
    }


class FakeSerpApi:
    """SerpApi's google_images engine: pages of 100 by ``ijn``."""

    def __init__(self, total: int) -> None:
        self.images = [serp_image(i) for i in range(total)]

    def __call__(self, request: Request) -> Response:
        if request.param("api_key") != KEY:
            return json_response(
                401,
                {
                    "error": "Invalid API key. Your API key should be here: "
                    "https://serpapi.com/manage-api-key"
                },
            )
        assert request.param("engine") == "google_images"
        page = int(request.param("ijn") or 0)
        rows = self.images[page * 100 : (page + 1) * 100]
        if not rows:
            return json_response(
                200,
                {
                    "search_metadata": {"status": "Success"},
                    "error": "Google hasn't returned any results for this query.",
                },
            )
        return json_response(
            200, {"search_metadata": {"status": "Success"}, "images_results": rows}
        )


def serpapi(server: LocalServer, key: str | None = KEY) -> Any:
    return get_provider(
        "serpapi",
        {
            "SERPAPI_KEY": key,
            "SERPAPI_ENDPOINT": server.url("/search.json"),
            "timeout": 5,
        },
    )


def test_serpapi_pages_until_it_has_enough(local_server: LocalServer) -> None:
    local_server.add("/search.json", FakeSerpApi(total=250))

    results = serpapi(local_server).search("corgi", 230)

    assert len(results) == 230
    assert results[0] == Candidate(
        image_url="https://photos.example.com/full/dog0.jpg",
        thumbnail_url="https://serpapi.example.com/thumb/0.jpeg",
        page_url="https://photos.example.com/dog0",
        title="Dog 0",
        width=1200,
        height=900,
    )
    assert [r.param("ijn") for r in local_server.requests] == ["0", "1", "2"]
    assert {r.param("q") for r in local_server.requests} == {"corgi"}


def test_serpapi_stops_when_google_has_no_more(local_server: LocalServer) -> None:
    local_server.add("/search.json", FakeSerpApi(total=150))

    results = serpapi(local_server).search("corgi", 500)

    assert len(results) == 150
    assert [r.param("ijn") for r in local_server.requests] == ["0", "1", "2"]


def test_serpapi_with_no_results_at_all_is_empty(local_server: LocalServer) -> None:
    local_server.add("/search.json", FakeSerpApi(total=0))

    assert serpapi(local_server).search("qwxzzy", 10) == []


def test_serpapi_maps_the_license_filter_and_details(
    local_server: LocalServer,
) -> None:
    row = serp_image(0) | {"license_details_url": "https://example.com/license"}
    body = json.dumps({"images_results": [row, serp_image(1)]}).encode()
    local_server.add("/search.json", body=body)

    results = serpapi(local_server).search("corgi", 2, license="Modify")

    assert local_server.requests[0].param("licenses") == "fm"
    assert [r.license for r in results] == ["https://example.com/license", "Modify"]


def test_serpapi_has_no_public_domain_filter(local_server: LocalServer) -> None:
    with pytest.raises(SearchError) as excinfo:
        serpapi(local_server).search("corgi", 2, license="Public")

    assert excinfo.value.code == "bad_input"
    assert local_server.requests == []


def test_serpapi_without_a_key_fails_before_any_request(
    local_server: LocalServer,
) -> None:
    with pytest.raises(SearchError) as excinfo:
        serpapi(local_server, key="").search("corgi", 2)

    assert excinfo.value.code == "missing_key"
    assert local_server.requests == []


def test_serpapi_reports_a_refused_key_with_the_api_message(
    local_server: LocalServer,
) -> None:
    local_server.add("/search.json", FakeSerpApi(total=10))

    with pytest.raises(SearchError) as excinfo:
        serpapi(local_server, key="wrong").search("corgi", 2)

    assert excinfo.value.code == "missing_key"
    assert "Invalid API key" in excinfo.value.message
    assert local_server.requests[0].param("api_key") == "wrong"


@pytest.mark.parametrize(
    ("status", "body", "code", "text"),
    [
        (
            429,
            {"error": "Your account has run out of searches."},
            "rate_limited",
            "run out of searches",
        ),
        (403, {"error": "This account has been disabled."}, "provider_error", "disab"),
        (500, "Internal Server Error", "provider_error", "500"),
        (200, "<html>not json</html>", "provider_error", "malformed"),
        (200, {"error": "Unsupported `foo` parameter."}, "provider_error", "foo"),
        (200, {"images_results": "nope"}, "provider_error", "not a list"),
    ],
)
def test_serpapi_errors(
    local_server: LocalServer, status: int, body: Any, code: str, text: str
) -> None:
    raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    local_server.add("/search.json", status=status, body=raw)

    with pytest.raises(SearchError) as excinfo:
        serpapi(local_server).search("corgi", 3)

    assert excinfo.value.code == code
    assert text in excinfo.value.message


# --- DuckDuckGo through ddgs, at the library boundary ---


def recorded_images() -> list[dict[str, Any]]:
    return json.loads((FIXTURES / "ddg_images.json").read_text())


class RecordedDDGS:
    """Stands in for ddgs.DDGS: replays a recorded response or raises its errors."""

    def __init__(self, *outcomes: list[dict[str, Any]] | Exception) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def images(self, query: str, **kwargs: Any) -> list[dict[str, Any]]:
        self.calls.append((query, kwargs))
        outcome = (
            self.outcomes.pop(0)
            if self.outcomes
            else DDGSException("No results found.")
        )
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def ddg(client: RecordedDDGS, **kwargs: Any) -> DdgProvider:
    return DdgProvider(client_factory=lambda: client, **kwargs)


def test_ddg_maps_a_recorded_response() -> None:
    client = RecordedDDGS(recorded_images())

    results = ddg(client).search("  tabby cat ", 10)

    assert [r.image_url for r in results] == [
        "https://upload.wikimedia.org/wikipedia/commons/4/4d/Cat_November_2010-1a.jpg",
        "https://images.example.org/photos/kitten-yarn.png",
        "http://photos.example.com/black%20cat/fence.webp",
        "https://cdn.example.com/siamese.jpg",
    ]
    assert results[1] == Candidate(
        image_url="https://images.example.org/photos/kitten-yarn.png",
        thumbnail_url="https://tse1.mm.bing.net/th/id/OIP.q8Lw7a4tYc2KqgQ2uC2bqwHaE8?pid=Api",
        page_url="https://blog.example.org/2021/03/kittens",
        title="Kitten playing with a ball of yarn",
        width=1024,
        height=683,
    )
    assert (results[3].width, results[3].height) == (None, None)
    query, kwargs = client.calls[0]
    assert query == "tabby cat"
    assert kwargs == {"max_results": 10, "safesearch": "moderate", "page": 1}


def test_ddg_asks_for_another_page_only_when_short() -> None:
    client = RecordedDDGS(recorded_images(), recorded_images())

    assert len(ddg(client).search("cat", 2)) == 2
    assert len(client.calls) == 1

    client = RecordedDDGS(recorded_images(), recorded_images())
    assert len(ddg(client).search("cat", 50)) == 4
    # The second page brought nothing new, so paging stopped there.
    assert [kwargs["page"] for _, kwargs in client.calls] == [1, 2]


def test_ddg_passes_the_license_and_safesearch() -> None:
    client = RecordedDDGS(recorded_images())

    results = ddg(client, safesearch="Off").search("cat", 3, license="modify")

    _, kwargs = client.calls[0]
    assert kwargs["license_image"] == "Modify"
    assert kwargs["safesearch"] == "off"
    assert {r.license for r in results} == {"Modify"}


def test_ddg_refuses_an_unknown_license_before_searching() -> None:
    client = RecordedDDGS(recorded_images())

    with pytest.raises(SearchError) as excinfo:
        ddg(client).search("cat", 3, license="CC-BY-SA")

    assert excinfo.value.code == "bad_input"
    assert client.calls == []


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (TimeoutException("https://duckduckgo.com/i.js timed out"), "timed out"),
        (
            DDGSException(
                "ConnectError: error sending request for url "
                "(https://www.bing.com/images/async) > Connection refused"
            ),
            "connection refused",
        ),
    ],
)
def test_ddg_without_a_connection_says_how_and_names_no_other_host(
    error: Exception, words: str
) -> None:
    with pytest.raises(SearchError) as excinfo:
        ddg(RecordedDDGS(error)).search("cat", 3)

    assert excinfo.value.code == "no_connection"
    assert excinfo.value.message == words


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (
            RatelimitException("https://duckduckgo.com/i.js 403 Ratelimit"),
            "rate_limited",
        ),
        (DDGSException("backend exploded"), "provider_error"),
    ],
)
def test_ddg_maps_the_library_exceptions(error: Exception, code: str) -> None:
    with pytest.raises(SearchError) as excinfo:
        ddg(RecordedDDGS(error)).search("cat", 3)

    assert excinfo.value.code == code
    assert excinfo.value.message == str(error)


def test_ddg_no_results_is_an_empty_list() -> None:
    assert ddg(RecordedDDGS(DDGSException("No results found."))).search("x", 3) == []


def test_ddg_rate_limit_on_a_later_page_keeps_the_first_page() -> None:
    client = RecordedDDGS(recorded_images(), RatelimitException("403 Ratelimit"))

    results = ddg(client).search("cat", 50)

    assert len(results) == 4


def test_ddg_odd_library_output_is_a_provider_error() -> None:
    with pytest.raises(SearchError) as excinfo:
        ddg(RecordedDDGS({"not": "a list"})).search("cat", 3)  # type: ignore[arg-type]

    assert excinfo.value.code == "provider_error"


def test_ddg_refuses_an_unknown_safesearch() -> None:
    with pytest.raises(SearchError) as excinfo:
        get_provider("ddg", {"DDG_SAFESEARCH": "extreme"})

    assert excinfo.value.code == "bad_input"


# --- URL lists ---


def test_parse_url_list() -> None:
    text = """
        # cats I like
        https://a.example.com/1.jpg
        http://b.example.com/2.png   

        ftp://c.example.com/3.jpg
        javascript:alert(1)
        not a url
        https://a.example.com/1.jpg
        //no-scheme.example.com/4.jpg
        HTTPS://D.example.com/5.webp
        https:///no-host.jpg
    """

    assert parse_url_list(text) == [
        "https://a.example.com/1.jpg",
        "http://b.example.com/2.png",
        "HTTPS://D.example.com/5.webp",
    ]


def test_parse_url_list_keeps_at_most_max_urls() -> None:
    text = "\n".join(f"https://x.example.com/{i}.jpg" for i in range(MAX_URLS + 50))

    urls = parse_url_list(text)

    assert len(urls) == MAX_URLS
    assert urls[-1] == f"https://x.example.com/{MAX_URLS - 1}.jpg"


def test_the_url_provider_returns_the_first_urls() -> None:
    provider = get_provider("urls", {"urls": "https://a/1.jpg\nhttps://b/2.jpg\n"})

    assert provider.search("ignored", 1) == [Candidate(image_url="https://a/1.jpg")]
    assert len(provider.search("", 10)) == 2


def test_the_url_provider_takes_a_list() -> None:
    provider = UrlListProvider([" https://a/1.jpg ", "file:///etc/passwd", 3])  # type: ignore[list-item]

    assert provider.urls == ["https://a/1.jpg"]


# --- the registry ---


def test_get_provider_knows_every_registered_name() -> None:
    options = {"urls": []}
    for name in PROVIDERS:
        assert get_provider(name, options).name == name


def test_an_unknown_provider_lists_the_known_ones() -> None:
    with pytest.raises(SearchError) as excinfo:
        get_provider("altavista", {})

    assert excinfo.value.code == "unknown_provider"
    for name in ("ddg", "serpapi", "bing", "urls"):
        assert name in excinfo.value.message


@pytest.mark.parametrize(
    ("query", "max_results"), [("", 5), ("   ", 5), ("cat", 0), ("cat", "5")]
)
def test_bad_queries_are_refused(query: str, max_results: Any) -> None:
    with pytest.raises(SearchError) as excinfo:
        ddg(RecordedDDGS(recorded_images())).search(query, max_results)

    assert excinfo.value.code == "bad_input"


def test_a_bad_timeout_option_is_refused() -> None:
    with pytest.raises(SearchError) as excinfo:
        get_provider("bing", {"timeout": "soon"})

    assert excinfo.value.code == "bad_input"
