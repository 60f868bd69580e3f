"""A local HTTP(S) server on 127.0.0.1 for tests that download things.

Routes map a path to a handler that returns ``(status, headers, body)``; the body is
bytes, or an iterable of byte chunks (a generator can sleep between chunks to drip
a response slowly). The server counts hits per path and the most concurrent
requests it has seen per Host name, so tests can assert on behaviour.

Use it as a context manager, or through the ``local_server`` fixture::

    with LocalServer() as server:
        server.add("/cat.jpg", body=JPEG, headers={"Content-Type": "image/jpeg"})
        fetch(server.url("/cat.jpg"))
        assert server.hits["/cat.jpg"] == 1
"""

from __future__ import annotations

import collections
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

Headers = Mapping[str, str] | Sequence[tuple[str, str]]
Body = bytes | Iterable[bytes]
Response = tuple[int, Headers, Body]


@dataclass(frozen=True)
class Request:
    """What the server received, handed to handlers and kept in ``requests``."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Message
    body: bytes

    @property
    def host(self) -> str:
        """The Host header without its port."""
        host = self.headers.get("Host", "")
        if host.startswith("["):
            return host[1 : host.find("]")]
        return host.rsplit(":", 1)[0]

    def param(self, name: str) -> str | None:
        """The first value of a query parameter, or None."""
        values = self.query.get(name)
        return values[0] if values else None


Handler = Callable[[Request], Response]


def drip(data: bytes, *, interval: float, chunk: int = 1) -> Iterator[bytes]:
    """Yield ``data`` ``chunk`` bytes at a time, sleeping ``interval`` in between."""
    for start in range(0, len(data), chunk):
        if start:
            time.sleep(interval)
        yield data[start : start + chunk]


def _fixed(status: int, headers: Headers | None, body: bytes) -> Handler:
    def respond(request: Request) -> Response:
        return status, headers or {}, body

    return respond


def _delayed(handler: Handler, delay: float) -> Handler:
    def respond(request: Request) -> Response:
        time.sleep(delay)
        return handler(request)

    return respond


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Tests open many short connections at once (fetch_many); the default
    # backlog of 5 would make the kernel drop SYNs and stall the client.
    request_queue_size = 128

    def __init__(self, owner: LocalServer, ssl_context: ssl.SSLContext | None) -> None:
        self.owner = owner
        self.ssl_context = ssl_context
        super().__init__(("127.0.0.1", 0), _RequestHandler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = self.socket.accept()
        if self.ssl_context is not None:
            # Handshake in the handler thread, so one slow client can't block accept.
            sock = self.ssl_context.wrap_socket(
                sock, server_side=True, do_handshake_on_connect=False
            )
        return sock, addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that hang up early (deadlines, size caps) are expected here.
        pass


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        parts = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers=self.headers,
            body=self.rfile.read(length) if length else b"",
        )
        owner = self.server.owner
        owner._enter(request)
        left = False

        def leave() -> None:
            nonlocal left
            if not left:
                left = True
                owner._leave(request)

        try:
            status, headers, body = owner._dispatch(request)
            self._respond(status, headers, body, done=leave)
        except (ConnectionError, TimeoutError, ssl.SSLError):
            pass  # the client gave up
        finally:
            leave()
        self.close_connection = True

    def _respond(
        self, status: int, headers: Headers, body: Body, done: Callable[[], None]
    ) -> None:
        """Send the response; `done` runs just before its last bytes go out, so a
        client that has read the whole response is never still counted in flight."""
        pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
        names = {name.lower() for name, _ in pairs}
        chunked = any(
            name.lower() == "transfer-encoding" and "chunked" in value.lower()
            for name, value in pairs
        )
        if isinstance(body, bytes) and not chunked and "content-length" not in names:
            pairs.append(("Content-Length", str(len(body))))
        pairs.append(("Connection", "close"))

        self.send_response_only(status)
        for name, value in pairs:
            self.send_header(name, value)
        if self.command == "HEAD":
            done()
            self.end_headers()
            return
        self.end_headers()
        pieces = iter([body] if isinstance(body, bytes) else body)
        piece = next(pieces, None)
        while piece is not None:
            following = next(pieces, None)  # a slow body sleeps here
            if chunked:
                if piece:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            else:
                if following is None:
                    done()
                self.wfile.write(piece)
            self.wfile.flush()
            piece = following
        done()
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()


class LocalServer:
    """A threaded HTTP server on 127.0.0.1 with a free port, for tests."""

    def __init__(self, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.routes: dict[str, Handler] = {}
        self.hits: collections.Counter[str] = collections.Counter()
        self.requests: list[Request] = []
        # Most requests seen in flight at once: per Host name, and overall.
        self.max_concurrent: collections.Counter[str] = collections.Counter()
        self.max_concurrent_total = 0
        self._in_flight: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        self._server = _Server(self, ssl_context)
        self._thread: threading.Thread | None = None
        self.scheme = "https" if ssl_context is not None else "http"

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def url(self, path: str = "/", *, host: str = "127.0.0.1") -> str:
        """The absolute URL of ``path`` on this server, reached through ``host``."""
        return f"{self.scheme}://{host}:{self.port}{path}"

    def add(
        self,
        path: str,
        handler: Handler | None = None,
        *,
        status: int = 200,
        headers: Headers | None = None,
        body: bytes = b"",
        delay: float = 0.0,
    ) -> str:
        """Serve ``path`` with ``handler``, or with a fixed response; return its URL.

        ``delay`` sleeps before answering, to simulate latency.
        """
        respond = handler if handler is not None else _fixed(status, headers, body)
        if delay:
            respond = _delayed(respond, delay)
        self.routes[path] = respond
        return self.url(path)

    def redirect(self, path: str, location: str, *, status: int = 302) -> str:
        """Answer ``path`` with a redirect to ``location``; return its URL."""
        return self.add(path, status=status, headers={"Location": location})

    def start(self) -> LocalServer:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="LocalServer",
                daemon=True,
            )
            self._thread.start()
        return self

    def close(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _dispatch(self, request: Request) -> Response:
        handler = self.routes.get(request.path)
        if handler is None:
            return 404, {"Content-Type": "text/plain"}, b"not found"
        return handler(request)

    def _enter(self, request: Request) -> None:
        with self._lock:
            self.hits[request.path] += 1
            self.requests.append(request)
            self._in_flight[request.host] += 1
            self.max_concurrent[request.host] = max(
                self.max_concurrent[request.host], self._in_flight[request.host]
            )
            self.max_concurrent_total = max(
                self.max_concurrent_total, sum(self._in_flight.values())
            )

    def _leave(self, request: Request) -> None:
        with self._lock:
            self._in_flight[request.host] -= 1


@pytest.fixture
def local_server() -> Iterator[LocalServer]:
    """A started LocalServer, closed after the test."""
    with LocalServer() as server:
        yield server
