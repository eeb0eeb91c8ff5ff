"""im2col / col2im: turn every sliding window into a column, and add columns back.

A convolution is then one matrix product: weight (O, C*kh*kw) @ cols (C*kh*kw, oh*ow).
The windows are read as a strided *view* of the padded input (no Python loop over pixels);
the only copy is the single `copyto` that lays the view out contiguously for BLAS.
"""
from __future__ import annotations

from typing import Any

from ..backend import get_array_module
from .geometry import Padding, Pads, Pair, pair, window_geometry


def pad_hw(x: Any, pads: Pads, value: float = 0.0, out: Any | None = None) -> Any:
    """Pad the last two axes of (N, C, H, W) by (top, bottom, left, right) with `value`."""
    t, b, left, r = pads
    if not any(pads) and out is None:
        return x
    xp = get_array_module(x)
    n, c, h, w = x.shape
    if out is None:
        out = xp.empty((n, c, h + t + b, w + left + r), dtype=x.dtype)
    # fill only the border, then copy the interior once
    out[:, :, :t] = value
    out[:, :, t + h:] = value
    out[:, :, t:t + h, :left] = value
    out[:, :, t:t + h, left + w:] = value
    out[:, :, t:t + h, left:left + w] = x
    return out


def windows(xpad: Any, kernel: Pair, stride: Pair, dilation: Pair, oh: int, ow: int) -> Any:
    """Strided view (N, C, kh, kw, oh, ow) of a padded input: view[n, c, i, j, y, x] is the
    pixel that kernel tap (i, j) sees at output position (y, x). No data is copied."""
    xp = get_array_module(xpad)
    sn, sc, sh, sw = xpad.strides
    n, c = xpad.shape[:2]
    return xp.lib.stride_tricks.as_strided(
        xpad, shape=(n, c, kernel[0], kernel[1], oh, ow),
        strides=(sn, sc, dilation[0] * sh, dilation[1] * sw, stride[0] * sh, stride[1] * sw))


def tap(xpad: Any, i: int, j: int, stride: Pair, dilation: Pair, oh: int, ow: int) -> Any:
    """The (N, C, oh, ow) slice of a padded array that kernel tap (i, j) touches."""
    y0, x0 = i * dilation[0], j * dilation[1]
    return xpad[:, :, y0:y0 + stride[0] * (oh - 1) + 1:stride[0], x0:x0 + stride[1] * (ow - 1) + 1:stride[1]]


def im2col(x: Any, kernel_size: Any, stride: Any = 1, padding: Padding = 0, dilation: Any = 1,
           out: Any | None = None) -> Any:
    """(N, C, H, W) -> cols (N, C*kh*kw, oh*ow); rows ordered (c, i, j) like a flattened weight."""
    who = "im2col"
    k, s, d = pair(kernel_size, "kernel_size", who), pair(stride, "stride", who), pair(dilation, "dilation", who)
    pads, oh, ow = window_geometry(x.shape, k, s, padding, d, who)
    xp = get_array_module(x)
    n, c = x.shape[:2]
    if out is None:
        out = xp.empty((n, c * k[0] * k[1], oh * ow), dtype=x.dtype)
    xp.copyto(out.reshape(n, c, k[0], k[1], oh, ow), windows(pad_hw(x, pads), k, s, d, oh, ow))
    return out


def col2im_add(cols6: Any, gpad: Any, stride: Pair, dilation: Pair) -> Any:
    """Add cols6 (N, C, kh, kw, oh, ow) back onto the padded gradient gpad (N, C, Hp, Wp).

    Overlapping windows must ADD (a pixel seen by several windows gets every contribution),
    so this loops over the kh*kw taps and adds one strided slice each, never assigns.
    """
    _, _, kh, kw, oh, ow = cols6.shape
    for i in range(kh):
        for j in range(kw):
            tap(gpad, i, j, stride, dilation, oh, ow)[...] += cols6[:, :, i, j]
    return gpad


def col2im(cols: Any, x_shape: tuple, kernel_size: Any, stride: Any = 1, padding: Padding = 0,
           dilation: Any = 1) -> Any:
    """cols (N, C*kh*kw, oh*ow) -> (N, C, H, W), summing overlaps: the adjoint of im2col."""
    who = "col2im"
    k, s, d = pair(kernel_size, "kernel_size", who), pair(stride, "stride", who), pair(dilation, "dilation", who)
    pads, oh, ow = window_geometry(tuple(x_shape), k, s, padding, d, who)
    n, c, h, w = x_shape
    if cols.shape != (n, c * k[0] * k[1], oh * ow):
        raise ValueError(f"col2im: cols has shape {cols.shape}, expected {(n, c * k[0] * k[1], oh * ow)} "
                         f"for input shape {tuple(x_shape)}")
    xp = get_array_module(cols)
    gpad = xp.zeros((n, c, h + pads[0] + pads[1], w + pads[2] + pads[3]), dtype=cols.dtype)
    col2im_add(cols.reshape(n, c, k[0], k[1], oh, ow), gpad, s, d)  # (N, C, kh, kw, oh, ow)
    return gpad[:, :, pads[0]:pads[0] + h, pads[2]:pads[2] + w]
