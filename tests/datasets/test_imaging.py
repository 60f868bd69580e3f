from __future__ import annotations

import hashlib
import io
import os
import pickle
import random
import resource
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image, ImageFile, ImageOps, JpegImagePlugin

from datasets.imaging import (
    ALLOWED_FORMATS,
    REJECTION_CODES,
    ImageRejected,
    NormalizedImage,
    _encode_jpeg,  # noqa: PLC2701  the bytes it gives
    decode_image,
    fit_long_side,
    normalize_image,
    phash_distance,
    sniff_image_type,
    to_rgb,
)
from tests.datasets import badfiles as bf

# JPEG is lossy: colours within this distance count as equal.
TOLERANCE = 12


@pytest.fixture(autouse=True)
def _media_root():
    """Override tests/conftest.py's: a pure module needs no Django settings.

    Lets this file run with ``-p no:django`` too.
    """


def close(
    actual: tuple[int, ...], expected: tuple[int, ...], tol: int = TOLERANCE
) -> bool:
    return all(abs(a - e) <= tol for a, e in zip(actual, expected, strict=True))


def pixel(img: Image.Image, fx: float, fy: float) -> tuple[int, ...]:
    """The pixel at a fraction of the width and height (0.25, 0.5: left middle)."""
    return img.getpixel((int(img.width * fx), int(img.height * fy)))


def rejection(data: bytes, **kwargs: object) -> ImageRejected:
    with pytest.raises(ImageRejected) as info:
        normalize_image(data, **kwargs)
    assert info.value.code in REJECTION_CODES
    return info.value


def open_jpeg(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    assert img.format == "JPEG"
    img.load()
    return img


# The corpus, end to end


@pytest.mark.parametrize("name", list(bf.bad_files()))
def test_each_bad_file_gets_its_code_or_is_accepted(name):
    data, code = bf.bad_files()[name]

    if code is None:
        result = normalize_image(data)
        assert open_jpeg(result.jpeg).mode == "RGB"
    else:
        assert rejection(data).code == code


@pytest.mark.parametrize("name", list(bf.good_files()))
def test_each_good_file_normalises_to_an_rgb_jpeg(name):
    result = normalize_image(bf.good_files()[name])

    img = open_jpeg(result.jpeg)
    assert img.mode == "RGB"
    assert img.size == (result.width, result.height)
    assert result.source_format in ALLOWED_FORMATS


# Rejections


def test_it_rejects_a_zero_byte_file_as_empty():
    assert rejection(b"").code == "empty"


def test_it_rejects_text_renamed_to_jpg():
    error = rejection(b"shopping list: eggs, milk\n" * 10)

    assert error.code == "not_an_image"


def test_it_rejects_a_jpeg_cut_in_half_as_truncated():
    error = rejection(bf.truncated_jpeg())

    assert error.code == "truncated"


def test_it_rejects_a_png_cut_in_half_as_truncated():
    assert rejection(bf.truncated_png()).code == "truncated"


def test_it_rejects_bytes_with_a_jpeg_signature_that_do_not_parse_as_corrupt():
    assert rejection(bf.jpeg_header_then_garbage()).code == "corrupt"


def test_it_rejects_a_20000_square_png_bomb_quickly_without_decoding_it():
    bomb = bf.png_bomb(20_000)
    assert len(bomb) < 200_000  # 400 megapixels in a small file
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    started = time.perf_counter()
    error = rejection(bomb)
    elapsed = time.perf_counter() - started

    assert error.code == "too_large"
    assert elapsed < 1.0
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    assert grown_kib < 100 * 1024  # decoding would take 400 MB for mode "1"


def test_it_rejects_images_over_max_pixels_before_decoding():
    # 8000x6000 = 48 Mpx: under Pillow's own bomb limit, over ours.
    data = bf.png_bomb(7000)

    assert rejection(data).code == "too_large"
    assert rejection(data, max_pixels=1_000_000).code == "too_large"


@pytest.mark.filterwarnings("error::PIL.Image.DecompressionBombWarning")
def test_pillow_bomb_warning_escalated_to_error_still_maps_to_too_large():
    # 100 Mpx sits between Pillow's warning and error thresholds.
    data = bf.png_bomb(10_000)

    assert rejection(data, max_pixels=10**9).code == "too_large"


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_pillow_bomb_warning_is_refused_even_when_warnings_are_ignored():
    data = bf.png_bomb(10_000)

    assert rejection(data, max_pixels=10**9).code == "too_large"


def test_it_rejects_a_10x10_image_as_too_small():
    error = rejection(bf.png(bf.solid(bf.RED, (10, 10))))

    assert error.code == "too_small"


def test_it_rejects_an_image_too_narrow_on_one_side():
    assert rejection(bf.png(bf.solid(bf.RED, (400, 20)))).code == "too_small"


def test_min_side_is_configurable():
    data = bf.png(bf.solid(bf.RED, (10, 10)))

    assert normalize_image(data, min_side=10).width == 10


@pytest.mark.parametrize(
    ("factory", "name"),
    [(bf.tiff, "TIFF"), (bf.ico, "ICO"), (bf.heic_header, "HEIF"), (bf.svg, "SVG")],
)
def test_it_rejects_formats_outside_the_allowlist(factory, name):
    error = rejection(factory())

    assert error.code == "unsupported_format"
    assert name in error.message


def test_rejection_messages_do_not_echo_the_input():
    for data, code in bf.bad_files().values():
        if code is not None:
            assert "<script" not in rejection(data).message


def test_image_rejected_survives_pickling_with_its_code():
    error = ImageRejected("too_small", "Image is 10x10.")

    copy = pickle.loads(pickle.dumps(error))

    assert copy.code == "too_small"
    assert copy.message == str(copy) == "Image is 10x10."


def test_random_corruption_only_ever_raises_image_rejected():
    rng = random.Random(1234)
    seeds = [
        bf.jpeg(bf.scene((96, 64))),
        bf.png(bf.scene((96, 64))),
        bf.encode(bf.scene((96, 64)).convert("P"), "GIF"),
        bf.encode(bf.scene((96, 64)), "WEBP"),
        bf.encode(bf.scene((96, 64)), "BMP"),
        bf.animated_gif(),
    ]
    for seed in seeds:
        for _ in range(60):
            data = bytearray(seed)
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            if rng.random() < 0.3:
                del data[rng.randrange(len(data)) :]
            try:
                normalize_image(bytes(data))
            except ImageRejected as error:
                assert error.code in REJECTION_CODES


# Hostile content that is still a valid image


def test_an_html_png_polyglot_is_accepted_and_the_payload_is_not_copied():
    data = bf.polyglot_png()
    assert bf.SCRIPT_PAYLOAD in data

    result = normalize_image(data)

    assert result.source_format == "PNG"
    assert b"<script" not in result.jpeg
    assert b"<script" not in result.thumbnail


def test_a_jpeg_comment_payload_is_not_copied():
    result = normalize_image(bf.jpeg_with_comment_payload())

    assert b"<script" not in result.jpeg
    assert b"<script" not in result.thumbnail


def test_exif_is_not_copied_to_the_output():
    result = normalize_image(bf.exif_oriented_jpeg(6))

    assert not open_jpeg(result.jpeg).getexif()


# Pixels and modes


def test_exif_orientation_6_swaps_dimensions_and_rotates_clockwise():
    # Stored 96x48 as red, blue over green, white; shown turned 90 degrees
    # clockwise, so the left column (red over green) becomes the top row.
    img = decode_image(bf.exif_oriented_jpeg(6))

    assert img.size == (48, 96)
    assert close(pixel(img, 0.25, 0.25), bf.GREEN)
    assert close(pixel(img, 0.75, 0.25), bf.RED)
    assert close(pixel(img, 0.25, 0.75), bf.WHITE)
    assert close(pixel(img, 0.75, 0.75), bf.BLUE)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_matches_pillow_exif_transpose(orientation):
    data = bf.exif_oriented_jpeg(orientation)
    expected = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")

    img = decode_image(data)

    assert img.size == expected.size
    assert img.tobytes() == expected.tobytes()


def test_exif_orientation_survives_downscaling():
    img = decode_image(bf.exif_oriented_jpeg(6, size=(1200, 600)), max_side=300)

    assert img.size == (150, 300)
    assert close(pixel(img, 0.25, 0.25), bf.GREEN)
    assert close(pixel(img, 0.75, 0.75), bf.BLUE)


def test_a_cmyk_jpeg_keeps_its_colours():
    data = bf.cmyk_jpeg()
    assert Image.open(io.BytesIO(data)).info.get("adobe")  # inverted Adobe CMYK

    img = decode_image(data)

    assert img.mode == "RGB"
    assert close(pixel(img, 0.25, 0.5), bf.RED)
    assert close(pixel(img, 0.75, 0.5), bf.BLUE)


def test_a_16_bit_grey_png_is_scaled_not_clamped():
    img = decode_image(bf.grey16_png(32768))

    assert close(img.getpixel((5, 5)), (128, 128, 128), tol=1)


def test_16_bit_grey_extremes_map_to_black_and_white():
    assert decode_image(bf.grey16_png(0)).getpixel((0, 0)) == (0, 0, 0)
    assert decode_image(bf.grey16_png(65535)).getpixel((0, 0)) == (255, 255, 255)


def test_a_16_bit_rgb_png_is_scaled():
    img = decode_image(bf.rgb16_png((65535, 32768, 0)))

    assert close(img.getpixel((5, 5)), (255, 128, 0), tol=1)


def test_a_16_bit_grey_alpha_png_flattens_onto_white():
    assert decode_image(bf.grey_alpha16_png(0, 0)).getpixel((0, 0)) == bf.WHITE
    assert decode_image(bf.grey_alpha16_png(32768, 65535)).getpixel((0, 0)) == (
        128,
        128,
        128,
    )


def test_a_palette_png_with_transparency_has_white_where_transparent():
    img = decode_image(bf.palette_png_with_transparency())

    assert pixel(img, 0.25, 0.5) == bf.WHITE
    assert pixel(img, 0.75, 0.5) == bf.RED


def test_an_rgba_png_flattens_transparent_to_white_not_black():
    img = decode_image(bf.rgba_png())

    assert pixel(img, 0.25, 0.5) == bf.WHITE
    assert pixel(img, 0.75, 0.5) == bf.BLUE


def test_half_transparent_red_blends_with_white():
    img = decode_image(bf.half_alpha_png())

    assert close(img.getpixel((5, 5)), (255, 127, 127), tol=2)


def test_an_la_png_flattens_onto_white():
    img = decode_image(bf.la_png())

    assert pixel(img, 0.25, 0.5) == bf.WHITE
    assert pixel(img, 0.75, 0.5) == (0, 0, 0)


def test_a_gif_with_a_transparent_index_has_white_where_transparent():
    img = decode_image(bf.gif_with_transparency())

    assert pixel(img, 0.25, 0.5) == bf.WHITE
    assert pixel(img, 0.75, 0.5) == bf.GREEN


@pytest.mark.parametrize(
    ("factory", "colour"),
    [
        (bf.animated_gif, bf.RED),
        (bf.animated_webp, bf.GREEN),
        (bf.animated_png, bf.BLUE),
        (bf.mpo_jpeg, bf.RED),
    ],
)
def test_multi_frame_files_use_the_first_frame(factory, colour):
    img = decode_image(factory())

    assert close(img.getpixel((10, 10)), colour)


def test_an_mpo_phone_photo_is_reported_as_jpeg():
    assert normalize_image(bf.mpo_jpeg()).source_format == "JPEG"


@pytest.mark.parametrize(
    ("mode", "value", "expected"),
    [
        ("1", 1, (255, 255, 255)),
        ("L", 77, (77, 77, 77)),
        ("I;16", 32768, (128, 128, 128)),
        ("I", 65535, (255, 255, 255)),
        ("F", 0.5, (128, 128, 128)),
        ("CMYK", (0, 255, 255, 0), (255, 0, 0)),
        ("RGBA", (0, 0, 0, 0), (255, 255, 255)),
        ("LA", (0, 0), (255, 255, 255)),
        ("La", (100, 255), (100, 100, 100)),
        ("PA", (0, 0), (255, 255, 255)),
    ],
)
def test_to_rgb_handles_every_mode(mode, value, expected):
    img = to_rgb(Image.new(mode, (4, 4), value))

    assert img.mode == "RGB"
    assert img.getpixel((1, 1)) == expected


# Sizes


def test_a_large_image_is_capped_and_thumbnailed():
    result = normalize_image(bf.jpeg(bf.scene((1600, 1200))))

    assert (result.width, result.height) == (512, 384)
    assert open_jpeg(result.jpeg).size == (512, 384)
    assert open_jpeg(result.thumbnail).size == (160, 120)


def test_a_portrait_image_is_capped_on_its_long_side():
    result = normalize_image(bf.png(bf.scene((300, 600))), max_side=200, thumb_side=50)

    assert (result.width, result.height) == (100, 200)
    assert open_jpeg(result.thumbnail).size == (25, 50)


def test_a_small_image_is_never_upscaled():
    result = normalize_image(bf.png(bf.scene((100, 80))))

    assert (result.width, result.height) == (100, 80)
    assert open_jpeg(result.thumbnail).size == (100, 80)


def test_a_big_jpeg_is_decoded_at_reduced_size_and_keeps_its_colours():
    data = bf.jpeg(bf.halves(bf.RED, bf.BLUE, (4000, 3000)))

    img = decode_image(data, max_side=512)

    assert img.size == (512, 384)
    assert close(pixel(img, 0.25, 0.5), bf.RED)
    assert close(pixel(img, 0.75, 0.5), bf.BLUE)


def test_a_big_jpeg_is_drafted_to_the_target_size_before_decoding(monkeypatch):
    requested = []
    draft = JpegImagePlugin.JpegImageFile.draft

    def spy(self, mode, size):
        requested.append(size)
        return draft(self, mode, size)

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)

    decode_image(bf.jpeg(bf.scene((4000, 3000))), max_side=512)

    assert requested == [(512, 384)]


def test_fit_long_side_keeps_the_aspect_ratio_and_never_upscales():
    img = Image.new("RGB", (1000, 250))

    assert fit_long_side(img, 400).size == (400, 100)
    assert fit_long_side(img, 2000) is img
    assert fit_long_side(Image.new("RGB", (250, 1000)), 400).size == (100, 400)


def test_decode_image_without_max_side_keeps_full_size():
    assert decode_image(bf.jpeg(bf.scene((1600, 1200)))).size == (1600, 1200)


# Hashes


def scene_jpeg() -> bytes:
    return bf.jpeg(bf.scene((800, 600), seed=3), quality=92)


def test_sha256_is_the_hash_of_the_jpeg_and_deterministic():
    first = normalize_image(scene_jpeg())
    second = normalize_image(scene_jpeg())

    assert first == second
    assert first.sha256 == hashlib.sha256(first.jpeg).hexdigest()


def test_phash_is_16_hex_characters():
    phash = normalize_image(scene_jpeg()).phash

    assert len(phash) == 16
    int(phash, 16)


def test_phash_is_equal_for_a_losslessly_re_encoded_copy():
    original = Image.open(io.BytesIO(scene_jpeg()))

    assert (
        normalize_image(scene_jpeg()).phash == normalize_image(bf.png(original)).phash
    )


def test_phash_is_close_for_a_jpeg_re_encoded_copy():
    original = Image.open(io.BytesIO(scene_jpeg()))
    copy = bf.jpeg(original.convert("RGB"), quality=75)

    a, b = normalize_image(scene_jpeg()), normalize_image(copy)
    assert phash_distance(a.phash, b.phash) <= 2


def test_phash_is_close_for_a_slightly_resized_copy():
    original = Image.open(io.BytesIO(scene_jpeg())).convert("RGB")
    resized = bf.jpeg(original.resize((720, 540), Image.Resampling.BICUBIC))

    a, b = normalize_image(scene_jpeg()), normalize_image(resized)
    assert phash_distance(a.phash, b.phash) <= 6


def test_phash_is_far_for_a_different_image():
    other = bf.jpeg(bf.scene((800, 600), seed=4).rotate(90, expand=True))

    a, b = normalize_image(scene_jpeg()), normalize_image(other)
    assert phash_distance(a.phash, b.phash) >= 16


def test_phash_distance_counts_differing_bits():
    assert phash_distance("0" * 16, "0" * 16) == 0
    assert phash_distance("0" * 16, "f" * 16) == 64
    assert phash_distance("8000000000000001", "0000000000000000") == 2


# Sniffing


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (bf.jpeg(bf.solid()), "JPEG"),
        (bf.png(bf.solid()), "PNG"),
        (bf.encode(bf.solid(), "GIF"), "GIF"),
        (bf.encode(bf.solid(), "WEBP"), "WEBP"),
        (bf.encode(bf.solid(), "BMP"), "BMP"),
        (bf.mpo_jpeg(), "JPEG"),
        (bf.tiff(), None),
        (bf.ico(), None),
        (b"BMW for sale, one owner", None),
        (b"<html><body>hi</body></html>", None),
        (b"", None),
        (b"\xff\xd8", None),
    ],
)
def test_sniff_image_type_names_allowed_formats_from_their_first_bytes(data, expected):
    assert sniff_image_type(data[:32]) == expected


def test_sniff_agrees_with_decode_for_every_good_file():
    for data in bf.good_files().values():
        assert sniff_image_type(data[:32]) == normalize_image(data).source_format


# Concurrency and global state


def test_it_sets_no_global_pillow_state():
    max_pixels = Image.MAX_IMAGE_PIXELS

    for data, _ in bf.bad_files().values():
        try:
            normalize_image(data)
        except ImageRejected:
            pass

    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    assert Image.MAX_IMAGE_PIXELS == max_pixels


def test_it_gives_the_same_results_from_many_threads():
    inputs = [bf.jpeg(bf.scene((640, 480), seed=i)) for i in range(6)]
    inputs += [bf.truncated_jpeg(), bf.rgba_png(), bf.png_bomb(20_000)]

    def run(data: bytes) -> NormalizedImage | str:
        try:
            return normalize_image(data)
        except ImageRejected as error:
            return error.code

    expected = [run(data) for data in inputs]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(run, inputs * 4))

    assert results == expected * 4


def test_the_module_imports_without_django_or_settings():
    code = (
        "import sys, datasets.imaging; "
        "assert not any(m.split('.')[0] == 'django' for m in sys.modules)"
    )

    subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        cwd=Path(__file__).resolve().parents[2],
        env={"PATH": os.environ.get("PATH", "")},
    )


def test_jpeg_encoding_gives_pillows_bytes_whichever_way_it_runs():
    """Encoding goes through an in-memory file so that it runs without the GIL;
    the bytes are what Pillow writes into a BytesIO."""
    img = Image.radial_gradient("L").convert("RGB").resize((300, 200))
    expected = io.BytesIO()
    img.save(expected, "JPEG", quality=90)

    assert _encode_jpeg(img, 90) == expected.getvalue()
