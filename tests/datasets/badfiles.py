"""Image fixtures built in memory, good and hostile, for imaging and upload tests.

Every function returns bytes; ``bad_files()`` and ``good_files()`` bundle them with
the rejection code ``datasets.imaging`` must give (None: accepted) so API and
fuzz tests can reuse the same corpus.
"""

from __future__ import annotations

import functools
import io
import struct
import zlib
from collections.abc import Sequence

from PIL import Image, ImageDraw

RED = (255, 0, 0)
GREEN = (0, 255, 0)
BLUE = (0, 0, 255)
WHITE = (255, 255, 255)

SCRIPT_PAYLOAD = b"<script>alert(document.cookie)</script>"
HTML_PAYLOAD = b"<html><body>" + SCRIPT_PAYLOAD + b"</body></html>"


def encode(img: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, fmt, **params)
    return buffer.getvalue()


def solid(
    color: tuple[int, ...] | int = RED, size: tuple[int, int] = (64, 64), mode="RGB"
) -> Image.Image:
    return Image.new(mode, size, color)


def halves(
    left: tuple[int, ...] | int,
    right: tuple[int, ...] | int,
    size: tuple[int, int] = (64, 64),
    mode: str = "RGB",
) -> Image.Image:
    """Left half one colour, right half another: easy to check after transforms."""
    img = Image.new(mode, size, left)
    img.paste(
        Image.new(mode, (size[0] - size[0] // 2, size[1]), right), (size[0] // 2, 0)
    )
    return img


def scene(size: tuple[int, int] = (800, 600), seed: int = 0) -> Image.Image:
    """A photo-like picture (gradient plus shapes) with real structure for phash."""
    width, height = size
    gradient = Image.linear_gradient("L").resize(size)
    img = Image.merge(
        "RGB",
        (gradient, gradient.transpose(Image.Transpose.ROTATE_180), gradient.rotate(90)),
    )
    draw = ImageDraw.Draw(img)
    step = 37 + seed * 11
    for i in range(12):
        x = (i * step * 7 + seed * 101) % width
        y = (i * step * 5 + seed * 53) % height
        r = max(8, min(width, height) // (4 + i % 5))
        color = ((i * 70 + seed * 30) % 256, (i * 130) % 256, (255 - i * 20) % 256)
        if (i + seed) % 2:
            draw.ellipse((x - r, y - r, x + r, y + r), fill=color)
        else:
            draw.rectangle((x - r, y - r // 2, x + r, y + r // 2), fill=color)
    return img


def jpeg(img: Image.Image | None = None, quality: int = 90, **params: object) -> bytes:
    return encode(
        img if img is not None else scene(), "JPEG", quality=quality, **params
    )


def png(img: Image.Image | None = None, **params: object) -> bytes:
    return encode(img if img is not None else scene(), "PNG", **params)


def png_chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body)
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def raw_png(
    width: int,
    height: int,
    *,
    bit_depth: int,
    color_type: int,
    rows: Sequence[bytes] | None = None,
    row: bytes | None = None,
) -> bytes:
    """A PNG written by hand, for what Pillow will not write (16-bit RGB, bombs).

    Give either every filtered-out ``rows`` (without the filter byte) or one
    ``row`` repeated ``height`` times; rows are streamed through zlib so huge
    declared images cost little memory to build.
    """
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    compressor = zlib.compressobj(9)
    idat = []
    if rows is not None:
        for line in rows:
            idat.append(compressor.compress(b"\x00" + line))
    else:
        assert row is not None
        line = b"\x00" + row
        per_block = max(1, 1_000_000 // len(line))
        done = 0
        while done < height:
            take = min(per_block, height - done)
            idat.append(compressor.compress(line * take))
            done += take
    idat.append(compressor.flush())
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", b"".join(idat))
        + png_chunk(b"IEND", b"")
    )


@functools.cache
def png_bomb(side: int = 20_000) -> bytes:
    """A 1-bit black square: some tens of KB on disk, side**2 pixels decoded."""
    return raw_png(side, side, bit_depth=1, color_type=0, row=bytes((side + 7) // 8))


def polyglot_png() -> bytes:
    """A valid PNG that is also an HTML page: script in a tEXt chunk and after IEND."""
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", HTML_PAYLOAD.decode())
    return png(scene((128, 96)), pnginfo=info) + HTML_PAYLOAD


def jpeg_with_comment_payload() -> bytes:
    return jpeg(scene((128, 96)), comment=HTML_PAYLOAD)


def truncated_jpeg() -> bytes:
    data = jpeg(scene((400, 300)))
    return data[: len(data) // 2]


def truncated_png() -> bytes:
    data = png(Image.effect_noise((200, 150), 80).convert("RGB"))
    return data[: len(data) // 2]


def png_with_bad_ihdr() -> bytes:
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", b"\x00" * 5) + b"\x00" * 64


def jpeg_header_then_garbage() -> bytes:
    return b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4


def quadrants(size: tuple[int, int] = (96, 48)) -> Image.Image:
    """Red, blue over green, white: every flip and rotation looks different."""
    width, height = size
    img = Image.new("RGB", size, RED)
    img.paste(BLUE, (width // 2, 0, width, height // 2))
    img.paste(GREEN, (0, height // 2, width // 2, height))
    img.paste(WHITE, (width // 2, height // 2, width, height))
    return img


def exif_oriented_jpeg(orientation: int, size: tuple[int, int] = (96, 48)) -> bytes:
    """``quadrants()`` stored sideways with an EXIF orientation tag."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    return jpeg(quadrants(size), quality=95, exif=exif)


def cmyk_jpeg() -> bytes:
    """Left red, right blue, in CMYK; Pillow writes Adobe's inverted convention."""
    return jpeg(halves((0, 255, 255, 0), (255, 255, 0, 0), mode="CMYK"), quality=95)


def grey16_png(value: int = 32768, size: tuple[int, int] = (64, 64)) -> bytes:
    return png(Image.new("I;16", size, value))


def rgb16_png(color: tuple[int, int, int], size: tuple[int, int] = (64, 64)) -> bytes:
    pixel = struct.pack(">HHH", *color)
    return raw_png(*size, bit_depth=16, color_type=2, row=pixel * size[0])


def grey_alpha16_png(grey: int, alpha: int, size: tuple[int, int] = (64, 64)) -> bytes:
    pixel = struct.pack(">HH", grey, alpha)
    return raw_png(*size, bit_depth=16, color_type=4, row=pixel * size[0])


def palette_png_with_transparency() -> bytes:
    """Left half palette index 0 (black, fully transparent), right half red."""
    img = halves(0, 1, mode="P")
    img.putpalette([0, 0, 0, *RED] + [0, 0, 0] * 254)
    return png(img, transparency=0)


def rgba_png() -> bytes:
    """Left half transparent black, right half opaque blue."""
    return png(halves((0, 0, 0, 0), (*BLUE, 255), mode="RGBA"))


def half_alpha_png() -> bytes:
    return png(solid((255, 0, 0, 128), mode="RGBA"))


def la_png() -> bytes:
    return png(halves((0, 0), (0, 255), mode="LA"))


def animated_gif() -> bytes:
    frames = [solid(color) for color in (RED, GREEN, BLUE)]
    return encode(
        frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100
    )


def gif_with_transparency() -> bytes:
    img = halves(0, 1, mode="P")
    img.putpalette([0, 0, 0, *GREEN] + [0, 0, 0] * 254)
    return encode(img, "GIF", transparency=0)


def animated_webp() -> bytes:
    frames = [solid(color) for color in (GREEN, RED)]
    return encode(
        frames[0], "WEBP", save_all=True, append_images=frames[1:], lossless=True
    )


def animated_png() -> bytes:
    frames = [solid(color) for color in (BLUE, RED)]
    return encode(frames[0], "PNG", save_all=True, append_images=frames[1:])


def mpo_jpeg() -> bytes:
    """A JPEG with a Multi-Picture index, as many phones write; first picture red."""
    return encode(solid(RED), "MPO", save_all=True, append_images=[solid(BLUE)])


def tiff() -> bytes:
    return encode(solid(RED), "TIFF")


def ico() -> bytes:
    return encode(solid(RED), "ICO")


def heic_header() -> bytes:
    return b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64


def svg() -> bytes:
    return b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"></svg>'


def bad_files() -> dict[str, tuple[bytes, str | None]]:
    """Name -> (bytes, rejection code, or None where the file must be accepted)."""
    return {
        "empty": (b"", "empty"),
        "text_renamed_jpg": (b"Just some notes, not a photo.\n" * 20, "not_an_image"),
        "html_page": (HTML_PAYLOAD * 10, "not_an_image"),
        "bm_text": (b"BMW 320d, 2009, good condition\n" * 4, "not_an_image"),
        "html_png_polyglot": (polyglot_png(), None),
        "jpeg_comment_payload": (jpeg_with_comment_payload(), None),
        "jpeg_cut_in_half": (truncated_jpeg(), "truncated"),
        "png_cut_in_half": (truncated_png(), "truncated"),
        "png_magic_bad_ihdr": (png_with_bad_ihdr(), "corrupt"),
        "jpeg_magic_then_garbage": (jpeg_header_then_garbage(), "corrupt"),
        "png_bomb_20000": (png_bomb(20_000), "too_large"),
        "tiny_10x10": (png(solid(RED, (10, 10))), "too_small"),
        "sliver_1000x10": (png(solid(RED, (1000, 10))), "too_small"),
        "tiff": (tiff(), "unsupported_format"),
        "ico": (ico(), "unsupported_format"),
        "heic": (heic_header(), "unsupported_format"),
        "svg": (svg(), "unsupported_format"),
    }


def good_files() -> dict[str, bytes]:
    """One accepted file per format and tricky mode."""
    return {
        "jpeg": jpeg(),
        "png": png(scene((320, 240))),
        "gif": encode(scene((320, 240)).convert("P"), "GIF"),
        "webp": encode(scene((320, 240)), "WEBP", quality=90),
        "bmp": encode(scene((320, 240)), "BMP"),
        "exif_rotated_jpeg": exif_oriented_jpeg(6),
        "cmyk_jpeg": cmyk_jpeg(),
        "grey16_png": grey16_png(),
        "rgb16_png": rgb16_png((65535, 32768, 0)),
        "palette_png_with_transparency": palette_png_with_transparency(),
        "rgba_png": rgba_png(),
        "animated_gif": animated_gif(),
        "animated_webp": animated_webp(),
        "animated_png": animated_png(),
        "mpo_jpeg": mpo_jpeg(),
    }
