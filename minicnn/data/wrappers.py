"""Dataset wrappers a training script needs around any source: a transform on top, a small balanced subset."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .dataset import Dataset, Subset, get_targets


class WithTransform(Dataset):
    """The items of `base` with `transform` applied to each image; `base` itself is left untouched.

    One base split can then serve augmented training and plain evaluation side by side.
    """

    def __init__(self, base: Any, transform: Callable[[Any], Any]):
        self.base, self.transform = base, transform
        self.targets = get_targets(base)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image, label = self.base[index]
        return self.transform(image), label


def balanced_subset(dataset: Any, n: int | None, seed: int = 0) -> Any:
    """At most n items, as many of each class as n allows (n // classes each), in dataset order.

    For smoke runs (`--limit`); n None or a dataset no larger than n is returned as it is.
    """
    if n is None or len(dataset) <= n:
        return dataset
    y = get_targets(dataset)
    rng = np.random.default_rng(seed)
    per_class = [rng.permutation(np.flatnonzero(y == c)) for c in np.unique(y)]
    keep = np.concatenate([idx[: n // len(per_class)] for idx in per_class])
    return Subset(dataset, np.sort(keep).tolist())
