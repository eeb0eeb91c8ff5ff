"""Class-imbalance helpers: Keras-style class weights, oversampling, a weighted sampler."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .dataset import ConcatDataset, Subset, get_targets


def _as_targets(targets_or_dataset: Any) -> np.ndarray:
    if hasattr(targets_or_dataset, "__getitem__") and hasattr(targets_or_dataset, "__len__") \
            and not isinstance(targets_or_dataset, (np.ndarray, list, tuple)):
        return get_targets(targets_or_dataset)
    return np.asarray(targets_or_dataset, dtype=np.int64).reshape(-1)


def class_weights(targets: Any) -> dict[int, float]:
    """{class: n_total / (n_classes * n_class)} (Keras/sklearn 'balanced'); accepts labels or a dataset."""
    y = _as_targets(targets)
    if y.size == 0:
        raise ValueError("class_weights: no labels given")
    classes, counts = np.unique(y, return_counts=True)
    return {int(c): float(y.size / (len(classes) * n)) for c, n in zip(classes, counts)}


def oversample(dataset: Any, transform: Callable | None = None, seed: int | None = 0) -> ConcatDataset:
    """Pad every minority class up to the majority count with (optionally augmented) copies.

    Whole extra copies of a class come first, the remainder is a seeded random pick without
    replacement. `transform` is applied to the copies only, so they are augmented views
    rather than exact duplicates; the originals pass through unchanged.
    """
    y = get_targets(dataset)
    classes, counts = np.unique(y, return_counts=True)
    rng = np.random.default_rng(seed)
    extra = []
    for c, n in zip(classes, counts):
        members = np.flatnonzero(y == c)
        full, rest = divmod(int(counts.max() - n), int(n))
        extra.append(np.tile(members, full))
        extra.append(np.sort(rng.choice(members, size=rest, replace=False)))
    extra_idx = np.concatenate(extra).astype(np.int64)
    return ConcatDataset([dataset, Subset(dataset, extra_idx, transform=transform)])


class WeightedRandomSampler:
    """Draw `num_samples` indices per epoch with probability proportional to `weights` (N,).

    Pass it as `DataLoader(sampler=...)`; the loader supplies a generator seeded by
    (seed, epoch) so the draws are reproducible. `from_targets` weights each sample by
    1 / its class count, which gives every class the same expected share of each batch.
    """

    def __init__(self, weights: Any, num_samples: int | None = None, replacement: bool = True):
        w = np.asarray(weights, dtype=np.float64).reshape(-1)
        if w.size == 0 or np.any(w < 0) or not np.isfinite(w).all() or w.sum() <= 0:
            raise ValueError("WeightedRandomSampler: weights must be finite, >= 0 and not all zero")
        self.p = w / w.sum()
        self.num_samples = int(num_samples if num_samples is not None else w.size)
        self.replacement = replacement
        if not replacement and self.num_samples > np.count_nonzero(w):
            raise ValueError(f"WeightedRandomSampler: cannot draw {self.num_samples} samples without "
                             f"replacement from {np.count_nonzero(w)} non-zero weights")

    @classmethod
    def from_targets(cls, targets: Any, num_samples: int | None = None) -> WeightedRandomSampler:
        """Balanced sampler: each sample weighted by the inverse of its class frequency."""
        y = _as_targets(targets)
        _, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
        return cls(1.0 / counts[inverse], num_samples)

    def __len__(self) -> int:
        return self.num_samples

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """This epoch's indices (num_samples,) int64."""
        return rng.choice(self.p.size, size=self.num_samples, replace=self.replacement, p=self.p).astype(np.int64)
