"""Argument checks, normalisation and output-size arithmetic shared by convolution and pooling.

Padding is always resolved to four ints (top, bottom, left, right) so that TensorFlow's
'same' (which pads one more at the bottom/right when the total is odd) fits the same code.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

Pair = tuple[int, int]
Pads = tuple[int, int, int, int]  # (top, bottom, left, right)
Padding = int | str | tuple


def pair(v: Any, name: str, who: str, minimum: int = 1) -> Pair:
    """An int or a 2-sequence as (h, w), each at least `minimum`."""
    if isinstance(v, (int,)) and not isinstance(v, bool):
        out = (v, v)
    elif isinstance(v, (tuple, list)) and len(v) == 2 and all(isinstance(u, int) for u in v):
        out = (int(v[0]), int(v[1]))
    else:
        raise TypeError(f"{who}: {name} must be an int or a pair of ints, got {v!r}")
    if min(out) < minimum:
        raise ValueError(f"{who}: {name} must be >= {minimum}, got {v!r}")
    return out


def check_float(who: str, **arrays: Any) -> None:
    """All arrays floating point and of one dtype (float32 with float64 would silently upcast)."""
    dtypes = {name: a.dtype for name, a in arrays.items() if a is not None}
    for name, dt in dtypes.items():
        if not np.issubdtype(np.dtype(str(dt)), np.floating):
            raise TypeError(f"{who}: {name} must be floating point, got dtype {dt}")
    if len(set(map(str, dtypes.values()))) > 1:
        raise TypeError(f"{who}: dtypes differ ({', '.join(f'{k} {v}' for k, v in dtypes.items())}); "
                        f"convert with .float() or .double()")


def same_padding(size: int, k: int, s: int, d: int) -> tuple[int, int]:
    """TensorFlow 'same': output = ceil(size / s); the odd extra pixel goes after (bottom/right)."""
    total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
    return total // 2, total - total // 2


def resolve_padding(padding: Padding, hw: Pair, kernel: Pair, stride: Pair, dilation: Pair, who: str) -> Pads:
    """int | (ph, pw) | ((top, bottom), (left, right)) | 'same' | 'valid' -> (top, bottom, left, right)."""
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            return (0, 0, 0, 0)
        if mode == "same":
            return (same_padding(hw[0], kernel[0], stride[0], dilation[0])
                    + same_padding(hw[1], kernel[1], stride[1], dilation[1]))
        raise ValueError(f"{who}: padding must be an int, a pair, 'same' or 'valid'; got {padding!r}")
    if isinstance(padding, (tuple, list)) and len(padding) == 2 and all(isinstance(p, (tuple, list)) for p in padding):
        pads = (*pair(tuple(padding[0]), "padding", who, 0), *pair(tuple(padding[1]), "padding", who, 0))
        return pads
    ph, pw = pair(padding, "padding", who, 0)
    return (ph, ph, pw, pw)


def out_size(size: int, k: int, s: int, d: int, before: int, after: int) -> int:
    """Number of window positions along one axis (PyTorch's floor formula)."""
    return (size + before + after - d * (k - 1) - 1) // s + 1


def check_4d(x_shape: tuple, who: str) -> None:
    """Refuse anything that is not (N, C, H, W), with a hint for a missing batch axis."""
    if len(x_shape) != 4:
        hint = " (a single image? add the batch axis with x[None])" if len(x_shape) == 3 else ""
        raise ValueError(f"{who}: expected a 4-D input (N, C, H, W), got shape {tuple(x_shape)}{hint}")


def window_geometry(x_shape: tuple, kernel: Pair, stride: Pair, padding: Padding, dilation: Pair,
                    who: str) -> tuple[Pads, int, int]:
    """Resolve padding and output size for a sliding window over (N, C, H, W); clear error if empty."""
    check_4d(x_shape, who)
    h, w = x_shape[2], x_shape[3]
    pads = resolve_padding(padding, (h, w), kernel, stride, dilation, who)
    oh = out_size(h, kernel[0], stride[0], dilation[0], pads[0], pads[1])
    ow = out_size(w, kernel[1], stride[1], dilation[1], pads[2], pads[3])
    if oh <= 0 or ow <= 0:
        eff = (dilation[0] * (kernel[0] - 1) + 1, dilation[1] * (kernel[1] - 1) + 1)
        padded = (h + pads[0] + pads[1], w + pads[2] + pads[3])
        raise ValueError(f"{who}: kernel {kernel} (dilated extent {eff}) is larger than the padded input "
                         f"{padded} (input shape {tuple(x_shape)}, padding {pads}): output size would be "
                         f"({oh}, {ow})")
    return pads, oh, ow


def ceil_out_size(size: int, k: int, s: int, before: int, after: int) -> int:
    """PyTorch's ceil_mode output size along one axis: ceil instead of floor, but the last window
    must start inside the input or the left/top padding (so it always holds a real value)."""
    out = -(-(size + before + after - k) // s) + 1
    if (out - 1) * s >= size + before:
        out -= 1
    return out


def ceil_mode_geometry(x_shape: tuple, kernel: Pair, stride: Pair, pads: Pads) -> tuple[Pads, int, int]:
    """Output size with ceil_mode, and the padding grown at the bottom/right so the last windows fit."""
    h, w = x_shape[2], x_shape[3]
    oh = ceil_out_size(h, kernel[0], stride[0], pads[0], pads[1])
    ow = ceil_out_size(w, kernel[1], stride[1], pads[2], pads[3])
    eh = max((oh - 1) * stride[0] + kernel[0] - (h + pads[0] + pads[1]), 0)
    ew = max((ow - 1) * stride[1] + kernel[1] - (w + pads[2] + pads[3]), 0)
    return (pads[0], pads[1] + eh, pads[2], pads[3] + ew), oh, ow
