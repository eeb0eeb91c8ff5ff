"""Max pooling's CPU body: one sample at a time (so temporaries stay in cache), samples split
over threads; 2x2/stride-2 windows tiling an even input take a pairwise path (max of column
pairs, then of row pairs, each over long strided runs of memory).
Each function takes the `MaxPool2dFn` whose `setup` resolved the geometry.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..ops.im2col import pad_hw, tap
from .threads import parallel_range


def tiles_pairwise(fn: Any) -> bool:
    """2x2 windows with stride 2 tiling an even-sized, unpadded input: the pairwise path."""
    h, w = fn.x_shape[2:]
    return fn.k == fn.stride == (2, 2) and not any(fn.pads) and h % 2 == 0 and w % 2 == 0


def forward_windows(fn: Any, x: Any) -> Any:
    """Any window: per sample, the running max over taps and the index of the winning tap."""
    oh, ow = fn.out_hw
    xpad = pad_hw(x, fn.pads, value=-np.inf)
    taps = fn.taps
    y = np.empty((x.shape[0], x.shape[1], oh, ow), dtype=x.dtype)
    fn.arg = np.empty(y.shape, dtype=np.int8 if len(taps) < 128 else np.int32)  # winning tap per output

    def run(a: int, z: int) -> None:
        better = np.empty(y.shape[1:], dtype=bool)
        for n in range(a, z):
            xn, yn, an = xpad[n:n + 1], y[n], fn.arg[n]
            yn[...] = tap(xn, taps[0][0], taps[0][1], fn.stride, (1, 1), oh, ow)[0]
            an[...] = 0
            for t, (i, j) in enumerate(taps[1:], start=1):
                xs = tap(xn, i, j, fn.stride, (1, 1), oh, ow)[0]
                np.greater(xs, yn, out=better)  # strict: on ties the earlier tap keeps the gradient
                np.copyto(an, t, where=better)
                np.maximum(yn, xs, out=yn)
    parallel_range(run, x.shape[0], xpad.size)
    fn.pad_shape = xpad.shape
    return y


def forward_pairs(fn: Any, x: Any) -> Any:
    """Max of column pairs, then of row pairs, each over long strided runs of memory;
    remembers which of each pair won (right column? lower row?) for the backward."""
    n, c, h, w = x.shape
    y = np.empty((n, c, h // 2, w // 2), dtype=x.dtype)
    fn.right = np.empty((n, c, h, w // 2), dtype=bool)    # x[.., 2j+1] > x[.., 2j]
    fn.lower = np.empty(y.shape, dtype=bool)              # row 2i+1's max > row 2i's

    def run(a: int, z: int) -> None:
        cols = np.empty((c * h, w // 2), dtype=x.dtype)     # one sample at a time: stays in cache
        for i in range(a, z):
            xs = x[i].reshape(-1, w // 2, 2)                 # (C*H, ow, 2): column pairs
            np.maximum(xs[..., 0], xs[..., 1], out=cols)     # (C*H, ow)
            np.greater(xs[..., 1], xs[..., 0], out=fn.right[i].reshape(-1, w // 2))  # ties: left wins
            rows = cols.reshape(-1, 2, w // 2)               # (C*oh, 2, ow): row pairs
            np.maximum(rows[:, 0], rows[:, 1], out=y[i].reshape(-1, w // 2))
            np.greater(rows[:, 1], rows[:, 0], out=fn.lower[i].reshape(-1, w // 2))  # ties: upper wins
    parallel_range(run, n, x.size)
    return y


def backward_pairs(fn: Any, gy: Any) -> Any:
    """Each output's gradient to the winner of its row pair, then of its column pair."""
    n, c, h, w = fn.x_shape
    gx = np.empty(fn.x_shape, dtype=gy.dtype)

    def run(a: int, z: int) -> None:
        grow = np.empty((c * h // 2, 2, w // 2), dtype=gy.dtype)  # gradient of each row's column max
        for i in range(a, z):                                 # one sample at a time: stays in cache
            g = gy[i].reshape(-1, w // 2)                     # (C*oh, ow)
            np.multiply(g, fn.lower[i].reshape(-1, w // 2), out=grow[:, 1])
            np.subtract(g, grow[:, 1], out=grow[:, 0])
            gxs = gx[i].reshape(-1, w // 2, 2)                # (C*H, ow, 2)
            g2 = grow.reshape(-1, w // 2)                     # (C*H, ow)
            np.multiply(g2, fn.right[i].reshape(-1, w // 2), out=gxs[..., 1])
            np.subtract(g2, gxs[..., 1], out=gxs[..., 0])
    parallel_range(run, n, gx.size)
    return gx


def backward_windows(fn: Any, gy: Any) -> Any:
    """Route each output's gradient to its winning tap, one sample at a time."""
    oh, ow = fn.out_hw
    (kh, kw), (sh, sw), (hp, wp) = fn.k, fn.stride, fn.pad_shape[2:]
    # windows that tile the padded input exactly: every pixel is written once, no zeroing or adding
    tiles = (kh, kw) == (sh, sw) and (oh * sh, ow * sw) == (hp, wp)
    padded = any(fn.pads)
    gx = np.empty(fn.x_shape, dtype=gy.dtype)

    def run(a: int, z: int) -> None:
        hit = np.empty(gy.shape[1:], dtype=bool)
        gpad: Any = np.empty((1,) + fn.pad_shape[1:], dtype=gy.dtype) if padded else None
        for n in range(a, z):
            g = gpad if padded else gx[n:n + 1]
            if not tiles:
                g[...] = 0
            for t, (i, j) in enumerate(fn.taps):
                np.equal(fn.arg[n], t, out=hit)
                dst = tap(g, i, j, fn.stride, (1, 1), oh, ow)[0]
                if tiles:
                    np.multiply(gy[n], hit, out=dst)
                else:
                    dst += gy[n] * hit
            if padded:
                gx[n] = fn.crop(gpad)[0]
    parallel_range(run, gy.shape[0], gx.size)
    return gx
