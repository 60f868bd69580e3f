"""Reproducible train/valid split that keeps near-duplicates on one side."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np

# Set bits per byte value, for Hamming distances between packed hashes.
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def split_items(
    keys: Sequence[str],
    phashes: Sequence[str | None],
    labels: Sequence[str],
    *,
    valid_pct: float,
    seed: int,
    max_distance: int = 6,
) -> list[str]:
    """Return "train" or "valid" for each key, in the order given.

    Images whose perceptual hashes differ by at most max_distance bits are grouped
    (transitively) and always land on the same side, so a near-copy of a training
    image never scores as validation. Groups are shuffled per label with a
    generator seeded by (seed, label) and filled into valid up to
    round(valid_pct * label count); a label with two or more groups always gets at
    least one valid group and keeps at least one training group. The result
    depends only on the (key, phash, label) triples, not on their order.
    """
    n = len(keys)
    if not (len(phashes) == len(labels) == n):
        raise ValueError("keys, phashes and labels must have the same length")
    if len(set(keys)) != n:
        raise ValueError("keys must be unique")
    if not 0.0 <= valid_pct < 1.0:
        raise ValueError(f"valid_pct must be in [0, 1), got {valid_pct}")

    groups = _near_duplicate_groups(phashes, max_distance)
    by_label: dict[str, list[list[int]]] = defaultdict(list)
    for members in groups:
        # A group of mixed labels (a likely mislabel) goes with its majority.
        counts = Counter(labels[i] for i in members)
        top = max(counts.values())
        label = min(lab for lab, c in counts.items() if c == top)
        by_label[label].append(sorted(members, key=lambda i: keys[i]))

    sides = ["train"] * n
    for label in sorted(by_label):
        label_groups = sorted(by_label[label], key=lambda g: keys[g[0]])
        random.Random(f"{seed}:{label}").shuffle(label_groups)
        chosen = _choose_valid(label_groups, valid_pct)
        for group in chosen:
            for i in group:
                sides[i] = "valid"
    return sides


def _choose_valid(groups: list[list[int]], valid_pct: float) -> list[list[int]]:
    if valid_pct == 0 or len(groups) < 2:
        return []
    total = sum(len(g) for g in groups)
    target = max(1, round(valid_pct * total))
    chosen: list[list[int]] = []
    taken = 0
    for group in groups:
        if not chosen or taken + len(group) <= target:
            chosen.append(group)
            taken += len(group)
    if len(chosen) == len(groups):
        # Keep at least one group to train on: give back the smallest.
        smallest = min(chosen, key=len)
        chosen.remove(smallest)
    return chosen


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
