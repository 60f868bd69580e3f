"""Limits applied before a request body is read or parsed.

`RequestBodyLimitMiddleware` refuses a body larger than its path allows from the
Content-Length header alone, before anything reads it. `LimitedUploadHandler`
counts files and bytes while Django streams a multipart body, and stops at the
first file too many or too large instead of after storing the whole request.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFilesSent
from django.core.files.uploadhandler import FileUploadHandler
from django.http import HttpRequest, HttpResponse, JsonResponse

MiB = 1024 * 1024
BODY_METHODS = {"POST", "PUT", "PATCH"}


def files_limit(request: HttpRequest) -> int | None:
    """How many files an upload path takes (None: Django's global limit)."""
    path = request.path_info
    if path in ("/", "/feedback/") or path.startswith("/api/v1/feedback/"):
        return 1
    if path.startswith("/api/v1/predict/"):
        return settings.SNAPCLASS_PREDICT_MAX_IMAGES
    return None


def body_limit(request: HttpRequest) -> int:
    """The most bytes a request to this path may send."""
    path = request.path_info
    one_file = settings.SNAPCLASS_MAX_FILE_BYTES + MiB
    if path == "/":  # the upload page: one image
        return one_file
    if path == "/feedback/":  # the signed image travels base64-encoded
        return one_file * 4 // 3 + MiB
    if path.startswith("/api/v1/predict/"):
        return min(
            settings.SNAPCLASS_PREDICT_MAX_IMAGES * settings.SNAPCLASS_MAX_FILE_BYTES
            + MiB,
            settings.SNAPCLASS_PREDICT_MAX_REQUEST_BYTES,
        )
    if path.startswith("/api/v1/feedback/"):
        return one_file
    user = getattr(request, "user", None)
    if path.startswith("/admin/") and user is not None and user.is_staff:
        # The many-images upload form; Django streams its files to disk.
        return settings.DATA_UPLOAD_MAX_NUMBER_FILES * settings.SNAPCLASS_MAX_FILE_BYTES
    return settings.SNAPCLASS_MAX_REQUEST_BYTES


class RequestBodyLimitMiddleware:
    """413 for a body over its path's limit, 411 for a body without a length."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method in BODY_METHODS:
            refused = self._check(request)
            if refused is not None:
                return refused
            max_files = files_limit(request)
            if max_files is not None:  # before CSRF or a view parses the body
                limit_uploads(request, max_files=max_files)
        return self.get_response(request)

    def _check(self, request: HttpRequest) -> HttpResponse | None:
        raw = request.META.get("CONTENT_LENGTH") or ""
        chunked = "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
        if chunked and not raw:
            return _refuse(411, "Send a Content-Length; chunked bodies are refused.")
        try:
            length = int(raw or 0)
        except ValueError:
            return _refuse(400, "Bad Content-Length.", code="bad_request")
        limit = body_limit(request)
        if length > limit:
            return _refuse(
                413, f"The request body is too large: at most {limit} bytes here."
            )
        return None


def _refuse(status: int, detail: str, *, code: str = "") -> HttpResponse:
    code = code or {411: "length_required", 413: "too_large"}[status]
    response = JsonResponse({"detail": detail, "code": code}, status=status)
    # The body was not read: the connection cannot carry another request.
    response["Connection"] = "close"
    return response


class TooManyUploads(TooManyFilesSent):
    """More files than this path takes; config.api answers 400 too_many_images."""


class LimitedUploadHandler(FileUploadHandler):
    """Stops a multipart upload at the first file over `max_files` or `max_bytes`.

    Put first in `request.upload_handlers`, before the body is parsed; it passes
    every chunk on to the next handler unchanged.
    """

    def __init__(self, *, max_files: int, max_bytes: int, request=None) -> None:
        super().__init__(request)
        self.max_files = max_files
        self.max_bytes = max_bytes
        self.files = 0
        self.size = 0

    def new_file(self, *args, **kwargs) -> None:
        super().new_file(*args, **kwargs)
        self.files += 1
        self.size = 0
        if self.files > self.max_files:
            raise TooManyUploads(
                f"More than {self.max_files} files sent; at most {self.max_files} "
                "per request."
            )

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.size += len(raw_data)
        if self.size > self.max_bytes:
            raise RequestDataTooBig(f"A file is larger than {self.max_bytes} bytes.")
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None


def limit_uploads(request: HttpRequest, *, max_files: int) -> None:
    """Install LimitedUploadHandler on a request whose body is not read yet."""
    request.upload_handlers.insert(
        0,
        LimitedUploadHandler(
            max_files=max_files,
            max_bytes=settings.SNAPCLASS_MAX_FILE_BYTES,
            request=request,
        ),
    )
