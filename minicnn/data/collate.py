"""Turn a list of samples into one batch of NumPy arrays."""
from __future__ import annotations

import numbers
from typing import Any, Sequence

import numpy as np
from PIL import Image


def _stack(values: list, position: int) -> np.ndarray:
    shapes = {np.shape(v) for v in values}
    if len(shapes) > 1:
        raise ValueError(f"collate: field {position} has differing shapes {sorted(shapes)[:4]} in one batch; "
                         "resize/crop images to one size (and pick grayscale=True/False for mixed folders)")
    return np.stack(values)


def images_to_nchw(batch: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W) or (N, H, W, C) -> float32 (N, C, H, W) in [0, 1]."""
    if batch.ndim == 3:
        batch = batch[..., None]  # (N, H, W) -> (N, H, W, 1)
    n, h, w, c = batch.shape
    out = np.empty((n, c, h, w), dtype=np.float32)
    return np.multiply(batch.transpose(0, 3, 1, 2), np.float32(1 / 255), out=out)  # (N, C, H, W)


def _collate_field(values: list, position: int) -> Any:
    first = values[0]
    if isinstance(first, (bool, np.bool_)) or isinstance(first, numbers.Integral):
        return np.asarray(values, dtype=np.int64)
    if isinstance(first, numbers.Real):
        return np.asarray(values, dtype=np.float32)
    if isinstance(first, str):
        return list(values)
    if isinstance(first, Image.Image):
        values = [np.asarray(v) for v in values]
    if isinstance(values[0], np.ndarray):
        batch = _stack(values, position)
        # uint8 means untransformed HWC pixels: give the network NCHW floats like ToArray would
        return images_to_nchw(batch) if batch.dtype == np.uint8 and batch.ndim in (3, 4) else batch
    raise TypeError(f"collate: cannot batch field {position} of type {type(first).__name__}; pass collate_fn=")


def default_collate(samples: Sequence[Any]) -> Any:
    """[(image, label), ...] -> (images, labels): images float32 NCHW, integer labels int64 (N,).

    uint8 image arrays (HWC or HW) and PIL images are converted to float32 NCHW in [0, 1];
    float arrays are stacked as they are (already CHW from ToArray).
    """
    if not samples:
        raise ValueError("collate: empty batch")
    if isinstance(samples[0], tuple):
        width = len(samples[0])
        return tuple(_collate_field([s[j] for s in samples], j) for j in range(width))
    return _collate_field(list(samples), 0)
