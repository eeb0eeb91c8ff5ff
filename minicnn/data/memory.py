"""`InMemory`: load (and preprocess) every sample of a dataset once, then serve it from RAM.

For deterministic preprocessing that would otherwise run again every epoch (decoding large
JPEGs, CLAHE, lung cropping, resizing): wrap the preprocessed dataset in InMemory, then put
the random augmentation on top with WithTransform.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from .dataset import Dataset, check_index, get_targets


class InMemory(Dataset):
    """Every (image, label) of `base`, computed once at construction; `targets` (N,) int64.

    `target_transform` maps each label (e.g. to put the positive class at 1); `desc` labels the
    progress bar (None hides it).
    """

    def __init__(self, base: Any, desc: str | None = "loading", target_transform: Callable[[int], int] | None = None):
        self.items: list[tuple[Any, int]] = []
        for i in tqdm(range(len(base)), desc=desc, disable=desc is None, leave=False, mininterval=0.5):
            image, label = base[i]
            label = int(label) if target_transform is None else int(target_transform(int(label)))
            self.items.append((image, label))
        self.targets = np.array([t for _, t in self.items], dtype=np.int64) if self.items else get_targets(base)
        self.classes = getattr(base, "classes", None)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        return self.items[check_index(index, len(self), "InMemory")]
