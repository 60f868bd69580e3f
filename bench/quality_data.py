"""Build the model-quality benchmark's data sets from freely licensed artwork on npm.

    python -m bench.quality_data [--out bench/work/quality] [--only emoji,icons]

Two data sets, each over 1,000 images in fastai's `<label>/<image>` layout, with
their test subjects held out whole (no drawing of a test subject is in `train/`):

* ``emoji`` -- animal / food / transport: Unicode emoji (their group in Unicode's
  own hierarchy, from emojibase-data) drawn by seven emoji families (Twemoji, Noto,
  Noto v1, Fluent flat, Fluent high contrast, OpenMoji, EmojiOne v1).
* ``icons`` -- arrow / building / person / vehicle / weather: monochrome icons from
  five icon families (Phosphor in its six weights, Tabler outline and filled,
  Material Design Icons and their outline versions, Bootstrap Icons and their
  filled versions, Lucide), classed by their names.

A *subject* is one emoji, or one icon concept across families ("cloud-rain" in
Phosphor, Tabler and Lucide is one subject; "user-plus" belongs to "user"). Each
subject appears as several drawings (families, weights), and each drawing in one
or more colour variants that keep its layout: the near duplicates a scraped data
set is full of. 20% of each label's subjects, chosen by a hash of their name, go
to ``test/``.

Everything is deterministic: the same npm packages (pinned in
bench/quality_npm/package-lock.json, installed with `npm ci` into the output's
`npm/` folder) give the same files. Licenses: CC BY 4.0 (Twemoji), Apache 2.0
(Noto, Material Design Icons), MIT (Fluent Emoji, Phosphor, Tabler, Bootstrap
Icons, emojibase-data), CC BY-SA 4.0 (OpenMoji, EmojiOne v1), ISC (Lucide); each
data set's ATTRIBUTION.md lists what it used.
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
import subprocess
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
NPM_SPEC = ROOT / "bench" / "quality_npm"
DEFAULT_OUT = ROOT / "bench" / "work" / "quality"
SEED = 20261201
TEST_FRACTION = 0.2
VERSION = 1  # bump when the output changes, so stale builds are rebuilt

EMOJI_FAMILIES = {
    # family -> (package, reads names from its own chars.json)
    "twemoji": "@iconify-json/twemoji",
    "noto": "@iconify-json/noto",
    "noto-v1": "@iconify-json/noto-v1",
    "fluent-flat": "@iconify-json/fluent-emoji-flat",
    "fluent-contrast": "@iconify-json/fluent-emoji-high-contrast",
    "openmoji": "@iconify-json/openmoji",
    "emojione-v1": "@iconify-json/emojione-v1",
}
EMOJI_LABELS = {
    "animal": {
        "animal-mammal",
        "animal-bird",
        "animal-amphibian",
        "animal-reptile",
        "animal-marine",
        "animal-bug",
    },
    "food": {
        "food-fruit",
        "food-vegetable",
        "food-prepared",
        "food-asian",
        "food-sweet",
        "drink",
    },
    "transport": {"transport-ground", "transport-water", "transport-air"},
}

ICON_FAMILIES = {
    # family -> (package, weights as name suffixes; "" is the plain icon)
    "phosphor": (
        "@iconify-json/ph",
        ["", "-thin", "-light", "-bold", "-fill", "-duotone"],
    ),
    "tabler": ("@iconify-json/tabler", ["", "-filled"]),
    "mdi": ("@iconify-json/mdi", ["", "-outline"]),
    "bootstrap": ("@iconify-json/bi", ["", "-fill"]),
    "lucide": ("@iconify-json/lucide", [""]),
}
ICON_LABELS = {
    "arrow": {"arrow", "arrows", "chevron", "chevrons", "caret"},
    "building": {
        "building",
        "buildings",
        "home",
        "house",
        "bank",
        "hospital",
        "castle",
        "church",
        "factory",
        "warehouse",
        "school",
        "garage",
        "barn",
        "hotel",
        "museum",
        "stadium",
        "mosque",
        "synagogue",
        "lighthouse",
        "skyscraper",
        "store",
    },
    "person": {"user", "users", "person", "account", "human", "man", "woman", "people"},
    "vehicle": {
        "car",
        "bus",
        "truck",
        "bike",
        "bicycle",
        "motorcycle",
        "motorbike",
        "scooter",
        "plane",
        "airplane",
        "train",
        "tram",
        "ship",
        "boat",
        "sailboat",
        "taxi",
        "tractor",
        "ambulance",
        "van",
        "helicopter",
        "subway",
        "jeep",
        "forklift",
        "caravan",
        "firetruck",
        "bulldozer",
    },
    "weather": {
        "cloud",
        "clouds",
        "cloudy",
        "sun",
        "rain",
        "snow",
        "snowflake",
        "storm",
        "thunderstorm",
        "lightning",
        "wind",
        "tornado",
        "fog",
        "hail",
        "rainbow",
        "umbrella",
        "weather",
        "haze",
        "drizzle",
    },
}
# Trailing words that decorate an icon without changing what it shows.
ICON_MODIFIERS = {
    "off",
    "plus",
    "minus",
    "check",
    "x",
    "slash",
    "question",
    "search",
    "alert",
    "cancel",
    "edit",
    "cog",
    "lock",
    "remove",
    "add",
    "circle",
    "square",
    "outline",
    "filled",
    "fill",
    "variant",
    "box",
    "2",
    "3",
    "4",
}
# Subjects per label and drawings per subject, so the labels come out balanced.
EMOJI_DRAWINGS = {"animal": 3, "food": 3, "transport": 5}
ICON_SUBJECTS_PER_LABEL = 100
ICON_DRAWINGS = 6
# How many colourings of one layout a drawing gets, and how likely each count is.
COLOURINGS = ((1, 0.45), (2, 0.35), (3, 0.2))

LIGHT = ["#ffffff", "#f4f1ea", "#eef2f7", "#f7f3e8", "#e9ecef", "#fdf6e3"]
DARK = ["#1d1f21", "#22304a", "#2d2a32", "#102a2a", "#3b2f2f", "#111827"]
COLOUR = ["#f28b82", "#fbbc04", "#34a853", "#4285f4", "#a142f4", "#24c1e0",
          "#ff7043", "#8d6e63", "#78909c", "#ec407a", "#9ccc65", "#5c6bc0"]  # fmt: skip
INKS = ["#000000", "#ffffff", "#1a237e", "#b71c1c", "#1b5e20", "#4a148c",
        "#e65100", "#263238", "#f5f5f5", "#004d40"]  # fmt: skip
INK_MARK = "currentColor"


@dataclass(frozen=True)
class Drawing:
    label: str
    subject: str
    family: str
    name: str  # the icon's name in its family's icons.json
    svg: str
    mono: bool


def _hash01(*parts: object) -> float:
    digest = hashlib.sha256("|".join(map(str, (SEED, *parts))).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _rng(*parts: object) -> random.Random:
    return random.Random(int(_hash01(*parts) * 2**53))


def npm_install(out: Path) -> Path:
    """The pinned packages under out/npm/node_modules (`npm ci` when missing)."""
    folder = out / "npm"
    stamp = folder / "node_modules" / ".snapclass-lock"
    lock = (NPM_SPEC / "package-lock.json").read_bytes()
    if stamp.is_file() and stamp.read_bytes() == lock:
        return folder / "node_modules"
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copy(NPM_SPEC / name, folder / name)
    subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=folder,
        check=True,
    )
    stamp.write_bytes(lock)
    return folder / "node_modules"


class IconSet:
    """One @iconify-json package: icons by name, aliases resolved."""

    def __init__(self, modules: Path, package: str) -> None:
        self.package = package
        root = modules / package
        self.data = json.loads((root / "icons.json").read_text())
        self.info = json.loads((root / "info.json").read_text())
        self.version = json.loads((root / "package.json").read_text())["version"]
        chars = root / "chars.json"
        self.chars = json.loads(chars.read_text()) if chars.is_file() else {}

    def names(self) -> set[str]:
        return set(self.data["icons"]) | set(self.data.get("aliases", {}))

    def svg(self, name: str) -> str | None:
        icons, aliases = self.data["icons"], self.data.get("aliases", {})
        for _ in range(5):
            if name in icons:
                break
            alias = aliases.get(name)
            if alias is None or set(alias) - {"parent"}:
                return None
            name = alias["parent"]
        icon = icons.get(name)
        if icon is None:
            return None
        w = icon.get("width", self.data.get("width", 16))
        h = icon.get("height", self.data.get("height", 16))
        left, top = icon.get("left", 0), icon.get("top", 0)
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
            f'viewBox="{left} {top} {w} {h}">{icon["body"]}</svg>'
        )


def _hex_key(hexcode: str) -> str:
    return "-".join(p for p in hexcode.lower().split("-") if p != "fe0f")


def emoji_drawings(modules: Path) -> tuple[list[Drawing], dict[str, IconSet]]:
    meta = json.loads((modules / "emojibase-data/meta/groups.json").read_text())
    subgroup_names = {int(k): v for k, v in meta["subgroups"].items()}
    label_of = {sub: label for label, subs in EMOJI_LABELS.items() for sub in subs}
    sets = {fam: IconSet(modules, pkg) for fam, pkg in EMOJI_FAMILIES.items()}
    by_hex = {
        fam: {_hex_key(cp): name for cp, name in s.chars.items()}
        for fam, s in sets.items()
    }
    drawings: list[Drawing] = []
    for emoji in json.loads((modules / "emojibase-data/en/data.json").read_text()):
        label = label_of.get(subgroup_names.get(emoji.get("subgroup", -1), ""))
        if label is None:
            continue
        key = _hex_key(emoji["hexcode"])
        twemoji_name = by_hex["twemoji"].get(key)
        found = []
        for fam, s in sets.items():
            name = by_hex[fam].get(key) or twemoji_name  # sets without chars.json
            svg = s.svg(name) if name else None
            if svg is not None:
                found.append(Drawing(label, emoji["label"], fam, name, svg, False))
        if len(found) < 2:
            continue
        rng = _rng("emoji", key)
        rng.shuffle(found)
        drawings.extend(found[: EMOJI_DRAWINGS[label]])
    return drawings, sets


def _icon_subject(base: str) -> tuple[str, str] | None:
    """(label, subject) of a plain icon name, or None when it is not one of ours.

    The label comes from the name's first word; the subject is its first two
    words once decorations are dropped ("cloud-rain-off" -> "cloud-rain").
    """
    words = base.split("-")
    while len(words) > 1 and words[-1] in ICON_MODIFIERS:
        words.pop()
    for label, keys in ICON_LABELS.items():
        if words[0] in keys:
            return label, "-".join(words[:2])
    return None


def icon_drawings(modules: Path) -> tuple[list[Drawing], dict[str, IconSet]]:
    sets = {fam: IconSet(modules, pkg) for fam, (pkg, _) in ICON_FAMILIES.items()}
    weights = {fam: ws for fam, (_, ws) in ICON_FAMILIES.items()}
    candidates: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for fam, s in sets.items():
        names = s.names()
        suffixes = [w for w in weights[fam] if w]
        for name in sorted(names):
            if any(name.endswith(w) for w in suffixes):
                continue  # a weight of another name
            found = _icon_subject(name)
            if found is None:
                continue
            for weight in weights[fam]:
                if weight == "" or name + weight in names:
                    candidates[found].append((fam, name + weight))
    by_label: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for label, subject in candidates:
        by_label[label].append((label, subject))
    drawings: list[Drawing] = []
    for label, subjects in sorted(by_label.items()):
        subjects.sort(key=lambda key: _hash01("icon-subject", *key))
        for key in subjects[:ICON_SUBJECTS_PER_LABEL]:
            options = sorted(candidates[key])
            rng = _rng("icon", *key)
            rng.shuffle(options)
            for fam, name in options[:ICON_DRAWINGS]:
                svg = sets[fam].svg(name)
                if svg is not None:
                    drawings.append(Drawing(label, key[1], fam, name, svg, True))
    return drawings, sets


# --------------------------------------------------------------------------
# Rendering: a drawing on a canvas, in one layout, in one or two colourings
# --------------------------------------------------------------------------
def _rgb(hex_colour: str) -> tuple[int, int, int]:
    h = hex_colour.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def _luminance(rgb: tuple[int, int, int]) -> float:
    def channel(c: float) -> float:
        c /= 255.0
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _contrast(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def _jitter(rng: random.Random, colour: str, amount: float = 0.05) -> tuple:
    r, g, b = (c / 255.0 for c in _rgb(colour))
    hue, light, sat = colorsys.rgb_to_hls(r, g, b)
    hue = (hue + rng.uniform(-amount, amount) / 2) % 1.0
    light = min(1.0, max(0.0, light + rng.uniform(-amount, amount)))
    return tuple(int(round(c * 255)) for c in colorsys.hls_to_rgb(hue, light, sat))


@dataclass(frozen=True)
class Layout:
    canvas: tuple[int, int]
    scale: float
    angle: float
    pos: tuple[float, float]
    fmt: str


def _layout(rng: random.Random) -> Layout:
    side = rng.choice([128, 160, 192, 224, 256])
    aspect = rng.choice([1.0, 1.0, 0.75, 1.33])
    canvas = (side, max(96, int(side * aspect)))
    return Layout(
        canvas=canvas,
        scale=rng.uniform(0.45, 0.9),
        angle=rng.uniform(-12, 12) if rng.random() < 0.6 else 0.0,
        pos=(rng.uniform(0.15, 0.85), rng.uniform(0.15, 0.85)),
        fmt="png" if rng.random() < 0.3 else "jpg",
    )


def _colours(rng: random.Random, mono: bool) -> tuple[tuple, tuple | None]:
    background = _jitter(rng, rng.choice(rng.choice([LIGHT, LIGHT, DARK, COLOUR])))
    if not mono:
        return background, None
    inks = [_rgb(c) for c in INKS]
    rng.shuffle(inks)
    good = [c for c in inks if _contrast(c, background) >= 4.5]
    return background, (good or sorted(inks, key=lambda c: -_contrast(c, background)))[
        0
    ]


def _rasterise(svg: str, px: int) -> Image.Image:
    import resvg_py

    png = resvg_py.svg_to_bytes(svg_string=svg, width=px, height=px)
    return Image.open(io.BytesIO(bytes(png))).convert("RGBA")


def render(drawing: Drawing, layout: Layout, background: tuple, ink) -> Image.Image:
    w, h = layout.canvas
    svg = drawing.svg
    if drawing.mono:
        svg = svg.replace(INK_MARK, "#{:02x}{:02x}{:02x}".format(*ink))
    layer = _rasterise(svg, max(24, int(min(w, h) * layout.scale)))
    if layout.angle:
        layer = (
            layer.convert("RGBa")
            .rotate(layout.angle, resample=Image.BICUBIC, expand=True)
            .convert("RGBA")
        )
    lw, lh = layer.size
    if lw > w or lh > h:
        f = min(w / lw, h / lh) * 0.98
        layer = layer.resize((max(1, int(lw * f)), max(1, int(lh * f))), Image.LANCZOS)
        lw, lh = layer.size
    canvas = Image.new("RGBA", (w, h), background + (255,))
    x, y = int((w - lw) * layout.pos[0]), int((h - lh) * layout.pos[1])
    canvas.alpha_composite(layer, (x, y))
    return canvas.convert("RGB")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def write_dataset(
    name: str, drawings: list[Drawing], sets: dict[str, IconSet], out: Path
) -> dict:
    """Render every drawing into out/{train,test}/<label>/ and write a manifest."""
    folder = out / name
    shutil.rmtree(folder, ignore_errors=True)
    subjects: dict[str, set[str]] = defaultdict(set)
    for d in drawings:
        subjects[d.label].add(d.subject)
    test_subjects = set()
    for label, names in subjects.items():
        ranked = sorted(names, key=lambda s: _hash01("test", name, label, s))
        test_subjects |= {
            (label, s) for s in ranked[: round(TEST_FRACTION * len(ranked))]
        }
    counts: Counter[tuple[str, str]] = Counter()
    used: Counter[str] = Counter()
    for d in drawings:
        rng = _rng(name, d.family, d.name, d.subject)
        layout = _layout(rng)
        side = "test" if (d.label, d.subject) in test_subjects else "train"
        n_colours = rng.choices(*zip(*COLOURINGS, strict=True))[0]
        for variant in range(n_colours):
            background, ink = _colours(rng, d.mono)
            image = render(d, layout, background, ink)
            target = folder / side / d.label
            target.mkdir(parents=True, exist_ok=True)
            stem = f"{_slug(d.subject)}--{d.family}-{_slug(d.name)}-{variant}"
            if layout.fmt == "jpg":
                image.save(target / f"{stem}.jpg", quality=90)
            else:
                image.save(target / f"{stem}.png", optimize=False)
            counts[(side, d.label)] += 1
            used[d.family] += 1
    manifest = {
        "name": name,
        "version": VERSION,
        "labels": sorted(subjects),
        "images": {
            side: {label: counts[(side, label)] for label in sorted(subjects)}
            for side in ("train", "test")
        },
        "subjects": {
            side: sum(
                1
                for label, names in subjects.items()
                for s in names
                if ((label, s) in test_subjects) == (side == "test")
            )
            for side in ("train", "test")
        },
        "families": dict(sorted(used.items())),
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    _write_attribution(folder, name, sets, used)
    return manifest


def _write_attribution(
    folder: Path, name: str, sets: dict[str, IconSet], used: Counter
) -> None:
    lines = [
        f"# Attribution: the `{name}` quality data set",
        "",
        "Rendered by bench/quality_data.py from these npm packages (unchanged "
        "artwork, recoloured and placed on plain backgrounds):",
        "",
    ]
    for family, s in sets.items():
        if not used[family]:
            continue
        lic = s.info.get("license", {})
        author = s.info.get("author", {})
        lines.append(
            f"- {s.info.get('name', family)} ({s.package}@{s.version}): "
            f"{used[family]} images; {author.get('name', '')} "
            f"{author.get('url', '')}; license {lic.get('title', '')} "
            f"({lic.get('spdx', '')}) {lic.get('url', '')}"
        )
    lines.append(
        "- emojibase-data (MIT): Unicode emoji groups and names"
        if name == "emoji"
        else ""
    )
    (folder / "ATTRIBUTION.md").write_text("\n".join(lines).rstrip() + "\n")


BUILDERS = {"emoji": emoji_drawings, "icons": icon_drawings}


def build(out: Path = DEFAULT_OUT, only: list[str] | None = None) -> dict[str, dict]:
    """Build (or reuse, when the same version is already there) each data set."""
    out.mkdir(parents=True, exist_ok=True)
    modules = None
    manifests = {}
    for name in only or list(BUILDERS):
        existing = out / name / "manifest.json"
        if existing.is_file():
            manifest = json.loads(existing.read_text())
            if manifest.get("version") == VERSION:
                manifests[name] = manifest
                continue
        modules = modules or npm_install(out)
        drawings, sets = BUILDERS[name](modules)
        manifests[name] = write_dataset(name, drawings, sets, out)
    return manifests


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--only", default="", help="comma-separated: emoji,icons")
    parser.add_argument("--force", action="store_true", help="rebuild even if present")
    args = parser.parse_args(argv)
    only = [n for n in args.only.split(",") if n] or None
    if args.force:
        for name in only or BUILDERS:
            shutil.rmtree(args.out / name, ignore_errors=True)
    for name, manifest in build(args.out, only).items():
        print(name, json.dumps({k: manifest[k] for k in ("images", "subjects")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
