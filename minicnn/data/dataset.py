"""Dataset protocol and the two combinators every pipeline needs: Subset and ConcatDataset.

A dataset is anything with `__len__` and `__getitem__(i) -> (image, label)`. Datasets that
know their labels without decoding images expose `targets` (an int64 array), which makes
stratified splits and class weights instant.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


class Dataset:
    """Base class: subclasses implement `__len__` and `__getitem__`; `targets` is optional."""

    def __len__(self) -> int:
        raise NotImplementedError

    def __getitem__(self, index: int) -> tuple[Any, int]:
        raise NotImplementedError


def check_index(index: int, n: int, who: str) -> int:
    """Accept Python/NumPy ints in [-n, n) and return the non-negative index."""
    if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
        raise TypeError(f"{who}: index must be an int, got {type(index).__name__}")
    if not -n <= index < n:
        raise IndexError(f"{who}: index {index} out of range for {n} samples")
    return int(index) % n


def get_targets(dataset: Any) -> np.ndarray:
    """The labels of every sample (N,) int64; reads `dataset.targets` or, failing that, every item."""
    targets = getattr(dataset, "targets", None)
    if targets is None:  # slow path: decodes every sample
        targets = [dataset[i][1] for i in range(len(dataset))]
    return np.asarray(targets, dtype=np.int64).reshape(-1)


class Subset(Dataset):
    """The samples of `dataset` at `indices`, with an optional extra `transform` on the image.

    The extra transform lets a train split augment while its validation sibling does not.
    """

    def __init__(self, dataset: Any, indices: Sequence[int] | np.ndarray, transform: Callable | None = None):
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = len(dataset)
        if self.indices.size and (self.indices.min() < -n or self.indices.max() >= n):
            raise IndexError(f"Subset: indices must lie in [0, {n}), got range "
                             f"[{self.indices.min()}, {self.indices.max()}]")
        self.indices %= max(n, 1)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image, label = self.dataset[int(self.indices[check_index(index, len(self), "Subset")])]
        if self.transform is not None:
            image = self.transform(image)
        return image, label

    @property
    def targets(self) -> np.ndarray:
        return get_targets(self.dataset)[self.indices]

    @property
    def classes(self) -> list | None:
        return getattr(self.dataset, "classes", None)


class ConcatDataset(Dataset):
    """Several datasets one after another (e.g. the official train and val splits)."""

    def __init__(self, datasets: Sequence[Any]):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: needs at least one dataset")
        self.offsets = np.cumsum([0] + [len(d) for d in self.datasets])  # (D+1,)

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitem__(self, index: int) -> tuple[Any, int]:
        index = check_index(index, len(self), "ConcatDataset")
        d = int(np.searchsorted(self.offsets, index, side="right")) - 1
        return self.datasets[d][index - int(self.offsets[d])]

    @property
    def targets(self) -> np.ndarray:
        return np.concatenate([get_targets(d) for d in self.datasets])

    @property
    def classes(self) -> list | None:
        return getattr(self.datasets[0], "classes", None)
