"""The safe downloader against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import io
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
from PIL import Image

from datasets.fetch import (
    DEFAULT_LIMITS,
    FetchError,
    FetchLimits,
    check_public_address,
    fetch_image,
    fetch_many,
    fetch_one,
)
from tests.webserver import LocalServer, Request, Response, drip, local_server

__all__ = ["local_server"]  # the fixture, imported for pytest

LOCAL = FetchLimits(allow_private_hosts=frozenset({"127.0.0.1"}), deadline=5.0)


@cache
def image_bytes(fmt: str, size: tuple[int, int] = (16, 12)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 40, 90)).save(buffer, format=fmt)
    return buffer.getvalue()


def jpeg() -> bytes:
    return image_bytes("JPEG")


# --- happy paths ---


@pytest.mark.parametrize(
    ("fmt", "mime"),
    [
        ("JPEG", "image/jpeg"),
        ("PNG", "image/png"),
        ("WEBP", "image/webp"),
        ("GIF", "image/gif"),
        ("BMP", "image/bmp"),
    ],
)
def test_it_downloads_an_image(local_server: LocalServer, fmt: str, mime: str) -> None:
    url = local_server.add(
        "/img", body=image_bytes(fmt), headers={"Content-Type": mime}
    )

    result = fetch_one(url, LOCAL)

    assert result.ok, result
    assert result.data == image_bytes(fmt)
    assert result.content_type == mime
    assert result.final_url == url
    assert result.url == url
    request = local_server.requests[0]
    assert request.headers["User-Agent"] == LOCAL.user_agent
    assert request.headers["Host"] == f"127.0.0.1:{local_server.port}"


@pytest.mark.parametrize("content_type", [None, "application/octet-stream"])
def test_it_trusts_magic_bytes_when_the_content_type_is_generic(
    local_server: LocalServer, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    url = local_server.add("/blob", body=image_bytes("PNG"), headers=headers)

    assert fetch_image(url, LOCAL) == image_bytes("PNG")


def test_it_encodes_unicode_and_spaces_in_the_path(local_server: LocalServer) -> None:
    local_server.add("/caf%C3%A9%20au%20lait.jpg", body=jpeg())

    data = fetch_image(local_server.url("/café au lait.jpg"), LOCAL)

    assert data == jpeg()
    assert local_server.requests[0].path == "/caf%C3%A9%20au%20lait.jpg"


# --- not an image ---


def test_it_refuses_html(local_server: LocalServer) -> None:
    url = local_server.add(
        "/page", body=b"<html>hi</html>", headers={"Content-Type": "text/html"}
    )

    result = fetch_one(url, LOCAL)

    assert (result.ok, result.code, result.transient) == (False, "not_an_image", False)


def test_it_refuses_html_that_claims_to_be_an_image(local_server: LocalServer) -> None:
    body = b"<!doctype html><html><body>" + b"x" * 100 + b"</body></html>"
    url = local_server.add(
        "/fake.jpg", body=body, headers={"Content-Type": "image/jpeg"}
    )

    result = fetch_one(url, LOCAL)

    assert result.code == "not_an_image"


def test_it_stops_reading_as_soon_as_the_bytes_are_not_an_image(
    local_server: LocalServer,
) -> None:
    # 10 MB of text behind a generic type and a 1 s deadline: sniffing the first
    # bytes must end the download long before it could all arrive slowly.
    def handler(request: Request) -> Response:
        return 200, {}, drip(b"x" * 10_000_000, interval=0.05, chunk=1000)

    url = local_server.add("/text", handler)

    result = fetch_one(url, FetchLimits(allow_private_hosts={"127.0.0.1"}, deadline=1))

    assert result.code == "not_an_image"


# --- size caps ---


def test_it_refuses_a_declared_oversize_body(local_server: LocalServer) -> None:
    url = local_server.add("/big.jpg", body=jpeg() + b"\0" * 5000)
    limits = FetchLimits(allow_private_hosts={"127.0.0.1"}, max_bytes=1000)

    result = fetch_one(url, limits)

    assert (result.code, result.transient) == ("too_large", False)


def test_it_caps_a_chunked_body_whatever_content_length_claims(
    local_server: LocalServer,
) -> None:
    # Content-Length says 100 but the body is chunked (which wins) and 3 MB long.
    def handler(request: Request) -> Response:
        body = (jpeg()[:3] + b"\0" * 3_000_000,)
        headers = [
            ("Content-Type", "image/jpeg"),
            ("Content-Length", "100"),
            ("Transfer-Encoding", "chunked"),
        ]
        return 200, headers, (piece for piece in body)

    url = local_server.add("/liar.jpg", handler)
    limits = FetchLimits(allow_private_hosts={"127.0.0.1"}, max_bytes=1_000_000)

    result = fetch_one(url, limits)

    assert result.code == "too_large"


def test_it_caps_a_body_without_content_length(local_server: LocalServer) -> None:
    def handler(request: Request) -> Response:
        chunks = [jpeg()[:3]] + [b"\0" * 65536] * 40
        return 200, {"Content-Type": "image/jpeg"}, iter(chunks)

    url = local_server.add("/endless.jpg", handler)
    limits = FetchLimits(allow_private_hosts={"127.0.0.1"}, max_bytes=1_000_000)

    result = fetch_one(url, limits)

    assert result.code == "too_large"


def test_it_never_reads_past_an_understated_content_length(
    local_server: LocalServer,
) -> None:
    body = jpeg() + b"\0" * 2_000_000
    url = local_server.add(
        "/short.jpg",
        headers={"Content-Type": "image/jpeg", "Content-Length": "100"},
        body=body,
    )
    limits = FetchLimits(allow_private_hosts={"127.0.0.1"}, max_bytes=1_000_000)

    result = fetch_one(url, limits)

    assert result.ok
    assert result.data == body[:100]


def test_a_body_cut_short_is_a_transient_failure(local_server: LocalServer) -> None:
    url = local_server.add(
        "/cut.jpg",
        headers={"Content-Type": "image/jpeg", "Content-Length": "100000"},
        body=jpeg(),
    )

    result = fetch_one(url, LOCAL)

    assert (result.code, result.transient) == ("connection_error", True)


# --- the total deadline ---


def test_a_slow_drip_is_cut_at_the_deadline(local_server: LocalServer) -> None:
    def handler(request: Request) -> Response:
        body = jpeg() + b"\0" * 1000  # one byte every 0.5 s: minutes in total
        return 200, {"Content-Type": "image/jpeg"}, drip(body, interval=0.5)

    url = local_server.add("/drip.jpg", handler)
    limits = FetchLimits(allow_private_hosts={"127.0.0.1"}, deadline=1.0)

    started = time.monotonic()
    result = fetch_one(url, limits)
    elapsed = time.monotonic() - started

    assert (result.code, result.transient) == ("timeout", True)
    assert elapsed < limits.deadline + 1.5


@pytest.fixture
def header_dripper() -> Iterator[str]:
    """A raw TCP server that sends a status line, then headers one byte a time."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            try:
                conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                while not stop.wait(0.3):
                    conn.sendall(b"a")
            except OSError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/slow-headers.jpg"
    stop.set()
    listener.close()
    thread.join(timeout=5)


def test_slow_headers_are_cut_at_the_deadline(header_dripper: str) -> None:
    limits = FetchLimits(allow_private_hosts={"127.0.0.1"}, deadline=1.0)

    started = time.monotonic()
    result = fetch_one(header_dripper, limits)
    elapsed = time.monotonic() - started

    assert result.code == "timeout"
    assert elapsed < limits.deadline + 1.5


# --- redirects ---


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_it_follows_a_redirect_chain(local_server: LocalServer, status: int) -> None:
    local_server.redirect("/a", "/b", status=status)  # relative
    local_server.redirect("/b", local_server.url("/c"), status=status)  # absolute
    local_server.redirect("/c", "final.jpg", status=status)  # relative to /c
    final = local_server.add("/final.jpg", body=jpeg())

    result = fetch_one(local_server.url("/a"), LOCAL)

    assert result.ok
    assert result.data == jpeg()
    assert result.final_url == final
    assert local_server.hits == {"/a": 1, "/b": 1, "/c": 1, "/final.jpg": 1}


def _chain(server: LocalServer, hops: int) -> str:
    for i in range(hops):
        server.redirect(f"/hop{i}", f"/hop{i + 1}")
    server.add(f"/hop{hops}", body=jpeg())
    return server.url("/hop0")


def test_it_follows_exactly_max_redirects(local_server: LocalServer) -> None:
    url = _chain(local_server, 3)
    limits = FetchLimits(allow_private_hosts={"127.0.0.1"}, max_redirects=3)

    assert fetch_one(url, limits).ok


def test_it_gives_up_after_max_redirects(local_server: LocalServer) -> None:
    url = _chain(local_server, 4)
    limits = FetchLimits(allow_private_hosts={"127.0.0.1"}, max_redirects=3)

    result = fetch_one(url, limits)

    assert (result.code, result.transient) == ("too_many_redirects", False)
    assert local_server.hits["/hop4"] == 0


def test_a_redirect_loop_ends(local_server: LocalServer) -> None:
    local_server.redirect("/ping", "/pong")
    local_server.redirect("/pong", "/ping")

    result = fetch_one(local_server.url("/ping"), LOCAL)

    assert result.code == "too_many_redirects"
    assert sum(local_server.hits.values()) == LOCAL.max_redirects + 1


@pytest.mark.parametrize(
    ("location", "code"),
    [
        ("http://169.254.169.254/latest/meta-data/", "private_address"),
        ("http://[::ffff:169.254.169.254]/latest/meta-data/", "private_address"),
        ("http://10.0.0.1/", "private_address"),
        ("http://localhost/admin", "private_address"),
        ("file:///etc/passwd", "bad_scheme"),
        ("gopher://127.0.0.1:6379/_INFO", "bad_scheme"),
    ],
)
def test_each_redirect_hop_is_checked_again(
    local_server: LocalServer, location: str, code: str
) -> None:
    url = local_server.redirect("/r", location)

    result = fetch_one(url, LOCAL)

    assert (result.ok, result.code) == (False, code)
    assert local_server.hits["/r"] == 1


def test_a_redirect_without_location_fails(local_server: LocalServer) -> None:
    url = local_server.add("/nowhere", status=302)

    assert fetch_one(url, LOCAL).code == "bad_redirect"


# --- SSRF ---


def test_default_limits_refuse_the_loopback_server(local_server: LocalServer) -> None:
    url = local_server.add("/cat.jpg", body=jpeg())

    result = fetch_one(url, DEFAULT_LIMITS)

    assert (result.ok, result.code, result.transient) == (
        False,
        "private_address",
        False,
    )
    assert local_server.hits["/cat.jpg"] == 0


def test_a_host_name_resolving_to_loopback_is_refused(
    local_server: LocalServer,
) -> None:
    local_server.add("/cat.jpg", body=jpeg())

    with pytest.raises(FetchError) as excinfo:
        fetch_image(local_server.url("/cat.jpg", host="localhost"), LOCAL)

    assert excinfo.value.code == "private_address"
    assert local_server.hits["/cat.jpg"] == 0


def test_an_allowed_host_name_may_resolve_to_loopback(
    local_server: LocalServer,
) -> None:
    local_server.add("/cat.jpg", body=jpeg())
    limits = FetchLimits(allow_private_hosts={"LOCALHOST"})

    data = fetch_image(local_server.url("/cat.jpg", host="localhost"), limits)

    assert data == jpeg()
    assert local_server.requests[0].host == "localhost"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://127.1.2.3:8080/x.jpg",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:7f00:1]/",
        "http://[::ffff:169.254.169.254]/",
        "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 of 169.254.169.254
        "http://[2002:7f00:1::]/",  # 6to4 of 127.0.0.1
        "http://[fe80::1]/",
        "http://[fc00::1]/",
        "http://[::]/",
        "http://0.0.0.0/",
        "http://10.1.2.3/",
        "http://172.16.0.1/",
        "http://192.168.1.1/",
        "http://100.64.0.1/",
        "http://224.0.0.1/",
        "http://255.255.255.255/",
        "http://2130706433/",  # 127.0.0.1 as one decimal number
        "http://0x7f.1/",  # and in hex shorthand
    ],
)
def test_non_public_addresses_are_refused(url: str) -> None:
    result = fetch_one(url, FetchLimits(deadline=3))

    assert (result.code, result.transient) == ("private_address", False)


@pytest.mark.parametrize(
    "ip",
    [
        "127.0.0.1",
        "10.0.0.1",
        "172.31.255.255",
        "192.168.0.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "255.255.255.255",
        "224.0.0.251",
        "239.255.255.250",
        "192.0.0.8",
        "198.18.0.1",
        "240.0.0.1",
        "::",
        "::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::127.0.0.1",
        "64:ff9b::7f00:1",
        "2002:a9fe:a9fe::1",
        "fe80::1",
        "fe80::1%eth0",
        "fc00::1",
        "fd12:3456::1",
        "fec0::1",
        "ff02::1",
        "ff0e::1",
        "2001:db8::1",
        "not an ip",
    ],
)
def test_check_public_address_refuses(ip: str) -> None:
    with pytest.raises(FetchError) as excinfo:
        check_public_address(ip)

    assert excinfo.value.code == "private_address"


@pytest.mark.parametrize(
    "ip",
    [
        "8.8.8.8",
        "1.1.1.1",
        "93.184.216.34",
        "2606:4700:4700::1111",
        "2a00:1450:4001:80b::200e",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",
    ],
)
def test_check_public_address_accepts(ip: str) -> None:
    check_public_address(ip)


def test_it_connects_to_the_address_it_checked(
    local_server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # DNS rebinding: the first answer is the one checked, later answers point at
    # the metadata service. The download must connect to the first answer only.
    url = local_server.add("/cat.jpg", body=jpeg())
    answers = iter(["127.0.0.1", "169.254.169.254", "169.254.169.254"])
    lookups: list[str] = []

    def getaddrinfo(host: str, port: int, *args: object, **kwargs: object) -> list:
        lookups.append(host)
        ip = next(answers)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)

    limits = FetchLimits(allow_private_hosts={"images.example"}, deadline=5)

    result = fetch_one(url.replace("127.0.0.1", "images.example"), limits)

    assert result.ok, result
    assert lookups == ["images.example"]
    assert local_server.requests[0].headers["Host"] == (
        f"images.example:{local_server.port}"
    )


# --- bad input ---


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("ftp://127.0.0.1/cat.jpg", "bad_scheme"),
        ("file:///etc/passwd", "bad_scheme"),
        ("javascript:alert(1)", "bad_scheme"),
        ("data:image/png;base64,iVBORw0KGgo=", "bad_scheme"),
        ("//127.0.0.1/cat.jpg", "bad_scheme"),
        ("", "bad_url"),
        ("http://", "bad_url"),
        ("http://user:secret@127.0.0.1/cat.jpg", "bad_url"),
        ("http://user@127.0.0.1/cat.jpg", "bad_url"),
        ("http://[::1/cat.jpg", "bad_url"),
        ("http://127.0.0.1:99999/cat.jpg", "bad_url"),
        ("http://127.0.0.1/cat.jpg\r\nX-Injected: 1", "bad_url"),
    ],
)
def test_it_refuses_bad_urls(url: str, code: str) -> None:
    result = fetch_one(url, LOCAL)

    assert (result.ok, result.code, result.transient) == (False, code, False)


# --- HTTP and connection errors ---


@pytest.mark.parametrize(
    ("status", "transient"),
    [(400, False), (403, False), (404, False), (410, False), (408, True)]
    + [(429, True), (500, True), (502, True), (503, True)],
)
def test_client_errors_are_permanent_and_server_errors_transient(
    local_server: LocalServer, status: int, transient: bool
) -> None:
    url = local_server.add("/x.jpg", status=status, body=b"nope")

    result = fetch_one(url, LOCAL)

    assert (result.code, result.transient) == (f"http_{status}", transient)


def test_a_refused_connection_is_transient() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before the fetch

    result = fetch_one(f"http://127.0.0.1:{port}/cat.jpg", LOCAL)

    assert (result.code, result.transient) == ("connection_error", True)


def test_fetch_image_raises_with_code_and_transient_flag(
    local_server: LocalServer,
) -> None:
    url = local_server.add("/busy.jpg", status=503)

    with pytest.raises(FetchError) as excinfo:
        fetch_image(url, LOCAL)

    assert (excinfo.value.code, excinfo.value.transient) == ("http_503", True)


# --- HTTPS ---


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for the name "localhost" (not for 127.0.0.1)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec"]
        + ["-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"]
        + ["-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"]
        + ["-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def tls_server(certificate: tuple[Path, Path]) -> Iterator[LocalServer]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    with LocalServer(ssl_context=context) as server:
        server.add("/cat.jpg", body=jpeg(), headers={"Content-Type": "image/jpeg"})
        yield server


def test_https_checks_the_certificate_against_the_url_host(
    tls_server: LocalServer, certificate: tuple[Path, Path]
) -> None:
    limits = FetchLimits(
        allow_private_hosts={"localhost"}, ca_file=str(certificate[0]), deadline=5
    )

    result = fetch_one(tls_server.url("/cat.jpg", host="localhost"), limits)

    assert result.ok, result
    assert result.data == jpeg()
    assert tls_server.requests[0].headers["Host"] == f"localhost:{tls_server.port}"


def test_https_refuses_a_certificate_for_another_name(
    tls_server: LocalServer, certificate: tuple[Path, Path]
) -> None:
    limits = FetchLimits(
        allow_private_hosts={"127.0.0.1"}, ca_file=str(certificate[0]), deadline=5
    )

    result = fetch_one(tls_server.url("/cat.jpg"), limits)

    assert (result.code, result.transient) == ("tls_error", False)


def test_https_refuses_an_untrusted_certificate(tls_server: LocalServer) -> None:
    limits = FetchLimits(allow_private_hosts={"localhost"}, deadline=5)

    result = fetch_one(tls_server.url("/cat.jpg", host="localhost"), limits)

    assert (result.code, result.transient) == ("tls_error", False)
    assert tls_server.hits["/cat.jpg"] == 0


# --- many downloads ---


def test_fetch_many_runs_concurrently_within_the_per_host_cap(
    local_server: LocalServer,
) -> None:
    for i in range(40):
        local_server.add(f"/img{i}.jpg", body=jpeg(), delay=0.02)
    # Two host names for the same server: the cap is per host, not per server.
    urls = [
        local_server.url(f"/img{i}.jpg", host="127.0.0.1" if i % 2 else "localhost")
        for i in range(40)
    ]
    limits = FetchLimits(allow_private_hosts={"127.0.0.1", "localhost"}, deadline=5)

    results = list(fetch_many(urls, limits, max_workers=16, per_host=3))

    assert sorted(r.url for r in results) == sorted(urls)
    assert all(r.ok and r.data == jpeg() for r in results)
    assert local_server.max_concurrent["127.0.0.1"] == 3
    assert local_server.max_concurrent["localhost"] == 3
    assert local_server.max_concurrent_total > 3


def test_fetch_many_respects_max_workers(local_server: LocalServer) -> None:
    for i in range(12):
        local_server.add(f"/img{i}.jpg", body=jpeg(), delay=0.02)
    urls = [local_server.url(f"/img{i}.jpg") for i in range(12)]

    results = list(fetch_many(urls, LOCAL, max_workers=2, per_host=10))

    assert len(results) == 12
    assert local_server.max_concurrent_total == 2


def test_fetch_many_goes_on_downloading_while_the_caller_is_busy(
    local_server: LocalServer,
) -> None:
    for i in range(8):
        local_server.add(f"/img{i}.jpg", body=jpeg(), delay=0.03)
    urls = [local_server.url(f"/img{i}.jpg") for i in range(8)]

    results = fetch_many(urls, LOCAL, max_workers=2, per_host=2)
    first = next(results)
    # The caller is busy with the first image; the pool is not left idle. Four
    # rounds of two take 0.12 s: wait for them, with room for a slow machine.
    deadline = time.monotonic() + 5
    while sum(local_server.hits.values()) < 8 and time.monotonic() < deadline:
        time.sleep(0.01)
    hits = sum(local_server.hits.values())
    rest = list(results)

    assert hits == 8
    assert first.ok and len(rest) == 7 and all(r.ok for r in rest)
    assert local_server.max_concurrent_total == 2


def test_fetch_many_reports_each_failure_with_its_url(
    local_server: LocalServer,
) -> None:
    good = local_server.add("/good.jpg", body=jpeg())
    missing = local_server.url("/missing.jpg")
    urls = [good, missing, "ftp://example.com/x.jpg", "http://10.0.0.1/x.jpg"]

    results = {r.url: r for r in fetch_many(urls, LOCAL)}

    assert results[good].ok
    assert results[missing].code == "http_404"
    assert results["ftp://example.com/x.jpg"].code == "bad_scheme"
    assert results["http://10.0.0.1/x.jpg"].code == "private_address"


def test_fetch_many_starts_nothing_new_once_cancelled(
    local_server: LocalServer,
) -> None:
    for i in range(10):
        local_server.add(f"/img{i}.jpg", body=jpeg())
    urls = [local_server.url(f"/img{i}.jpg") for i in range(10)]
    asked = 0

    def cancel() -> bool:
        nonlocal asked
        asked += 1
        return asked > 3

    results = list(fetch_many(urls, LOCAL, max_workers=1, cancel=cancel))

    assert len(results) == 3
    assert all(r.ok for r in results)
    assert sum(local_server.hits.values()) == 3


def test_fetch_many_can_be_abandoned_early(local_server: LocalServer) -> None:
    for i in range(20):
        local_server.add(f"/img{i}.jpg", body=jpeg(), delay=0.02)
    urls = [local_server.url(f"/img{i}.jpg") for i in range(20)]

    results = fetch_many(urls, LOCAL, max_workers=4)
    first = next(results)
    results.close()

    assert first.ok
    assert sum(local_server.hits.values()) < 20


def test_fetch_many_of_nothing_yields_nothing() -> None:
    assert list(fetch_many([], LOCAL)) == []


def test_limits_reject_nonsense() -> None:
    with pytest.raises(ValueError):
        FetchLimits(max_bytes=0)
    with pytest.raises(ValueError):
        list(fetch_many(["http://x/"], per_host=0))
