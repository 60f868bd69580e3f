from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from training.ml import split_groups, split_items
from training.ml.folders import folder_items


def far_apart_hashes(n: int, seed: int = 0) -> list[str]:
    """Random 64-bit hashes, redrawn until all pairs differ by > 12 bits."""
    rnd = random.Random(seed)
    hashes: list[int] = []
    while len(hashes) < n:
        h = rnd.getrandbits(64)
        if all(bin(h ^ other).count("1") > 12 for other in hashes):
            hashes.append(h)
    return [f"{h:016x}" for h in hashes]


def flip_bits(hex_hash: str, bits: list[int]) -> str:
    value = int(hex_hash, 16)
    for bit in bits:
        value ^= 1 << bit
    return f"{value:016x}"


def dataset(labels: dict[str, int], seed: int = 0):
    keys, labs = [], []
    for label, n in labels.items():
        for i in range(n):
            keys.append(f"{label}/{i}.jpg")
            labs.append(label)
    return keys, far_apart_hashes(len(keys), seed), labs


def test_it_is_deterministic_and_ignores_input_order():
    keys, hashes, labels = dataset({"cat": 30, "dog": 25, "fox": 12})
    first = split_items(keys, hashes, labels, valid_pct=0.2, seed=3)
    again = split_items(keys, hashes, labels, valid_pct=0.2, seed=3)

    order = list(range(len(keys)))
    random.Random(1).shuffle(order)
    shuffled = split_items(
        [keys[i] for i in order],
        [hashes[i] for i in order],
        [labels[i] for i in order],
        valid_pct=0.2,
        seed=3,
    )

    assert first == again
    assert {keys[i]: side for i, side in zip(order, shuffled, strict=True)} == dict(
        zip(keys, first, strict=True)
    )
    assert split_items(keys, hashes, labels, valid_pct=0.2, seed=4) != first


def test_each_side_gets_about_its_share_of_every_label():
    keys, hashes, labels = dataset({"cat": 400, "dog": 300, "fox": 200})
    sides = split_items(keys, hashes, labels, valid_pct=0.2, test_pct=0.1, seed=0)

    for label, n in Counter(labels).items():
        counts = Counter(
            s for lab, s in zip(labels, sides, strict=True) if lab == label
        )
        assert counts["valid"] / n == pytest.approx(0.2, abs=0.06)
        assert counts["test"] / n == pytest.approx(0.1, abs=0.05)


def test_every_label_with_two_groups_gets_a_valid_and_a_train_item():
    keys, hashes, labels = dataset({"big": 40, "pair": 2, "single": 1})
    sides = split_items(keys, hashes, labels, valid_pct=0.05, seed=0)
    by_label: dict[str, set[str]] = {}
    for label, side in zip(labels, sides, strict=True):
        by_label.setdefault(label, set()).add(side)

    assert by_label == {
        "big": {"train", "valid"},
        "pair": {"train", "valid"},
        "single": {"train"},
    }


def test_near_duplicates_land_on_the_same_side_transitively():
    keys, hashes, labels = dataset({"cat": 20, "dog": 20})
    # cat/0 ~ a (4 bits) ~ b (4 more bits): b is 8 bits from cat/0, still grouped.
    a = flip_bits(hashes[0], [0, 1, 2, 3])
    b = flip_bits(a, [10, 11, 12, 13])
    keys += ["cat/near-a.jpg", "dog/near-b.jpg"]
    hashes += [a, b]
    labels += ["cat", "dog"]

    for seed in range(20):
        sides = split_items(keys, hashes, labels, valid_pct=0.3, seed=seed)
        assert sides[0] == sides[-2] == sides[-1]


def test_hashes_further_apart_than_max_distance_are_not_grouped():
    base = "0" * 16
    far = flip_bits(base, list(range(7)))
    keys = ["a", "b"]
    # Two items of one label: grouped, they cannot be split; apart, they are.
    assert sorted(
        split_items(keys, [base, far], ["x", "x"], valid_pct=0.5, seed=0)
    ) == [
        "train",
        "valid",
    ]
    assert split_items(
        keys, [base, far], ["x", "x"], valid_pct=0.5, seed=0, max_distance=7
    ) == ["train", "train"]


def test_items_without_a_hash_are_their_own_group():
    keys = [f"k{i}" for i in range(200)]
    sides = split_items(keys, [None] * 200, ["x"] * 200, valid_pct=0.3, seed=0)
    assert Counter(sides)["valid"] / 200 == pytest.approx(0.3, abs=0.08)


def test_a_group_keeps_its_side_when_other_groups_come_and_go():
    rnd = random.Random(0)
    groups = [f"{rnd.getrandbits(64):016x}" for _ in range(300)]
    labels = [rnd.choice("abc") for _ in groups]
    before = split_groups(groups, labels, valid_pct=0.2, test_pct=0.1, seed=42)

    # Drop a third of the groups, add 100 new ones, shuffle the order.
    kept = [i for i in range(300) if i % 3]
    new = [f"{rnd.getrandbits(64):016x}" for _ in range(100)]
    order = [(groups[i], labels[i]) for i in kept] + [(g, "a") for g in new]
    rnd.shuffle(order)
    after = split_groups(
        [g for g, _ in order],
        [lab for _, lab in order],
        valid_pct=0.2,
        test_pct=0.1,
        seed=42,
    )

    side_before = dict(zip(groups, before, strict=True))
    for (group, _), side in zip(order, after, strict=True):
        if group in side_before:
            assert side == side_before[group]
    assert set(after) == {"train", "valid", "test"}


def test_members_of_one_group_share_a_side():
    groups = ["g1", "g1", "g1", "g2", "g2"] + [f"x{i}" for i in range(50)]
    labels = ["a"] * 55
    sides = split_groups(groups, labels, valid_pct=0.3, test_pct=0.2, seed=1)
    assert len(set(sides[:3])) == 1 and len(set(sides[3:5])) == 1


def test_a_small_label_still_gets_a_training_and_a_validation_group():
    # Whatever the hashes say, two groups of a label are split one each way.
    for seed in range(30):
        sides = split_groups(["p", "q"], ["tiny", "tiny"], valid_pct=0.2, seed=seed)
        assert sorted(sides) == ["train", "valid"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"keys": ["a", "a"]}, "unique"),
        ({"labels": ["x"]}, "same length"),
        ({"valid_pct": 1.0}, "valid_pct"),
        ({"phashes": ["zz", None]}, "hexadecimal"),
    ],
)
def test_it_refuses_bad_input(kwargs, message):
    args = {
        "keys": ["a", "b"],
        "phashes": ["00", "ff"],
        "labels": ["x", "y"],
        "valid_pct": 0.2,
        "seed": 0,
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        split_items(args.pop("keys"), args.pop("phashes"), args.pop("labels"), **args)


def test_a_resized_copy_never_leaks_across_the_split(tmp_path: Path, draw_image):
    rnd = random.Random(5)
    for label in ("red", "green", "blue"):
        (tmp_path / "small" / label).mkdir(parents=True)
        (tmp_path / "large" / label).mkdir(parents=True)
        for i in range(6):
            img = draw_image(label, rnd)
            img.save(tmp_path / "small" / label / f"{i}.png")
            big = img.resize((img.width * 2, img.height * 2), Image.Resampling.LANCZOS)
            big.save(tmp_path / "large" / label / f"{i}.jpg", quality=90)
    (tmp_path / "loose.png").write_bytes((tmp_path / "small/red/0.png").read_bytes())

    items = folder_items(tmp_path, valid_pct=0.3, seed=0)

    # Labels come from the immediate parent folder; the loose file has none.
    assert len(items) == 36
    assert {item.label for item in items} == {"red", "green", "blue"}
    side = {
        Path(item.path).relative_to(tmp_path).as_posix(): item.split for item in items
    }
    for name, split in side.items():
        if name.startswith("large/"):
            assert (
                side[name.replace("large/", "small/").replace(".jpg", ".png")] == split
            )
    assert set(side.values()) == {"train", "valid"}
