"""The safe image downloader: SSRF-checked, size-, time- and type-limited.

Pure library code: no Django, no settings; every limit arrives in ``FetchLimits``.
Each hop resolves the host once, refuses non-public addresses, then connects to
exactly the address it checked, so DNS rebinding cannot swap it in between.
"""

from __future__ import annotations

import collections
import functools
import http.client
import ipaddress
import math
import queue
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

from datasets.imaging import sniff_image_type

__all__ = [
    "DEFAULT_LIMITS",
    "FetchError",
    "FetchLimits",
    "FetchResult",
    "check_public_address",
    "fetch_image",
    "fetch_many",
    "fetch_one",
]

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_TRANSIENT_CLIENT_STATUSES = frozenset({408, 429})
# Content types that say nothing about the payload; the magic bytes decide.
_GENERIC_CONTENT_TYPES = frozenset(
    {"application/octet-stream", "binary/octet-stream", "application/unknown"}
)
_ACCEPT = "image/jpeg,image/png,image/webp,image/gif,image/bmp;q=0.9,image/*;q=0.8"
_CHUNK = 64 * 1024
_SNIFF_BYTES = 32
_MAX_URL_LENGTH = 8192
# Characters left alone when percent-encoding a request target: the reserved set,
# the unreserved set and "%" (so existing escapes survive).
_SAFE_PATH = "/%:@!$&'()*+,;=-._~"
_SAFE_QUERY = _SAFE_PATH + "?"

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
# Special-purpose IPv4 ranges that some Python versions still call global.
_RESERVED_V4 = tuple(
    ipaddress.ip_network(net)
    for net in (
        "0.0.0.0/8",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "240.0.0.0/4",
    )
)


@dataclass(frozen=True)
class FetchLimits:
    """How far one download may go.

    ``allow_private_hosts`` names URL hosts (names or IP literals, as written in
    the URL) whose addresses need not be public; for tests and deliberately
    internal sources. A name that is not listed is checked even when it resolves
    to a listed IP.
    ``ca_file`` replaces the system trust store with a PEM bundle.
    """

    max_bytes: int = 15 * 1024 * 1024
    deadline: float = 20.0
    max_redirects: int = 5
    connect_timeout: float = 5.0
    allow_private_hosts: frozenset[str] = frozenset()
    user_agent: str = "Snapclass/1.0 (+image fetcher)"
    ca_file: str | None = None

    def __post_init__(self) -> None:
        if self.max_bytes < 1 or self.deadline <= 0 or self.connect_timeout <= 0:
            raise ValueError("max_bytes, deadline and connect_timeout must be > 0")
        if self.max_redirects < 0:
            raise ValueError("max_redirects must be >= 0")
        # Accept any iterable of names, compare them in canonical form.
        allowed = frozenset(_canonical_host(h) for h in self.allow_private_hosts)
        object.__setattr__(self, "allow_private_hosts", allowed)


DEFAULT_LIMITS = FetchLimits()


@dataclass(frozen=True)
class FetchResult:
    """The outcome of one download; ``content_type`` is the sniffed image type."""

    url: str
    ok: bool
    data: bytes | None = None
    content_type: str | None = None
    final_url: str | None = None
    code: str | None = None
    message: str | None = None
    transient: bool = False


class FetchError(Exception):
    """A refused or failed download; ``transient`` means a retry may succeed."""

    def __init__(self, code: str, message: str, *, transient: bool = False) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.transient = transient


@dataclass(frozen=True)
class _Target:
    url: str
    https: bool
    host: str  # ASCII, lower case, IPv6 without brackets
    port: int
    path: str  # the request target: path and query, percent-encoded


# --- public API ---


def fetch_image(url: str, limits: FetchLimits = DEFAULT_LIMITS) -> bytes:
    """Download one image and return its bytes; raise FetchError otherwise."""
    data, _, _ = _fetch(url, limits)
    return data


def fetch_one(url: str, limits: FetchLimits = DEFAULT_LIMITS) -> FetchResult:
    """Download one image; a refused or failed download is a FetchResult too."""
    try:
        data, content_type, final_url = _fetch(url, limits)
    except FetchError as exc:
        return FetchResult(
            url=url,
            ok=False,
            code=exc.code,
            message=exc.message,
            transient=exc.transient,
        )
    return FetchResult(
        url=url, ok=True, data=data, content_type=content_type, final_url=final_url
    )


def fetch_many(
    urls: Iterable[str],
    limits: FetchLimits = DEFAULT_LIMITS,
    *,
    max_workers: int = 16,
    per_host: int = 4,
    cancel: Callable[[], bool] | None = None,
) -> Iterator[FetchResult]:
    """Download many images concurrently, yielding results as they complete.

    At most ``max_workers`` downloads run at once and at most ``per_host`` per
    host (of the URL as given; hosts take turns). A finished download starts the
    next one itself, so downloading goes on while the caller is busy with what
    it was given. ``cancel`` is asked (from any thread) before each download
    starts; once it says yes nothing new starts, the running downloads are still
    yielded, and the URLs never started yield nothing. Closing the iterator
    early starts nothing more either.
    """
    if max_workers < 1 or per_host < 1:
        raise ValueError("max_workers and per_host must be >= 1")
    queued: dict[str, collections.deque[str]] = {}
    for url in urls:
        queued.setdefault(_host_key(url), collections.deque()).append(url)
    ready = collections.deque(queued)  # hosts with queued URLs and a free slot
    running: collections.Counter[str] = collections.Counter()
    finished: queue.SimpleQueue[Future[FetchResult]] = queue.SimpleQueue()
    # Re-entrant: a download that is already done runs its callback at once, in
    # the thread that is launching it.
    lock = threading.RLock()
    stopped = False  # cancelled, or the caller closed the iterator
    in_flight = 0
    executor = ThreadPoolExecutor(max_workers, thread_name_prefix="fetch")

    def launch() -> None:  # with the lock held
        nonlocal stopped, in_flight
        while ready and in_flight < max_workers and not stopped:
            if cancel is not None and cancel():
                stopped = True
                return
            host = ready.popleft()
            url = queued[host].popleft()
            running[host] += 1
            in_flight += 1
            if not queued[host]:
                del queued[host]
            elif running[host] < per_host:
                ready.append(host)
            future = executor.submit(fetch_one, url, limits)
            future.add_done_callback(functools.partial(landed, host))

    def landed(host: str, future: Future[FetchResult]) -> None:
        nonlocal in_flight
        with lock:
            in_flight -= 1
            running[host] -= 1
            # The host left ``ready`` when it filled up; a freed slot brings it
            # back (a host still in ``ready`` had spare slots anyway).
            if host in queued and running[host] == per_host - 1:
                ready.append(host)
            launch()
            finished.put(future)

    pending = 0  # launched or finished, not yet yielded
    try:
        with lock:
            launch()
            pending = in_flight + finished.qsize()
        while pending:
            result = finished.get().result()
            with lock:
                pending = in_flight + finished.qsize()
            yield result
    finally:
        with lock:
            stopped = True
        executor.shutdown(wait=False, cancel_futures=True)


def check_public_address(ip: str) -> None:
    """Raise FetchError("private_address") unless ``ip`` is a public unicast address."""
    try:
        address = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        raise FetchError("private_address", f"{ip!r} is not an IP address") from None
    reason = _non_public_reason(address)
    if reason is not None:
        raise FetchError("private_address", f"{ip} is {reason}")


# --- addresses ---


def _non_public_reason(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> str | None:
    if isinstance(address, ipaddress.IPv6Address):
        # IPv6 forms that carry an IPv4 address are judged by that address.
        embedded = address.ipv4_mapped
        if embedded is None:
            embedded = address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is None and address.teredo is not None:
            server, client = address.teredo
            embedded = client if _non_public_reason(server) is None else server
        if embedded is not None:
            reason = _non_public_reason(embedded)
            return None if reason is None else f"{reason} (via {embedded})"
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if isinstance(address, ipaddress.IPv4Address):
        if address == ipaddress.IPv4Address("255.255.255.255"):
            return "broadcast"
        if address in _CGNAT:
            return "carrier-grade NAT"
        if any(address in net for net in _RESERVED_V4):
            return "reserved"
    else:
        if address in _IPV4_COMPATIBLE:
            return "reserved"
        if address.is_site_local:
            return "site-local"
    if address.is_private:
        return "private"
    if address.is_reserved:
        return "reserved"
    if not address.is_global:
        return "not globally routable"
    return None


def _canonical_host(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host.rstrip(".")


def _resolve(target: _Target, limits: FetchLimits, deadline: float) -> list[Any]:
    """Resolve once and return the (family, sockaddr) pairs, all of them allowed."""
    host_allowed = _canonical_host(target.host) in limits.allow_private_hosts
    try:
        literal = ipaddress.ip_address(target.host)
    except ValueError:
        infos = _getaddrinfo(target.host, target.port, deadline)
        candidates = [(family, sockaddr) for family, _, _, _, sockaddr in infos]
    else:
        family = socket.AF_INET6 if literal.version == 6 else socket.AF_INET
        candidates = [(family, (str(literal), target.port))]
    if not candidates:
        raise FetchError("dns_error", f"{target.host} has no address", transient=True)
    if not host_allowed:
        # Every candidate must pass: connect() may fall through to any of them.
        for _, sockaddr in candidates:
            check_public_address(sockaddr[0])
    return candidates


def _getaddrinfo(host: str, port: int, deadline: float) -> list[Any]:
    # getaddrinfo cannot be interrupted, so it runs in a daemon thread and the
    # download stops waiting for it at the deadline.
    outcome: dict[str, Any] = {}
    finished = threading.Event()

    def lookup() -> None:
        try:
            outcome["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            outcome["error"] = exc
        finally:
            finished.set()

    threading.Thread(target=lookup, name="fetch-dns", daemon=True).start()
    if not finished.wait(max(0.0, deadline - time.monotonic())):
        raise FetchError("timeout", f"looking up {host} timed out", transient=True)
    error = outcome.get("error")
    if isinstance(error, socket.gaierror):
        transient = error.errno in (socket.EAI_AGAIN, getattr(socket, "EAI_FAIL", -1))
        raise FetchError(
            "dns_error", f"cannot resolve {host}: {error}", transient=transient
        )
    if error is not None:
        raise FetchError("dns_error", f"cannot resolve {host}: {error}")
    return outcome["infos"]


# --- connections ---


def _arm(sock: socket.socket, deadline: float) -> None:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError("download deadline exceeded")
    sock.settimeout(remaining)


class _DeadlineSocket(socket.socket):
    """A TCP socket whose every receive is bounded by one absolute deadline.

    http.client reads through buffered readline()/read(), which retry recv until
    satisfied; re-arming the timeout before each recv makes a server that drips
    bytes hit the total deadline instead of resetting a per-recv timeout.
    """

    deadline = math.inf

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        _arm(self, self.deadline)
        return super().recv_into(buffer, nbytes, flags)

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        _arm(self, self.deadline)
        return super().recv(bufsize, flags)

    def sendall(self, data: Any, flags: int = 0) -> None:
        _arm(self, self.deadline)
        super().sendall(data, flags)


class _DeadlineSSLSocket(ssl.SSLSocket):
    """The TLS counterpart of _DeadlineSocket (installed as sslsocket_class)."""

    deadline = math.inf

    def recv_into(self, buffer: Any, nbytes: int | None = None, flags: int = 0) -> int:
        _arm(self, self.deadline)
        return super().recv_into(buffer, nbytes, flags)

    def recv(self, buflen: int = 1024, flags: int = 0) -> bytes:
        _arm(self, self.deadline)
        return super().recv(buflen, flags)

    def sendall(self, data: Any, flags: int = 0) -> None:
        _arm(self, self.deadline)
        super().sendall(data, flags)


@lru_cache(maxsize=8)
def _ssl_context(ca_file: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca_file)
    context.sslsocket_class = _DeadlineSSLSocket
    return context


class _PinnedConnection(http.client.HTTPConnection):
    """An HTTP(S) connection to one checked address; Host and SNI stay the URL's."""

    def __init__(
        self,
        target: _Target,
        family: int,
        sockaddr: Any,
        limits: FetchLimits,
        deadline: float,
    ) -> None:
        super().__init__(target.host, target.port)
        if target.https:
            self.default_port = 443  # so the Host header omits ":443"
        self._target = target
        self._family = family
        self._sockaddr = sockaddr
        self._limits = limits
        self._deadline = deadline

    def connect(self) -> None:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("download deadline exceeded")
        sock: socket.socket = _DeadlineSocket(self._family, socket.SOCK_STREAM)
        try:
            sock.settimeout(min(self._limits.connect_timeout, remaining))
            sock.connect(self._sockaddr)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.deadline = self._deadline  # type: ignore[attr-defined]
            if self._target.https:
                _arm(sock, self._deadline)  # bounds the handshake too
                sock = _ssl_context(self._limits.ca_file).wrap_socket(
                    sock, server_hostname=self._target.host
                )
                sock.deadline = self._deadline  # type: ignore[attr-defined]
        except BaseException:
            sock.close()
            raise
        self.sock = sock


# --- one download ---


def _fetch(url: str, limits: FetchLimits) -> tuple[bytes, str, str]:
    deadline = time.monotonic() + limits.deadline
    current = url
    try:
        for _ in range(limits.max_redirects + 1):
            target = _parse_url(current)
            candidates = _resolve(target, limits, deadline)
            outcome = _fetch_hop(target, candidates, limits, deadline)
            if isinstance(outcome, str):
                current = outcome
                continue
            data, content_type = outcome
            return data, content_type, current
    except FetchError:
        raise
    except TimeoutError:
        raise FetchError(
            "timeout",
            f"no complete answer within {limits.deadline:g} s",
            transient=True,
        ) from None
    except ssl.SSLCertVerificationError as exc:
        raise FetchError("tls_error", exc.verify_message or str(exc)) from None
    except ssl.SSLError as exc:
        raise FetchError("tls_error", str(exc), transient=True) from None
    except (http.client.IncompleteRead, ConnectionError) as exc:
        raise FetchError("connection_error", repr(exc), transient=True) from None
    except http.client.HTTPException as exc:
        raise FetchError("bad_response", repr(exc)) from None
    except OSError as exc:
        raise FetchError("connection_error", str(exc), transient=True) from None
    raise FetchError(
        "too_many_redirects", f"more than {limits.max_redirects} redirects"
    )


def _parse_url(url: str) -> _Target:
    if not isinstance(url, str) or not url.strip():
        raise FetchError("bad_url", "empty URL")
    url = url.strip()
    if len(url) > _MAX_URL_LENGTH:
        raise FetchError("bad_url", "URL too long")
    if any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in url if ch != " "):
        raise FetchError("bad_url", "URL contains control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise FetchError("bad_url", f"cannot parse URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise FetchError("bad_scheme", f"only http and https, not {scheme or '?'}")
    if parts.username is not None or parts.password is not None:
        raise FetchError("bad_url", "credentials in URLs are refused")
    if not parts.hostname:
        raise FetchError("bad_url", "URL has no host")
    try:
        host = str(ipaddress.ip_address(parts.hostname))
    except ValueError:
        try:
            host = parts.hostname.encode("idna").decode("ascii")
        except UnicodeError:
            raise FetchError("bad_url", f"bad host name {parts.hostname!r}") from None
    path = quote(parts.path or "/", safe=_SAFE_PATH)
    if parts.query:
        path += "?" + quote(parts.query, safe=_SAFE_QUERY)
    https = scheme == "https"
    return _Target(
        url=url, https=https, host=host, port=port or (443 if https else 80), path=path
    )


def _fetch_hop(
    target: _Target, candidates: list[Any], limits: FetchLimits, deadline: float
) -> str | tuple[bytes, str]:
    """One request: the next URL for a redirect, else (data, content type)."""
    conn = _connect(target, candidates, limits, deadline)
    try:
        conn.request(
            "GET",
            target.path,
            headers={
                "User-Agent": limits.user_agent,
                "Accept": _ACCEPT,
                "Connection": "close",
            },
        )
        response = conn.getresponse()
        status = response.status
        if status in _REDIRECT_STATUSES:
            return _redirect_location(target, response)
        if status >= 400:
            raise FetchError(
                f"http_{status}",
                f"HTTP {status} {response.reason}".strip(),
                transient=status >= 500 or status in _TRANSIENT_CLIENT_STATUSES,
            )
        if not 200 <= status < 300:
            raise FetchError(f"http_{status}", f"unexpected HTTP {status}")
        return _read_image(response, limits, deadline)
    finally:
        conn.close()


def _connect(
    target: _Target, candidates: list[Any], limits: FetchLimits, deadline: float
) -> _PinnedConnection:
    error: OSError | None = None
    for family, sockaddr in candidates:
        conn = _PinnedConnection(target, family, sockaddr, limits, deadline)
        try:
            conn.connect()
        except ssl.SSLError:
            raise  # the peer answered; another address would not change that
        except OSError as exc:
            error = exc
            if time.monotonic() >= deadline:
                break
            continue
        return conn
    assert error is not None
    raise error


def _redirect_location(target: _Target, response: http.client.HTTPResponse) -> str:
    location = (response.getheader("Location") or "").strip()
    if not location:
        raise FetchError("bad_redirect", f"HTTP {response.status} without Location")
    try:
        return urljoin(target.url, location)
    except ValueError:
        raise FetchError("bad_redirect", f"bad Location {location[:200]!r}") from None


def _read_image(
    response: http.client.HTTPResponse, limits: FetchLimits, deadline: float
) -> tuple[bytes, str]:
    header = response.getheader("Content-Type") or ""
    declared_type = header.split(";", 1)[0].strip().lower()
    if (
        declared_type
        and not declared_type.startswith("image/")
        and declared_type not in _GENERIC_CONTENT_TYPES
    ):
        raise FetchError("not_an_image", f"Content-Type is {declared_type}")
    if response.length is not None and response.length > limits.max_bytes:
        raise FetchError(
            "too_large", f"declares {response.length} bytes, limit {limits.max_bytes}"
        )

    # Content-Length is only a claim: the cap applies to what actually arrives.
    buffer = bytearray()
    sniffed: str | None = None
    while True:
        if time.monotonic() >= deadline:
            raise TimeoutError("download deadline exceeded")
        # read1: one recv at most, so the deadline is checked between chunks.
        chunk = response.read1(min(_CHUNK, limits.max_bytes + 1 - len(buffer)))
        if not chunk:
            break
        buffer += chunk
        if len(buffer) > limits.max_bytes:
            raise FetchError("too_large", f"more than {limits.max_bytes} bytes")
        if sniffed is None and len(buffer) >= _SNIFF_BYTES:
            sniffed = _require_image(bytes(buffer[:_SNIFF_BYTES]))
    if response.length:
        raise FetchError(
            "connection_error",
            f"connection closed {response.length} bytes short of Content-Length",
            transient=True,
        )
    if sniffed is None:
        sniffed = _require_image(bytes(buffer))
    return bytes(buffer), sniffed


def _require_image(head: bytes) -> str:
    """The image's MIME type, judged by its first bytes, or not_an_image."""
    kind = sniff_image_type(head)
    if kind is None:
        raise FetchError("not_an_image", "content is not a JPEG/PNG/WEBP/GIF/BMP image")
    return f"image/{kind.lower()}"


def _host_key(url: str) -> str:
    try:
        return _canonical_host(urlsplit(url.strip()).hostname or "")
    except (ValueError, AttributeError):
        return ""
