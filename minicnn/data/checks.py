"""Up-front checks that turn a wrong dataset into one `DataError` line naming the path.

    from minicnn.data import check_split_folder, check_labels
    check_split_folder("chest_xray", ("train", "test"))       # before building ImageFolders
    check_labels(train, num_classes=2, where="train split")    # before training a binary model
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .dataset import get_targets
from .errors import DataError


def describe(dataset: Any) -> str:
    """A short name for a dataset: its file or folder (and split) when it has one."""
    for attr in ("path", "root"):
        where = getattr(dataset, attr, None)
        if where is not None:
            split = getattr(dataset, "split", None)
            return f"{where}" + (f" (split {split!r})" if split else "")
    inner = getattr(dataset, "dataset", None)  # Subset
    if inner is not None:
        return f"a subset of {describe(inner)}"
    parts = getattr(dataset, "datasets", None)  # ConcatDataset
    if parts:
        return " + ".join(describe(d) for d in parts)
    return type(dataset).__name__


def check_split_folder(path: str | os.PathLike, splits: Sequence[str] = ("train", "test")) -> Path:
    """`path` must be a folder holding one sub-folder per split; returns it as a Path."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path} is not a folder")
    missing = [s for s in splits if not (path / s).is_dir()]
    if missing:
        have = sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
        gone = ", ".join(m + "/" for m in missing)
        raise DataError(f"{path} has no {gone} folder (it holds {have or 'no folders'}); "
                        f"expected {' and '.join(s + '/' for s in splits)}, each with one sub-folder per class")
    return path


def check_labels(dataset: Any, num_classes: int = 2, where: str | None = None,
                 class_names: Sequence[str] | None = None) -> np.ndarray:
    """Labels must be 0..num_classes-1 with every class present; returns the per-class counts.

    Catches an empty split, a 3-class file given to a binary model and a one-class split
    (which trains silently and leaves AUC undefined)."""
    where = where or describe(dataset)
    if len(dataset) == 0:
        raise DataError(f"{where} holds no samples")
    y = get_targets(dataset)
    values = np.unique(y)
    bad = values[(values < 0) | (values >= num_classes)]
    if bad.size:
        raise DataError(f"{where} has labels {values.tolist()[:10]}, but the model has {num_classes} classes "
                        f"(labels 0..{num_classes - 1}); is this a {len(values)}-class dataset?")
    counts = np.bincount(y, minlength=num_classes)
    absent = [int(c) for c in np.flatnonzero(counts == 0)]
    if absent:
        names = [class_names[c] if class_names else str(c) for c in absent]
        raise DataError(f"{where} has no samples of class {', '.join(names)} (counts per class: {counts.tolist()}); "
                        f"every class is needed to train and to measure accuracy, recall and AUC")
    return counts


def check_images(dataset: Any, limit: int | None = None) -> None:
    """Decode the files of an ImageFolder (the first `limit`, or all) so a bad one fails now, by path."""
    from .folder import load_image  # late: folder imports this package's errors
    samples = getattr(dataset, "samples", None)
    if samples is None:
        raise TypeError(f"check_images needs a dataset with .samples (an ImageFolder), got {type(dataset).__name__}")
    for path, _ in samples[:limit]:
        load_image(path, getattr(dataset, "grayscale", None), getattr(dataset, "bits", None))
