"""Hostile files and requests against the prediction API: only 4xx answers, always
the JSON shape {"detail": str, "code": str, ...}, never a 500."""

from __future__ import annotations

import gzip
import io
import json
import struct
from collections.abc import Callable

import pytest
from django.test import Client
from django.test.client import BOUNDARY, encode_multipart

from tests.conftest import make_jpeg
from tests.datasets import badfiles

pytestmark = pytest.mark.django_db
PREDICT = "/api/v1/predict/"
# The test client encodes a body itself when given exactly MULTIPART_CONTENT.
RAW_MULTIPART = f"multipart/form-data;boundary={BOUNDARY}"


def named(data: bytes, name: str = "upload.jpg") -> io.BytesIO:
    f = io.BytesIO(data)
    f.name = name
    return f


def post_json(body: object) -> Callable[[Client], object]:
    return lambda c: c.post(PREDICT, json.dumps(body), content_type="application/json")


def post_raw(body: bytes, content_type: str, **extra) -> Callable[[Client], object]:
    return lambda c: c.generic(
        "POST", PREDICT, body, content_type=content_type, **extra
    )


def post_form(data: dict, **extra) -> Callable[[Client], object]:
    return lambda c: c.post(PREDICT, data, **extra)


def post_file(data: bytes, name: str = "upload.jpg") -> Callable[[Client], object]:
    return lambda c: c.post(PREDICT, {"image": named(data, name)})


def jpeg_declaring(width: int, height: int) -> bytes:
    """A real JPEG whose frame header is rewritten to claim another size."""
    data = bytearray(badfiles.jpeg(badfiles.scene((64, 48))))
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


def gif_declaring(width: int, height: int) -> bytes:
    data = bytearray(badfiles.encode(badfiles.solid(size=(64, 64)).convert("P"), "GIF"))
    struct.pack_into("<HH", data, 6, width, height)
    return bytes(data)


def bmp_declaring(width: int, height: int) -> bytes:
    data = bytearray(badfiles.encode(badfiles.solid(size=(64, 64)), "BMP"))
    struct.pack_into("<ii", data, 18, width, height)
    return bytes(data)


def many_fields(n: int) -> dict[str, str]:
    return {f"field{i}": "x" for i in range(n)}


def multipart_with(parts: list[tuple[str, bytes]]) -> bytes:
    """A hand-written multipart body (for what Django's encoder will not write)."""
    out = b""
    for headers, body in parts:
        out += b"--" + BOUNDARY.encode() + b"\r\n" + headers.encode() + b"\r\n\r\n"
        out += body + b"\r\n"
    return out + b"--" + BOUNDARY.encode() + b"--\r\n"


REJECTED_FILES = {
    name: data for name, (data, code) in badfiles.bad_files().items() if code
}

CASES: dict[str, Callable[[Client], object]] = {
    **{
        f"file_{name}": post_file(data, f"{name}.jpg")
        for name, data in REJECTED_FILES.items()
    },
    "file_jpeg_declaring_65500x65500": post_file(jpeg_declaring(65500, 65500)),
    "file_jpeg_declaring_0x0": post_file(jpeg_declaring(0, 0)),
    "file_gif_declaring_65535x65535": post_file(gif_declaring(65535, 65535), "a.gif"),
    "file_bmp_declaring_huge": post_file(bmp_declaring(100_000, 100_000), "a.bmp"),
    "file_bmp_declaring_negative": post_file(bmp_declaring(-64, -(2**31)), "a.bmp"),
    "file_png_bomb_rgb16": post_file(
        badfiles.raw_png(
            30_000, 30_000, bit_depth=16, color_type=2, row=b"\0" * 6 * 30_000
        )
        if False
        else badfiles.png_bomb(30_000),
        "b.png",
    ),
    "file_one_pixel": post_file(badfiles.png(badfiles.solid(size=(1, 1))), "1.png"),
    "file_html_named_png": post_file(badfiles.HTML_PAYLOAD, "../../etc/passwd.png"),
    "file_zip": post_file(b"PK\x03\x04" + b"\0" * 200, "photos.zip"),
    "file_pdf": post_file(b"%PDF-1.7\n" + b"0" * 200, "doc.pdf"),
    "file_riff_not_webp": post_file(b"RIFF\x10\0\0\0WAVEfmt " + b"\0" * 64, "a.wav"),
    "file_jpeg_soi_only": post_file(b"\xff\xd8\xff", "short.jpg"),
    "file_png_signature_only": post_file(b"\x89PNG\r\n\x1a\n", "short.png"),
    "file_gif_header_only": post_file(b"GIF89a" + b"\0" * 7, "short.gif"),
    "too_large_file": lambda c: _with_setting(
        c, "SNAPCLASS_MAX_FILE_BYTES", 1000, post_file(make_jpeg(1))
    ),
    "empty_body_no_type": lambda c: c.generic("POST", PREDICT, b""),
    "empty_body_json": post_raw(b"", "application/json"),
    "empty_body_multipart": post_raw(b"", RAW_MULTIPART),
    "multipart_without_boundary": post_raw(b"--x\r\n", "multipart/form-data"),
    "multipart_empty_boundary": post_raw(
        b"----\r\n", 'multipart/form-data; boundary=""'
    ),
    "multipart_garbage": post_raw(b"\0\1\2garbage" * 100, RAW_MULTIPART),
    "multipart_unknown_charset": post_raw(
        encode_multipart(BOUNDARY, {"url": "http://example.com/a.jpg"}),
        RAW_MULTIPART + "; charset=utf-99",
    ),
    "multipart_part_without_name": post_raw(
        multipart_with([("Content-Disposition: form-data", b"data")]), RAW_MULTIPART
    ),
    "multipart_unterminated": post_raw(
        encode_multipart(BOUNDARY, {"image": named(make_jpeg(1))})[:-40],
        RAW_MULTIPART,
    ),
    "text_plain": post_raw(b"hello", "text/plain"),
    "xml": post_raw(b"<url>http://example.com</url>", "application/xml"),
    "urlencoded": post_raw(
        b"url=http%3A%2F%2Fexample.com", "application/x-www-form-urlencoded"
    ),
    "urlencoded_5000_fields": post_raw(
        "&".join(f"f{i}=x" for i in range(5000)).encode(),
        "application/x-www-form-urlencoded",
    ),
    "image_jpeg_body": post_raw(make_jpeg(1), "image/jpeg"),
    "json_malformed": post_raw(b'{"url": ', "application/json"),
    "json_gzipped": post_raw(
        gzip.compress(b'{"url": "http://example.com/a.jpg"}'),
        "application/json",
        HTTP_CONTENT_ENCODING="gzip",
    ),
    "json_deeply_nested": post_raw(b"[" * 60_000, "application/json"),
    "json_too_large": post_json({"url": "http://example.com/" + "a" * 70_000}),
    "json_declared_too_large": post_raw(
        b'{"url": "x"}', "application/json", CONTENT_LENGTH="99999999999"
    ),
    "json_array": post_json([]),
    "json_string": post_json("http://example.com/a.jpg"),
    "json_number": post_json(42),
    "json_null": post_json(None),
    "json_empty_object": post_json({}),
    "json_url_empty": post_json({"url": ""}),
    "json_url_number": post_json({"url": 123}),
    "json_url_list": post_json({"url": ["http://example.com/a.jpg"]}),
    "json_url_object": post_json({"url": {"href": "x"}}),
    "json_url_too_long": post_json({"url": "http://e.com/" + "a" * 9000}),
    "json_url_loopback": post_json({"url": "http://127.0.0.1/cat.jpg"}),
    "json_url_loopback_port": post_json({"url": "http://127.0.0.1:8000/admin/"}),
    "json_url_metadata_service": post_json(
        {"url": "http://169.254.169.254/latest/meta-data/"}
    ),
    "json_url_localhost": post_json({"url": "http://localhost/cat.jpg"}),
    "json_url_ipv6_loopback": post_json({"url": "http://[::1]/cat.jpg"}),
    "json_url_mapped_ipv6": post_json({"url": "http://[::ffff:127.0.0.1]/a.jpg"}),
    "json_url_hex_ip": post_json({"url": "http://0x7f000001/cat.jpg"}),
    "json_url_zero": post_json({"url": "http://0.0.0.0/cat.jpg"}),
    "json_url_private_10": post_json({"url": "http://10.0.0.1/cat.jpg"}),
    "json_url_file": post_json({"url": "file:///etc/passwd"}),
    "json_url_ftp": post_json({"url": "ftp://example.com/a.jpg"}),
    "json_url_javascript": post_json({"url": "javascript:alert(1)"}),
    "json_url_credentials": post_json({"url": "http://user:pw@example.com/a.jpg"}),
    "json_url_control_chars": post_json({"url": "http://exa\nmple.com/a.jpg"}),
    "json_url_no_host": post_json({"url": "http:///a.jpg"}),
    "json_url_bad_port": post_json({"url": "http://example.com:99999/a.jpg"}),
    "json_image_as_text": post_json({"image": "iVBORw0KGgo="}),
    "json_images_as_text": post_json({"images": ["a", "b"]}),
    "form_image_as_text": post_form({"image": "not a file"}),
    "form_images_as_text": post_form({"images": ["a", "b"]}),
    "form_unknown_field": post_form({"photo": named(make_jpeg(1))}),
    "form_image_and_url": post_form(
        {"image": named(make_jpeg(1)), "url": "http://example.com/a.jpg"}
    ),
    "form_image_and_images": post_form(
        {"image": named(make_jpeg(1)), "images": [named(make_jpeg(2))]}
    ),
    "form_two_image_files": post_form(
        {"image": [named(make_jpeg(1)), named(make_jpeg(2))]}
    ),
    "form_17_images": post_form({"images": [named(make_jpeg(i)) for i in range(17)]}),
    "form_300_files": post_form({"images": [named(b"x") for _ in range(300)]}),
    "form_5000_fields": post_form({**many_fields(5000), "image": named(make_jpeg(1))}),
    "form_declared_too_large": post_form(
        {"image": named(make_jpeg(1))}, CONTENT_LENGTH=str(10**12)
    ),
    "form_bad_content_length": post_form(
        {"image": named(make_jpeg(1))}, CONTENT_LENGTH="lots"
    ),
    "form_empty_file": post_form({"image": named(b"", "empty.jpg")}),
    "form_bad_file_among_images": post_form(
        {"images": [named(make_jpeg(1)), named(b"\x00" * 100, "zeros.jpg")]}
    ),
    "api_key_unknown": lambda c: c.post(
        PREDICT, {"image": named(make_jpeg(1))}, HTTP_AUTHORIZATION="Api-Key nope.nope"
    ),
    "api_key_empty_header": lambda c: c.post(
        PREDICT, {"image": named(make_jpeg(1))}, HTTP_X_API_KEY=""
    ),
    "api_key_non_ascii": lambda c: c.post(
        PREDICT, {"image": named(make_jpeg(1))}, HTTP_X_API_KEY="clé.secrète"
    ),
    "method_get": lambda c: c.get(PREDICT),
    "method_put": lambda c: c.put(PREDICT, b"{}", content_type="application/json"),
    "method_patch": lambda c: c.patch(PREDICT, b"{}", content_type="application/json"),
    "method_delete": lambda c: c.delete(PREDICT),
    "accept_xml_only": lambda c: c.post(
        PREDICT, {"image": named(make_jpeg(1))}, HTTP_ACCEPT="application/xml"
    ),
    "models_not_a_number": lambda c: c.get("/api/v1/models/abc/"),
    "models_unknown": lambda c: c.get("/api/v1/models/123456789/"),
    "models_huge_id": lambda c: c.get("/api/v1/models/999999999999999999/"),
    "models_huger_id": lambda c: c.get(f"/api/v1/models/{10**30}/"),
    "models_negative_id": lambda c: c.get("/api/v1/models/-1/"),
    "promote_huge_id": lambda c: c.post(f"/api/v1/models/{10**30}/promote/"),
    "promote_anonymous": lambda c: c.post("/api/v1/models/1/promote/"),
    "promote_get": lambda c: c.get("/api/v1/models/1/promote/"),
    "models_delete": lambda c: c.delete("/api/v1/models/1/"),
}


def _with_setting(client, name, value, call):
    from django.conf import settings

    old = getattr(settings, name)
    setattr(settings, name, value)
    try:
        return call(client)
    finally:
        setattr(settings, name, old)


def test_the_suite_is_big_enough():
    assert len(CASES) >= 50


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_requests_get_a_4xx_json_answer(client, install_model, case):
    install_model("two", promote=True)

    response = CASES[case](client)

    assert 400 <= response.status_code < 500, (
        case,
        response.status_code,
        response.content[:300],
    )
    assert response["Content-Type"].startswith("application/json"), response.content[
        :300
    ]
    body = response.json()
    assert isinstance(body.get("detail"), str) and body["detail"]
    assert isinstance(body.get("code"), str) and body["code"]


@pytest.mark.parametrize("name", sorted(REJECTED_FILES))
def test_rejected_files_carry_the_imaging_code(client, install_model, name):
    install_model("two", promote=True)
    expected = badfiles.bad_files()[name][1]

    response = client.post(PREDICT, {"image": named(REJECTED_FILES[name])})

    assert response.json()["code"] == expected
    status = {"too_large": 413, "not_an_image": 415, "unsupported_format": 415}
    assert response.status_code == status.get(expected, 400)


@pytest.mark.parametrize(
    "url,code",
    [
        ("http://127.0.0.1/cat.jpg", "private_address"),
        ("http://169.254.169.254/latest/meta-data/", "private_address"),
        ("file:///etc/passwd", "bad_scheme"),
    ],
)
def test_urls_to_private_places_are_refused_before_connecting(
    client, install_model, url, code
):
    install_model("two", promote=True)

    response = client.post(PREDICT, {"url": url}, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["code"] == code


@pytest.mark.parametrize(
    "data",
    [
        {"image": named(badfiles.HTML_PAYLOAD)},
        {"image": named(badfiles.png_bomb(20_000))},
        {"image": named(b"")},
        {"nothing": "here"},
        many_fields(5000),
    ],
    ids=["html", "bomb", "empty", "no_image", "5000_fields"],
)
def test_the_upload_page_answers_bad_posts_with_4xx(client, install_model, data):
    install_model("two", promote=True)

    response = client.post("/", data)

    assert 400 <= response.status_code < 500
