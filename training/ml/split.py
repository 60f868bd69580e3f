"""Reproducible train / valid / test splits that keep near duplicates together and
keep each group on its side from one run to the next."""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np

# Set bits per byte value, for Hamming distances between packed hashes.
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


SIDES = ("train", "valid", "test")


def split_groups(
    group_keys: Sequence[str],
    labels: Sequence[str],
    *,
    valid_pct: float,
    seed: int,
    test_pct: float = 0.0,
) -> list[str]:
    """Return "train", "valid" or "test" for each item, in the order given.

    Items with the same group key (near duplicates: one subject) always land on the
    same side. A group's side comes from a hash of (seed, group key) alone: with
    the same seed a group keeps its side however many images are added or removed
    around it, so two runs hold out the same groups. Hashes below test_pct go to
    test, the next valid_pct to valid, the rest to train. Then each label with two
    or more groups is given at least one training group and one validation group,
    borrowing the groups nearest to those bands when the hash gave it none.
    """
    n = len(group_keys)
    if len(labels) != n:
        raise ValueError("group_keys and labels must have the same length")
    if not 0.0 <= valid_pct < 1.0 or not 0.0 <= test_pct < 1.0:
        raise ValueError("valid_pct and test_pct must be in [0, 1)")
    if valid_pct + test_pct >= 1.0:
        raise ValueError("valid_pct + test_pct must leave images to train on")

    members: dict[str, list[int]] = defaultdict(list)
    for i, key in enumerate(group_keys):
        members[key].append(i)
    position = {key: _unit(seed, key) for key in members}
    side = {
        key: "test"
        if u < test_pct
        else "valid"
        if u < test_pct + valid_pct
        else "train"
        for key, u in position.items()
    }
    by_label: dict[str, list[str]] = defaultdict(list)
    for key, idx in members.items():
        # A group of mixed labels (a likely mislabel) goes with its majority.
        counts = Counter(labels[i] for i in idx)
        top = max(counts.values())
        by_label[min(lab for lab, c in counts.items() if c == top)].append(key)
    for keys in by_label.values():
        if len(keys) < 2:
            for key in keys:
                side[key] = "train"
            continue
        if not any(side[k] == "train" for k in keys):
            side[max(keys, key=lambda k: (position[k], k))] = "train"
        if valid_pct > 0 and not any(side[k] == "valid" for k in keys):
            n_train = sum(side[k] == "train" for k in keys)
            spare = [
                k
                for k in keys
                if side[k] == "test" or (side[k] == "train" and n_train > 1)
            ]
            low, high = test_pct, test_pct + valid_pct
            if spare:
                nearest = min(
                    spare, key=lambda k: (max(low - position[k], position[k] - high), k)
                )
                side[nearest] = "valid"
    return [side[key] for key in group_keys]


def split_items(
    keys: Sequence[str],
    phashes: Sequence[str | None],
    labels: Sequence[str],
    *,
    valid_pct: float,
    seed: int,
    test_pct: float = 0.0,
    max_distance: int = 6,
) -> list[str]:
    """split_groups for items without stored groups (a folder, say).

    Images whose perceptual hashes differ by at most max_distance bits are grouped
    (transitively), each group keyed by its smallest key. The result depends only
    on the (key, phash, label) triples, not on their order.
    """
    n = len(keys)
    if not (len(phashes) == len(labels) == n):
        raise ValueError("keys, phashes and labels must have the same length")
    if len(set(keys)) != n:
        raise ValueError("keys must be unique")
    group_of = [""] * n
    for members in _near_duplicate_groups(phashes, max_distance):
        first = min(keys[i] for i in members)
        for i in members:
            group_of[i] = first
    return split_groups(
        group_of, labels, valid_pct=valid_pct, seed=seed, test_pct=test_pct
    )


def _unit(seed: int, key: str) -> float:
    """A number in [0, 1) fixed by (seed, key)."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _near_duplicate_groups(
    phashes: Sequence[str | None], max_distance: int
) -> list[list[int]]:
    """Union-find over all pairs within max_distance (same-length hashes only)."""
    parent = list(range(len(phashes)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    by_length: dict[int, list[int]] = defaultdict(list)
    for i, h in enumerate(phashes):
        if h:
            by_length[len(h)].append(i)
    for indexes in by_length.values():
        packed = np.array(
            [np.frombuffer(_hex_bytes(phashes[i]), np.uint8) for i in indexes]
        )
        for row in range(len(indexes) - 1):
            rest = packed[row + 1 :]
            distance = _POPCOUNT[packed[row] ^ rest].sum(axis=1, dtype=np.int32)
            for offset in np.flatnonzero(distance <= max_distance):
                a, b = find(indexes[row]), find(indexes[row + 1 + offset])
                if a != b:
                    parent[max(a, b)] = min(a, b)

    members: dict[int, list[int]] = defaultdict(list)
    for i in range(len(phashes)):
        members[find(i)].append(i)
    return list(members.values())


def _hex_bytes(value: str) -> bytes:
    text = value.lower()
    if len(text) % 2:
        text = "0" + text
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"phash is not hexadecimal: {value!r}") from None
