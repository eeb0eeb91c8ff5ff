"""MedMNIST-style .npz datasets: `<split>_images` (N, H, W[, C]) uint8 and `<split>_labels` (N[, 1])."""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .dataset import Dataset, check_index
from .errors import DataError, open_npz, read_npz_array


class NpzDataset(Dataset):
    """One split of an .npz file, loaded into memory without pickle.

    Images come out HWC uint8 (a channel axis is added to (N, H, W) files) and labels as int.
    Other `<split>_*` arrays (e.g. `train_files` of source names) land in `self.extras`;
    arrays that could only be loaded with pickle (object dtype) are skipped.
    """

    def __init__(self, path: str | os.PathLike, split: str = "train", images_key: str | None = None,
                 labels_key: str | None = None, transform: Callable | None = None,
                 classes: Sequence[str] | None = None):
        self.path = Path(path)
        self.split = split
        self.transform = transform
        images_key = images_key or f"{split}_images"
        labels_key = labels_key or f"{split}_labels"
        who = "NpzDataset"
        with open_npz(self.path, who) as z:  # a damaged file raises DataError naming it
            images = read_npz_array(z, images_key, self.path, who)
            labels = read_npz_array(z, labels_key, self.path, who)
            self.extras = {}
            for key in z.files:
                if key.startswith(f"{split}_") and key not in (images_key, labels_key):
                    try:
                        self.extras[key[len(split) + 1:]] = z[key]
                    except ValueError:  # object array: would need pickle, which we never allow
                        pass
        self.images, self.targets = _check_arrays(images, labels, self.path, images_key, labels_key)
        self.images.flags.writeable = False  # items are views: stop transforms editing the dataset
        n_classes = int(self.targets.max()) + 1 if len(self.targets) else 0
        self.classes = list(classes) if classes is not None else [str(c) for c in range(n_classes)]

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        i = check_index(index, len(self), f"NpzDataset({self.path.name}, {self.split})")
        image = self.images[i]  # (H, W, C) read-only view
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.targets[i])


def _check_arrays(images: np.ndarray, labels: np.ndarray, path: Path, images_key: str,
                  labels_key: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate dtypes and shapes (DataError naming the file); return images (N, H, W, C), labels (N,) int64."""
    where = f"NpzDataset: {path}"
    if images.dtype != np.uint8:
        raise DataError(f"{where}: {images_key} must be uint8, got {images.dtype}")
    if images.ndim == 3:
        images = images[..., None]  # (N, H, W) -> (N, H, W, 1)
    if images.ndim != 4:
        raise DataError(f"{where}: {images_key} must have shape (N, H, W) or (N, H, W, C), got {images.shape}")
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]  # MedMNIST stores (N, 1)
    if labels.ndim != 1:
        raise DataError(f"{where}: {labels_key} must have shape (N,) or (N, 1), got {labels.shape} "
                         "(multi-label files are not supported)")
    if len(labels) != len(images):
        raise DataError(f"{where}: {len(images)} images in {images_key} but {len(labels)} labels in {labels_key}")
    if not np.issubdtype(labels.dtype, np.integer) or (labels.size and labels.min() < 0):
        raise DataError(f"{where}: {labels_key} must hold non-negative integers, got dtype {labels.dtype}"
                         + (f", min {labels.min()}" if labels.size else ""))
    return images, labels.astype(np.int64)
