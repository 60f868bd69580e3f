#!/usr/bin/env python3
"""Build the bundled offline demo image dataset (woman / man / camera / TV).

The demo set proves the Snapclass pipeline end to end without internet
access.  Every picture is rendered from freely licensed vector artwork that
arrives through the npm registry; nothing is downloaded at run time.

Requirements (NOT part of the app's requirements; use a throw-away venv):

    npm install --prefix /tmp/demo-npm \\
        @iconify-json/twemoji@1.2.5 @iconify-json/noto@1.2.9 \\
        @iconify-json/fluent-emoji-flat@1.2.6 @iconify-json/ph@1.2.2 \\
        @tabler/icons@3.52.0 @mdi/svg@7.4.47 bootstrap-icons@1.13.2 \\
        lucide-static@1.62.0
    python3 -m venv /tmp/demo-venv
    /tmp/demo-venv/bin/pip install cairosvg pillow numpy  # needs libcairo2 (apt)
    # built with CairoSVG 2.9.1, Pillow 13.0.0, numpy 2.4.6, Python 3.11

Run (from the repository root):

    /tmp/demo-venv/bin/python scripts/build_demo_data.py \\
        --npm-dir /tmp/demo-npm --out datasets/demo

Output (fastai ``parent_label`` layout) plus an attribution file:

    datasets/demo/images/{woman,man,camera,TV}/<source>-<icon>-<n>.(jpg|png)
    datasets/demo/ATTRIBUTION.md

Sources and licenses (each checked in the package itself):

* ``@iconify-json/twemoji`` -- Twemoji artwork as SVG bodies, CC BY 4.0
  (Twitter / jdecked/twemoji).  Used instead of ``emoji-datasource-twitter``
  because that package ships at most 64 px PNGs; the artwork is the same.
* ``@iconify-json/noto`` (Noto Emoji, Apache-2.0) and
  ``@iconify-json/fluent-emoji-flat`` (Fluent Emoji, MIT): a few more colour
  emoji people, cameras and TVs, so that no class owns one drawing style.
* ``@iconify-json/ph`` (Phosphor, MIT), ``@tabler/icons`` (MIT),
  ``@mdi/svg`` (icons Apache-2.0), ``bootstrap-icons`` (MIT),
  ``lucide-static`` (ISC; ``tv`` is Feather, MIT): monochrome icons.

Versions above are the ones the committed images were built from; other
versions may add or drop icons (the script then stops with a KeyError or
FileNotFoundError naming the icon) or change pixels.

How it varies the pictures: canvas size and aspect ratio (128-256 px on each
side), plain light / dark / colour / gradient backgrounds, an optional rounded
"tile" behind the icon, stroke / fill colour for monochrome icons (always with
enough contrast), icon scale, placement and a small rotation.  A source icon
is rendered at most twice, and its two renderings differ in background kind
AND in scale.  Transparent artwork is flattened onto the chosen background.
Each new image's perceptual hash (DCT pHash, as ``imagehash.phash``) must be
more than ``MIN_PHASH_DISTANCE`` bits from every earlier image, otherwise it is
re-rendered with the next seed, so the app's near-duplicate check stays quiet.

The script is deterministic (fixed seed, per-image seeds derived from the
file name) and re-runnable: it deletes and rewrites ``<out>/images`` and
``<out>/ATTRIBUTION.md`` only.
"""

from __future__ import annotations

import argparse
import colorsys
import hashlib
import io
import json
import random
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import cairosvg
import numpy as np
from PIL import Image, ImageDraw

SEED = 20240611
MIN_PHASH_DISTANCE = 10  # the app flags <= 4 (SNAPCLASS_NEAR_DUPLICATE_DISTANCE)
MIN_ART_CONTRAST = 2.0  # colour artwork: mean colour vs. what is behind it
JPEG_QUALITY = 90
LABELS = ("woman", "man", "camera", "TV")

# --------------------------------------------------------------------------
# What to render.  Each entry: (source, icon name, number of renderings 1|2).
# Sources: twemoji, noto, fluent, phosphor (icon keys in the @iconify-json
# sets' icons.json), tabler (outline), tabler-filled, mdi, bootstrap, lucide
# (SVG files).  People from the emoji sets get one skin tone, picked by seed.
# --------------------------------------------------------------------------

# Twemoji people: single-person portraits / figures only.  Excluded on
# purpose: couples and families, "woman-beard", "man-with-veil",
# "woman-in-tuxedo" and other gender-ambiguous ones, and tiny figures in
# scenes (swimming, rowing, surfing, ...).
_PEOPLE = [
    "",
    "artist",
    "astronaut",
    "blond-hair",
    "bowing",
    "construction-worker",
    "cook",
    "curly-hair",
    "detective",
    "facepalming",
    "factory-worker",
    "farmer",
    "firefighter",
    "frowning",
    "gesturing-no",
    "gesturing-ok",
    "getting-haircut",
    "guard",
    "health-worker",
    "judge",
    "mage",
    "mechanic",
    "office-worker",
    "pilot",
    "police-officer",
    "pouting",
    "raising-hand",
    "red-hair",
    "scientist",
    "shrugging",
    "singer",
    "student",
    "superhero",
    "teacher",
    "technologist",
    "tipping-hand",
    "vampire",
    "white-hair",
    "wearing-turban",
]
_SKIN_TONES = ["", "light", "medium-light", "medium", "medium-dark", "dark"]
# Some professions are drawn from Noto Emoji / Fluent Emoji instead of
# Twemoji, so that colourful emoji styles are not unique to the people classes.
_NOTO_PEOPLE = ["", "office-worker", "cook", "teacher", "scientist"]
_FLUENT_PEOPLE = ["office-worker", "technologist", "farmer", "pilot", "student"]


def _people(gender: str) -> list[tuple[str, str, int]]:
    out = []
    for p in _PEOPLE:
        name = f"{gender}-{p}" if p else gender
        if p in _NOTO_PEOPLE:
            out.append(("noto", name, 1))
        if p in _FLUENT_PEOPLE:
            out.append(("fluent", name, 1))
        if p not in _NOTO_PEOPLE and p not in _FLUENT_PEOPLE:
            out.append(("twemoji", name, 1))
    return out


PLAN: dict[str, list[tuple[str, str, int]]] = {
    "woman": (
        _people("woman")
        + [
            ("tabler", "woman", 1),
            ("tabler-filled", "woman", 1),
            ("mdi", "human-female", 2),
            ("mdi", "face-woman", 1),
            ("mdi", "face-woman-outline", 1),
            ("mdi", "face-woman-profile", 1),
            ("mdi", "face-woman-shimmer", 1),
            ("mdi", "account-tie-woman", 1),
            ("mdi", "human-female-dance", 1),
            ("bootstrap", "person-standing-dress", 1),
            ("fluent", "woman", 1),
        ]
    ),
    "man": (
        _people("man")
        + [
            ("tabler", "man", 1),
            ("tabler-filled", "man", 1),
            ("mdi", "human-male", 2),
            ("mdi", "face-man", 1),
            ("mdi", "face-man-outline", 1),
            ("mdi", "face-man-profile", 1),
            ("mdi", "face-man-shimmer", 1),
            ("mdi", "account-tie", 1),
            ("mdi", "account-tie-outline", 1),
            ("bootstrap", "person-standing", 1),
            ("fluent", "man", 1),
        ]
    ),
    "camera": [
        ("twemoji", "camera", 2),
        ("twemoji", "camera-with-flash", 2),
        ("twemoji", "video-camera", 2),
        ("twemoji", "movie-camera", 2),
        ("noto", "camera", 1),
        ("noto", "camera-with-flash", 1),
        ("noto", "video-camera", 1),
        ("noto", "movie-camera", 1),
        ("fluent", "camera", 1),
        ("fluent", "camera-with-flash", 1),
        ("fluent", "video-camera", 1),
        ("fluent", "movie-camera", 1),
        ("phosphor", "camera", 1),
        ("phosphor", "video-camera-fill", 1),
        ("tabler", "camera", 2),
        ("tabler-filled", "camera", 2),
        ("tabler", "camera-bolt", 1),
        ("tabler", "camera-check", 1),
        ("tabler", "camera-heart", 1),
        ("tabler", "camera-off", 1),
        ("tabler", "camera-plus", 1),
        ("tabler", "camera-rotate", 1),
        ("tabler", "camera-star", 1),
        ("tabler", "camera-search", 1),
        ("tabler", "video", 1),
        ("mdi", "camera", 2),
        ("mdi", "camera-outline", 1),
        ("mdi", "camera-enhance", 1),
        ("mdi", "camera-gopro", 1),
        ("mdi", "camera-flip-outline", 1),
        ("mdi", "camera-plus", 1),
        ("mdi", "camera-retake-outline", 1),
        ("mdi", "camera-wireless", 1),
        ("mdi", "camera-off-outline", 1),
        ("bootstrap", "camera", 2),
        ("bootstrap", "camera-fill", 1),
        ("bootstrap", "camera2", 1),
        ("bootstrap", "camera-video", 1),
        ("bootstrap", "camera-video-fill", 1),
        ("bootstrap", "camera-reels", 1),
        ("lucide", "camera", 2),
    ],
    "TV": [
        ("twemoji", "television", 2),
        ("noto", "television", 2),
        ("fluent", "television", 2),
        ("phosphor", "television", 2),
        ("phosphor", "television-simple-fill", 1),
        ("tabler", "device-tv", 2),
        ("tabler", "device-tv-old", 2),
        ("tabler", "device-tv-off", 2),
        ("tabler-filled", "device-tv", 2),
        ("tabler-filled", "device-tv-old", 2),
        ("mdi", "television", 2),
        ("mdi", "television-classic", 2),
        ("mdi", "television-classic-off", 2),
        ("mdi", "television-box", 2),
        ("mdi", "television-guide", 1),
        ("mdi", "television-off", 2),
        ("mdi", "television-play", 2),
        ("mdi", "television-pause", 2),
        ("mdi", "television-stop", 2),
        ("mdi", "television-shimmer", 2),
        ("mdi", "television-speaker", 1),
        ("mdi", "television-ambient-light", 2),
        ("bootstrap", "tv", 2),
        ("bootstrap", "tv-fill", 2),
        ("lucide", "tv", 2),
        ("lucide", "tv-minimal", 1),
        ("lucide", "tv-minimal-play", 2),
    ],
}

PACKAGES = {
    # source -> (npm package, path of the artwork inside the package, license)
    "twemoji": ("@iconify-json/twemoji", "icons.json", "CC-BY-4.0"),
    "noto": ("@iconify-json/noto", "icons.json", "Apache-2.0"),
    "fluent": ("@iconify-json/fluent-emoji-flat", "icons.json", "MIT"),
    "phosphor": ("@iconify-json/ph", "icons.json", "MIT"),
    "tabler": ("@tabler/icons", "icons/outline/{name}.svg", "MIT"),
    "tabler-filled": ("@tabler/icons", "icons/filled/{name}.svg", "MIT"),
    "mdi": ("@mdi/svg", "svg/{name}.svg", "Apache-2.0"),
    "bootstrap": ("bootstrap-icons", "icons/{name}.svg", "MIT"),
    "lucide": ("lucide-static", "icons/{name}.svg", "ISC"),
}

# --------------------------------------------------------------------------
# Colours
# --------------------------------------------------------------------------
LIGHT_BG = [
    "#ffffff",
    "#f4f4f0",
    "#eef2f7",
    "#fdf6e3",
    "#e9ecef",
    "#f1f8e9",
    "#fff3e0",
    "#ede7f6",
]
DARK_BG = [
    "#121212",
    "#1e2430",
    "#263238",
    "#2d2a32",
    "#1b2a1f",
    "#3a2e2a",
    "#0d1b2a",
    "#2f2f2f",
]
COLOUR_BG = [
    "#4a90d9",
    "#e76f51",
    "#2a9d8f",
    "#e9c46a",
    "#8e6cc2",
    "#f4a261",
    "#5bbf80",
    "#d35d8a",
    "#6c8ebf",
    "#c0392b",
    "#16a085",
    "#7f8c8d",
    "#b5838d",
    "#457b9d",
    "#a3b18a",
    "#ff9f9f",
]
INK = [
    "#111111",
    "#333333",
    "#1f3b73",
    "#7a1f1f",
    "#0b5d3b",
    "#4b2c83",
    "#ffffff",
    "#f5f5f5",
    "#ffd166",
    "#06d6a0",
    "#ef476f",
    "#118ab2",
    "#ff8c42",
    "#9ad1ff",
    "#c3f584",
    "#e0aaff",
]
BG_KINDS = ("light", "dark", "colour", "gradient")


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    h = hex_colour.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def _hex(rgb) -> str:
    return "#" + "".join(f"{int(round(c)):02x}" for c in rgb)


def _luminance(rgb) -> float:
    def ch(c):
        c = c / 255.0
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (ch(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a, b) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def _jitter(
    rng: random.Random, hex_colour: str, amount: float = 0.06
) -> tuple[int, int, int]:
    r, g, b = (c / 255.0 for c in _rgb(hex_colour))
    hue, light, sat = colorsys.rgb_to_hls(r, g, b)
    hue = (hue + rng.uniform(-amount, amount) / 2) % 1.0
    light = min(1.0, max(0.0, light + rng.uniform(-amount, amount)))
    sat = min(1.0, max(0.0, sat + rng.uniform(-amount, amount)))
    return tuple(int(round(c * 255)) for c in colorsys.hls_to_rgb(hue, light, sat))


# --------------------------------------------------------------------------
# Loading artwork
# --------------------------------------------------------------------------
@dataclass
class Artwork:
    svg: str  # SVG text; monochrome ones contain the placeholder colour INK_MARK
    mono: bool
    original: str  # original file name / key inside the package


INK_MARK = "#010203"


ICONIFY = ("twemoji", "noto", "fluent", "phosphor")


class Library:
    def __init__(self, npm_dir: Path):
        self.root = npm_dir / "node_modules"
        if not self.root.is_dir():
            raise SystemExit(
                f"{self.root} not found: run the npm install from the docstring"
            )
        self._sets: dict[str, dict] = {}
        self._chars: dict[str, dict[str, str]] = {}

    def _iconify(self, source: str) -> dict:
        if source not in self._sets:
            folder = self.root / PACKAGES[source][0]
            self._sets[source] = json.loads((folder / "icons.json").read_text())
            chars = {}
            if (folder / "chars.json").is_file():
                for cp, name in json.loads((folder / "chars.json").read_text()).items():
                    chars.setdefault(name, cp)
            self._chars[source] = chars
        return self._sets[source]

    def _iconify_icon(self, source: str, name: str) -> dict | None:
        data = self._iconify(source)
        seen = 0
        while (
            name in data.get("aliases", {}) and name not in data["icons"] and seen < 5
        ):
            alias = data["aliases"][name]
            if set(alias) - {"parent"}:
                return None  # transformed alias: not used
            name, seen = alias["parent"], seen + 1
        return data["icons"].get(name)

    def package_meta(self, package: str) -> dict:
        return json.loads((self.root / package / "package.json").read_text())

    def package_license_text(self, package: str) -> str:
        for cand in ("LICENSE", "LICENSE.md", "LICENSE.txt", "license"):
            p = self.root / package / cand
            if p.is_file():
                return p.read_text().strip()
        return ""

    def package_info(self, package: str) -> dict:
        info = self.root / package / "info.json"
        return json.loads(info.read_text()) if info.is_file() else {}

    def codepoint(self, source: str, key: str) -> str:
        self._iconify(source)
        return self._chars[source].get(key, "")

    def person_key(self, source: str, base: str, rng: random.Random) -> str:
        """Pick one skin-tone variant of an emoji person (deterministic by rng)."""
        tones = list(_SKIN_TONES)
        rng.shuffle(tones)
        gender, _, rest = base.partition("-")
        for tone in tones:
            if not tone:
                cands = [base]
            else:
                cands = [f"{base}-{tone}-skin-tone", f"{base}-{tone}"]
                if rest:
                    cands.append(f"{gender}-{tone}-skin-tone-{rest}")
            for c in cands:
                if self._iconify_icon(source, c) is not None:
                    return c
        raise KeyError(f"{source}:{base}")

    def load(self, source: str, name: str) -> Artwork:
        if source in ICONIFY:
            data = self._iconify(source)
            icon = self._iconify_icon(source, name)
            if icon is None:
                raise KeyError(f"{source}:{name}")
            w = icon.get("width", data.get("width", 16))
            h = icon.get("height", data.get("height", 16))
            left, top = icon.get("left", 0), icon.get("top", 0)
            body = icon["body"]
            mono = "currentColor" in body
            svg = (
                f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
                f'viewBox="{left} {top} {w} {h}">'
                f"{body.replace('currentColor', INK_MARK)}</svg>"
            )
            return Artwork(svg=svg, mono=mono, original=f"icons.json#{name}")
        package, pattern, _ = PACKAGES[source]
        rel = pattern.format(name=name)
        text = (self.root / package / rel).read_text()
        text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
        text = text.replace("currentColor", INK_MARK)
        if source == "mdi":
            # MDI paths carry no fill: give the root element one.
            text = text.replace("<svg ", f'<svg fill="{INK_MARK}" ', 1)
        return Artwork(svg=text, mono=True, original=rel)


# --------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------
CANVASES = [
    (128, 128),
    (144, 144),
    (160, 160),
    (192, 192),
    (224, 224),
    (256, 256),
    (192, 144),
    (144, 192),
    (240, 180),
    (160, 128),
    (256, 192),
    (180, 240),
]


@dataclass
class Style:
    canvas: tuple[int, int]
    bg_kind: str
    bg: tuple[int, int, int]
    bg2: tuple[int, int, int] | None
    gradient_dir: str
    tile: tuple[int, int, int] | None
    tile_round: float
    ink: tuple[int, int, int] | None
    scale: float  # icon box side as a fraction of the canvas's shorter side
    angle: float
    pos: tuple[float, float]  # 0..1 placement of the icon in the free space
    fmt: str
    behind: tuple[int, int, int] = (0, 0, 0)  # colour right behind the icon


def _rasterise(svg: str, px: int) -> Image.Image:
    png = cairosvg.svg2png(
        bytestring=svg.encode("utf-8"), output_width=px, output_height=px
    )
    return Image.open(io.BytesIO(png)).convert("RGBA")


def _mean_colour(img: Image.Image) -> tuple[int, int, int]:
    a = np.asarray(img).astype(np.float64)
    w = a[..., 3:4] / 255.0
    tot = w.sum()
    if tot == 0:
        return (128, 128, 128)
    return tuple(int(x) for x in (a[..., :3] * w).sum(axis=(0, 1)) / tot)


def choose_style(
    rng: random.Random, art: Artwork, *, bg_kind: str, scale_band: str
) -> Style:
    canvas = rng.choice(CANVASES)
    bg2 = None
    if bg_kind == "light":
        bg = _jitter(rng, rng.choice(LIGHT_BG), 0.03)
    elif bg_kind == "dark":
        bg = _jitter(rng, rng.choice(DARK_BG), 0.03)
    elif bg_kind == "colour":
        bg = _jitter(rng, rng.choice(COLOUR_BG))
    else:  # gradient between two related colours
        base = rng.choice(COLOUR_BG + LIGHT_BG + DARK_BG)
        bg = _jitter(rng, base)
        r, g, b = (c / 255 for c in bg)
        hue, light, sat = colorsys.rgb_to_hls(r, g, b)
        step = rng.choice([-1, 1]) * rng.uniform(0.15, 0.3)
        light2 = min(0.95, max(0.05, light + step))
        hue2 = (hue + rng.uniform(-0.08, 0.08)) % 1
        bg2 = tuple(int(c * 255) for c in colorsys.hls_to_rgb(hue2, light2, sat))
    lo, hi = {"large": (0.72, 0.92), "small": (0.45, 0.6), "any": (0.45, 0.9)}[
        scale_band
    ]
    scale = rng.uniform(lo, hi)
    tile = None
    tile_round = 0.0
    mid = (
        bg if bg2 is None else tuple((a + b) // 2 for a, b in zip(bg, bg2, strict=True))
    )
    if rng.random() < 0.22:
        tile = _jitter(rng, rng.choice(LIGHT_BG + COLOUR_BG + DARK_BG))
        tile_round = rng.choice([0.15, 0.3, 0.5])
        if contrast(tile, mid) < 1.4:  # a tile that melts into the background: none
            tile = None
    behind = tile if tile is not None else mid
    ink = None
    if art.mono:
        inks = [_rgb(c) for c in INK]
        rng.shuffle(inks)
        need = 4.5 if bg2 is None else 5.5
        ok = [
            c
            for c in inks
            if contrast(c, behind) >= need
            and (bg2 is None or min(contrast(c, bg), contrast(c, bg2)) >= 3)
        ]
        if not ok:
            ok = sorted(inks, key=lambda c: -contrast(c, behind))[:1]
        ink = ok[0]
    return Style(
        canvas=canvas,
        bg_kind=bg_kind,
        bg=bg,
        bg2=bg2,
        gradient_dir=rng.choice(["v", "h", "d"]),
        tile=tile,
        tile_round=tile_round,
        ink=ink,
        scale=scale,
        angle=rng.uniform(-12, 12) if rng.random() < 0.7 else 0.0,
        pos=(rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9)),
        fmt="png" if rng.random() < 0.25 else "jpg",
        behind=behind,
    )


def _background(style: Style) -> Image.Image:
    w, h = style.canvas
    if style.bg2 is None:
        return Image.new("RGB", (w, h), style.bg)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    t = {"v": yy / (h - 1), "h": xx / (w - 1), "d": (xx / (w - 1) + yy / (h - 1)) / 2}[
        style.gradient_dir
    ]
    a, b = np.array(style.bg, float), np.array(style.bg2, float)
    arr = a[None, None, :] * (1 - t[..., None]) + b[None, None, :] * t[..., None]
    return Image.fromarray(np.clip(arr + 0.5, 0, 255).astype(np.uint8), "RGB")


def _rounded_tile(size: int, radius_frac: float, colour) -> Image.Image:
    ss = 4
    mask = Image.new("L", (size * ss, size * ss), 0)
    ImageDraw.Draw(mask).rounded_rectangle(
        [0, 0, size * ss - 1, size * ss - 1],
        radius=int(size * ss * radius_frac),
        fill=255,
    )
    mask = mask.resize((size, size), Image.LANCZOS)
    tile = Image.new("RGBA", (size, size), colour + (255,))
    tile.putalpha(mask)
    return tile


def render(art: Artwork, style: Style) -> Image.Image:
    w, h = style.canvas
    short = min(w, h)
    canvas = _background(style).convert("RGBA")
    box = max(24, int(round(short * style.scale)))
    svg = art.svg
    if art.mono:
        svg = svg.replace(INK_MARK, _hex(style.ink))
    if style.tile is not None:
        tile_side = min(short - 4, int(box * 1.18))
        icon_px = int(tile_side * 0.74)
        layer = _rounded_tile(tile_side, style.tile_round, style.tile)
        icon = _rasterise(svg, icon_px)
        off = (tile_side - icon_px) // 2
        layer.alpha_composite(icon, (off, off))
    else:
        layer = _rasterise(svg, box)
    if style.angle:
        layer = (
            layer.convert("RGBa")
            .rotate(style.angle, resample=Image.BICUBIC, expand=True)
            .convert("RGBA")
        )
    lw, lh = layer.size
    if lw > w or lh > h:  # rotation grew it past the canvas: shrink to fit
        f = min(w / lw, h / lh) * 0.98
        layer = layer.resize((max(1, int(lw * f)), max(1, int(lh * f))), Image.LANCZOS)
        lw, lh = layer.size
    x = int(round((w - lw) * style.pos[0]))
    y = int(round((h - lh) * style.pos[1]))
    canvas.alpha_composite(layer, (x, y))
    return canvas.convert("RGB")


# --------------------------------------------------------------------------
# Perceptual hash (same algorithm as imagehash.phash: 32x32 grey, DCT, 8x8)
# --------------------------------------------------------------------------
def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * i + 1) * k / (2 * n))
    return m


_D32 = _dct_matrix(32)


def phash(img: Image.Image) -> int:
    g = np.asarray(img.convert("L").resize((32, 32), Image.LANCZOS), dtype=np.float64)
    d = _D32 @ g @ _D32.T
    low = d[:8, :8]
    bits = (low > np.median(low)).flatten()
    return int("".join("1" if b else "0" for b in bits), 2)


def hamming(a: int, b: int) -> int:
    return bin(a ^ b).count("1")


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------
def _seed_for(*parts: object) -> int:
    digest = hashlib.sha256("|".join(str(p) for p in (SEED,) + parts).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def _slug(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", s.lower()).strip("-")


def build(npm_dir: Path, out: Path, manifest: Path | None = None) -> dict:
    lib = Library(npm_dir)
    images_dir = out / "images"
    if images_dir.exists():
        shutil.rmtree(images_dir)
    used: dict[
        str, list[tuple[str, str, str]]
    ] = {}  # source -> [(original, label, files)]
    hashes: list[tuple[int, str]] = []
    counts = {}
    styles = {}
    for label in LABELS:
        (images_dir / label).mkdir(parents=True, exist_ok=True)
        counts[label] = 0
        for source, name, n in PLAN[label]:
            key = name
            if source in ICONIFY and label in ("woman", "man"):
                key = lib.person_key(
                    source, name, random.Random(_seed_for("tone", source, name))
                )
            art = lib.load(source, key)
            art_mean = _mean_colour(_rasterise(art.svg, 64)) if not art.mono else None
            base_rng = random.Random(_seed_for(label, source, key))
            kinds = list(BG_KINDS)
            base_rng.shuffle(kinds)
            bands = (
                ["large", "small"] if base_rng.random() < 0.5 else ["small", "large"]
            )
            files = []
            for i in range(n):
                stem = f"{source}-{_slug(key)}-{i + 1}"
                for attempt in range(40):
                    rng = random.Random(_seed_for(stem, attempt))
                    if n == 1:
                        kind = (
                            kinds[attempt % len(kinds)]
                            if attempt
                            else rng.choice(BG_KINDS)
                        )
                        band = "any"
                    else:
                        kind = (
                            kinds[(i + 2 * attempt) % len(kinds)]
                            if attempt
                            else kinds[i]
                        )
                        band = bands[i]
                    style = choose_style(rng, art, bg_kind=kind, scale_band=band)
                    if (
                        art_mean is not None
                        and contrast(art_mean, style.behind) < MIN_ART_CONTRAST
                    ):
                        continue
                    img = render(art, style)
                    hsh = phash(img)
                    near = min((hamming(hsh, o) for o, _ in hashes), default=64)
                    if near > MIN_PHASH_DISTANCE:
                        break
                else:
                    raise SystemExit(
                        f"could not render {stem} far enough from the others"
                    )
                fname = f"{stem}.{style.fmt}"
                path = images_dir / label / fname
                if style.fmt == "jpg":
                    img.save(path, "JPEG", quality=JPEG_QUALITY, optimize=True)
                else:
                    img.save(path, "PNG", optimize=True)
                hashes.append((hsh, f"{label}/{fname}"))
                styles[f"{label}/{fname}"] = {
                    "source": f"{source}:{key}",
                    "bg_kind": style.bg_kind,
                    "scale": round(style.scale, 3),
                    "tile": style.tile is not None,
                    "angle": round(style.angle, 1),
                    "canvas": style.canvas,
                    "phash": f"{hsh:016x}",
                    "nearest": near,
                }
                files.append(fname)
                counts[label] += 1
            used.setdefault(source, []).append((art.original, label, ", ".join(files)))
    write_attribution(lib, out, used, counts)
    if manifest is not None:
        manifest.write_text(json.dumps(styles, indent=1))
    return counts


def write_attribution(lib: Library, out: Path, used, counts) -> None:
    lines = [
        "# Demo dataset: sources and attribution",
        "",
        "Generated by `scripts/build_demo_data.py`; do not edit by hand.",
        "",
        "Every image in `images/<label>/` was rendered from the vector artwork listed",
        "below. Changes made to the originals: rasterised (cairosvg), recoloured",
        "(monochrome icons only), scaled, placed on a plain, gradient or tiled",
        "background, slightly rotated in some images, and saved as JPEG or PNG.",
        "A source icon appears at most twice, rendered differently each time.",
        "",
        "| label | images |",
        "| --- | --- |",
    ]
    lines += [f"| {label} | {counts[label]} |" for label in LABELS]
    lines.append("")
    done_pkgs = set()
    for source in (
        "twemoji",
        "noto",
        "fluent",
        "phosphor",
        "tabler",
        "tabler-filled",
        "mdi",
        "bootstrap",
        "lucide",
    ):
        if source not in used:
            continue
        package, _, spdx = PACKAGES[source]
        meta = lib.package_meta(package)
        lines += [
            f"## {source}: npm `{package}` {meta['version']}",
            "",
            f"- License: {spdx} (package.json says `{meta.get('license')}`)",
        ]
        info = lib.package_info(package)
        if info:
            author, lic = info.get("author", {}), info.get("license", {})
            lines.append(
                f"- Artwork: {info.get('name')} by {author.get('name')}"
                f" ({author.get('url')}),"
                f" {lic.get('title')} ({lic.get('url')})."
            )
        if source == "twemoji":
            lines.append(
                "- Twemoji: Copyright Twitter, Inc and other contributors;"
                " graphics licensed"
                " under CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/)."
            )
        elif source == "mdi":
            lines.append(
                "- Icons: Pictogrammers (Material Design Icons), Apache License 2.0"
                " (https://www.apache.org/licenses/LICENSE-2.0)."
            )
        elif source == "lucide":
            lines.append(
                "- `icons/tv.svg` is derived from Feather"
                " (MIT, Copyright (c) 2013-present"
                " Cole Bemis); see the license text below."
            )
        if source in ICONIFY:
            lines.append(
                "- Originals are entries of the package's `icons.json`"
                " (icon key, and Unicode code points where the set has them)."
            )
        lines += ["", "| original | label | files |", "| --- | --- | --- |"]
        for original, label, files in sorted(used[source]):
            shown = original
            if source in ICONIFY:
                cp = lib.codepoint(source, original.split("#", 1)[1])
                if cp:
                    shown = f"{original} (U+{cp.upper().replace('-', ' U+')})"
            lines.append(f"| `{shown}` | {label} | {files} |")
        lines.append("")
        if package not in done_pkgs:
            done_pkgs.add(package)
            text = lib.package_license_text(package)
            if text:
                lines += [
                    f"License file shipped with `{package}`:",
                    "",
                    "```text",
                    text,
                    "```",
                    "",
                ]
    (out / "ATTRIBUTION.md").write_text("\n".join(lines))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--npm-dir",
        type=Path,
        default=Path("/tmp/demo-npm"),
        help="the --prefix folder of the npm install (holds node_modules/)",
    )
    ap.add_argument("--out", type=Path, default=Path("datasets/demo"))
    ap.add_argument(
        "--manifest",
        type=Path,
        default=None,
        help="also write a JSON list of each image's rendering choices (for checking)",
    )
    args = ap.parse_args(argv)
    counts = build(args.npm_dir, args.out, args.manifest)
    total = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(
        " ".join(f"{k}={v}" for k, v in counts.items()), f"total={total / 1e6:.2f} MB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
