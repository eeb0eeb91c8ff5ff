"""Turn a list of samples into one batch of NumPy arrays, images as float32 (N, C, H, W).

Image rule, per array field of 2 or 3 dimensions (PIL images become arrays first):
- layout: (H, W) -> (1, H, W); (C, H, W) with C in {1, 3, 4} kept; (H, W, C) with C in {1, 3, 4}
  -> (C, H, W). When both ends could be channels ((3, 4, 4), ...) integer arrays are read as HWC
  (the PIL/transform convention) and float arrays as CHW (ToArray's output). Float arrays with
  any other channel count are kept as (C, H, W); integer ones are refused.
- values: float arrays are kept (cast to float32); uint8 / 255; bool -> 0 or 1; uint16 and other
  non-negative integers up to 65535 by their bit depth: the smallest of 8, 10, 12, 14, 16 bits
  holding the sample's maximum (see minicnn.data.bitdepth), v / (2**bits - 1). Negative or larger
  integers are refused. Arrays of other ranks (feature vectors, volumes) are stacked as they are.
"""
from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from .bitdepth import detect_bits

CHANNELS = (1, 3, 4)


class CollateError(ValueError):
    """A batch could not be formed; `position` is the offending sample's place in the batch, if known."""

    def __init__(self, message: str, position: int | None = None):
        super().__init__(message)
        self.position = position


def _stack(values: list, position: int) -> np.ndarray:
    shapes = {np.shape(v) for v in values}
    if len(shapes) > 1:
        first = np.shape(values[0])
        odd = next(k for k, v in enumerate(values) if np.shape(v) != first)
        raise CollateError(f"collate: field {position} has differing shapes {sorted(shapes)[:4]} in one batch; "
                           "resize/crop images to one size (and pick grayscale=True/False for mixed folders)", odd)
    return np.stack(values)


def _layout(shape: tuple, integer: bool, position: int) -> str:
    """'HW', 'CHW' or 'HWC' for one sample's shape (see the module docstring)."""
    if len(shape) == 2:
        return "HW"
    first, last = shape[0] in CHANNELS, shape[2] in CHANNELS
    if first and last:
        return "HWC" if integer else "CHW"
    if last:
        return "HWC"
    if first or not integer:
        return "CHW"
    raise CollateError(f"collate: field {position} holds integer images of shape {shape}: neither (C, H, W) nor "
                       f"(H, W, C) with C in {CHANNELS}; convert them in a transform (e.g. ToArray)")


def images_to_nchw(batch: np.ndarray, position: int = 0) -> np.ndarray:
    """A stacked batch of images (N, H, W), (N, C, H, W) or (N, H, W, C) of any dtype -> float32 (N, C, H, W)."""
    integer = batch.dtype.kind in "uib"
    layout = _layout(batch.shape[1:], integer, position)
    if layout == "HW":
        batch = batch[:, None]  # (N, H, W) -> (N, 1, H, W)
    elif layout == "HWC":
        batch = batch.transpose(0, 3, 1, 2)  # (N, H, W, C) -> (N, C, H, W)
    if batch.dtype.kind == "f":
        return np.ascontiguousarray(batch, dtype=np.float32)
    if batch.dtype.kind not in "uib":
        raise CollateError(f"collate: field {position} has dtype {batch.dtype}; images must be numbers")
    out = np.empty(batch.shape, dtype=np.float32)
    if batch.dtype == np.uint8 or batch.dtype == np.bool_:
        scale = np.float32(1 / 255) if batch.dtype == np.uint8 else np.float32(1)
        return np.multiply(batch, scale, out=out)
    flat = batch.reshape(len(batch), -1)  # (N, C*H*W)
    lo, hi = flat.min(axis=1), flat.max(axis=1)
    for k in range(len(batch)):
        if lo[k] < 0 or hi[k] > 65535:
            raise CollateError(f"collate: field {position}: a {batch.dtype} image holds values in [{lo[k]}, {hi[k]}]; "
                               "integer images must be 0..65535 (scale them to floats in a transform)", k)
        np.multiply(batch[k], np.float32(1.0 / ((1 << detect_bits(int(hi[k]))) - 1)), out=out[k])
    return out


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
        return images_to_nchw(batch, position) if batch.ndim in (3, 4) else batch
    raise TypeError(f"collate: cannot batch field {position} of type {type(first).__name__}; pass collate_fn=")


def default_collate(samples: Sequence[Any]) -> Any:
    """[(image, label), ...] -> (images, labels): images float32 (N, C, H, W), integer labels int64 (N,).

    Image arrays and PIL images follow the rule in the module docstring."""
    if not samples:
        raise ValueError("collate: empty batch")
    if isinstance(samples[0], tuple):
        width = len(samples[0])
        return tuple(_collate_field([s[j] for s in samples], j) for j in range(width))
    return _collate_field(list(samples), 0)
