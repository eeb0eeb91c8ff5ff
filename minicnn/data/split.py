"""Random and stratified splits of a dataset into Subsets (e.g. carving a validation set)."""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .dataset import Subset, get_targets


def _counts(lengths: Sequence[int | float], n: int) -> list[int]:
    """Split sizes from absolute counts, or from fractions summing to 1 (remainder to the first)."""
    if all(isinstance(x, (int, np.integer)) for x in lengths):
        counts = [int(x) for x in lengths]
    else:
        if any(x < 0 for x in lengths) or not math.isclose(sum(lengths), 1.0, abs_tol=1e-6):
            raise ValueError(f"random_split: fractions must be >= 0 and sum to 1, got {list(lengths)}")
        counts = [int(math.floor(n * f)) for f in lengths]
        for i in range(n - sum(counts)):  # hand out the rounding remainder round-robin
            counts[i % len(counts)] += 1
    if any(c < 0 for c in counts) or sum(counts) != n:
        raise ValueError(f"random_split: lengths {list(lengths)} must sum to the dataset size {n}")
    return counts


def random_split(dataset: Any, lengths: Sequence[int | float], seed: int | None = None) -> list[Subset]:
    """Shuffle the indices with `seed` and cut them into Subsets of the given sizes or fractions."""
    n = len(dataset)
    perm = np.random.default_rng(seed).permutation(n)
    bounds = np.cumsum([0] + _counts(lengths, n))
    return [Subset(dataset, np.sort(perm[a:b])) for a, b in zip(bounds[:-1], bounds[1:])]


def _allocate(class_sizes: np.ndarray, n_test: int) -> np.ndarray:
    """Per-class test counts proportional to class size, summing exactly to n_test."""
    exact = class_sizes * (n_test / class_sizes.sum())
    alloc = np.floor(exact).astype(np.int64)
    # largest-remainder rounding: the classes closest to the next integer get the spare samples
    order = np.argsort(-(exact - alloc), kind="stable")
    alloc[order[: n_test - alloc.sum()]] += 1
    return np.minimum(alloc, class_sizes)


def train_test_split(dataset: Any, test_size: float | int = 0.2, stratify: bool = True,
                     seed: int | None = 0) -> tuple[Subset, Subset]:
    """Split into (train, test) Subsets; stratified splits keep each class's share in both."""
    n = len(dataset)
    n_test = int(math.ceil(test_size * n)) if isinstance(test_size, float) else int(test_size)
    if not 0 < n_test < n:
        raise ValueError(f"train_test_split: test_size={test_size} gives {n_test} of {n} samples; "
                         "need at least one sample on each side")
    rng = np.random.default_rng(seed)
    if not stratify:
        perm = rng.permutation(n)
        return Subset(dataset, np.sort(perm[n_test:])), Subset(dataset, np.sort(perm[:n_test]))
    targets = get_targets(dataset)
    classes, class_sizes = np.unique(targets, return_counts=True)
    test_idx = []
    for c, k in zip(classes, _allocate(class_sizes, n_test)):
        members = np.flatnonzero(targets == c)
        test_idx.append(rng.permutation(members)[:k])
    test = np.sort(np.concatenate(test_idx))
    train = np.setdiff1d(np.arange(n), test)
    return Subset(dataset, train), Subset(dataset, test)
