"""Depthwise convolution's CPU body: per sample and per block of channels, the kh*kw taps of
each channel are copied into a small (T, S) matrix that stays in cache, and a batched matmul
(one tiny product per channel) sums them with the channel's weights.

Stride 1 reads the taps from the wide-row layout (`wide.py`): each tap is one contiguous
slice of a padded plane, for oh*Wp positions of which the wrap-around ones are cropped; the
input gradient is the same kind of sum with the offsets negated (a "full" correlation of
the output gradient with the kernel). Other strides copy strided slices.
Each function takes the `DepthwiseConv2dFn` whose `setup` resolved the geometry.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..ops.im2col import tap
from . import tuning
from .threads import parallel_range
from .wide import WideLayout


def _layout(fn: Any) -> None:
    """The wide-row geometry (used for the padded planes at any stride), columns per channel's
    tap matrix and the channel block size, saved on fn for backward."""
    n, c, h, _ = fn.x_shape
    fn.lay = lay = WideLayout(fn.x_shape, fn.k, fn.dilation, fn.pads, fn.out_hw)
    fn.wide = fn.stride == (1, 1)
    fn.span = lay.span if fn.wide else fn.out_hw[0] * fn.out_hw[1]
    per_channel = len(fn.taps) * fn.m * max(fn.span, h * lay.wp) * fn.x.itemsize
    fn.cb = max(1, min(c, tuning.DEPTHWISE_BLOCK_BYTES // per_channel))  # channels per block


def _fill_taps(fn: Any, flat: Any, cols: Any) -> Any:
    """flat (cb, Hq*Wp) padded planes -> cols (cb, T, span): row t = what tap t reads at every output."""
    if fn.wide:
        return fn.lay.fill_taps(flat, cols, 0, fn.span)
    cb, (oh, ow) = flat.shape[0], fn.out_hw
    planes = flat.reshape(1, cb, fn.lay.hq, fn.lay.wp)     # (1, cb, Hq, Wp)
    for t, (i, j) in enumerate(fn.taps):
        cols[:, t].reshape(cb, oh, ow)[...] = tap(planes, i, j, fn.stride, fn.dilation, oh, ow)[0]
    return cols


def _blocks(fn: Any) -> list[tuple[int, int]]:
    c = fn.x_shape[1]
    return [(c0, min(c0 + fn.cb, c)) for c0 in range(0, c, fn.cb)]


def _samples(run: Any, n: int, work: int) -> None:
    if tuning.THREAD_SAMPLES:
        parallel_range(run, n, work)
    else:
        run(0, n)


def forward(fn: Any, x: Any, w: Any) -> Any:
    """(N, C, H, W), (C*m, 1, kh, kw) -> (N, C, m, oh, ow) without bias."""
    _layout(fn)
    n, c = x.shape[:2]
    m, lay, (oh, ow) = fn.m, fn.lay, fn.out_hw
    w3 = w.reshape(c, m, -1)                               # (C, m, T)
    y = np.empty((n, c, m, oh, ow), dtype=x.dtype)

    def run(a: int, z: int) -> None:
        cols = np.empty((fn.cb, len(fn.taps), fn.span), dtype=x.dtype)
        out = np.empty((fn.cb, m, fn.span), dtype=x.dtype)
        flat = lay.new_plane_buffer(np, c, x.dtype)         # (C, Hq*Wp), zero border
        for i in range(a, z):
            lay.pad_into(x[i], flat)
            for c0, c1 in _blocks(fn):
                k = c1 - c0
                np.matmul(w3[c0:c1], _fill_taps(fn, flat[c0:c1], cols[:k]), out=out[:k])
                y[i, c0:c1] = out[:k].reshape(k, m, oh, -1)[..., :ow]  # crop wrap-around columns
    _samples(run, n, y.size * len(fn.taps))
    return y


def backward(fn: Any, gy: Any, need_x: bool, need_w: bool) -> tuple:
    """(gx or None, gw or None) for the output gradient gy (N, C*m, oh, ow)."""
    n, c, h, wd = fn.x_shape
    (oh, ow), m, ntap, span, lay = fn.out_hw, fn.m, len(fn.taps), fn.span, fn.lay
    t0, _, l0, _ = fn.pads
    wp = lay.wp
    w3 = fn.w.reshape(c, m, ntap)                          # (C, m, T)
    gy5 = gy.reshape(n, c, m, oh, ow)                      # (N, C, m, oh, ow)
    gx: Any = np.empty(fn.x_shape, dtype=gy.dtype) if need_x else None
    partial_gw: list = []

    def run(a: int, z: int) -> None:
        cb = fn.cb
        cols = np.empty((cb, m * ntap, max(span, h * wp)), dtype=gy.dtype)
        # gy in the wide layout behind `lead` zeros; the wrap-around columns stay zero
        gext: Any = lay.new_grad_buffer(np, cb * m, gy.dtype).reshape(cb, m, -1) if fn.wide else None
        gxrows = np.empty((cb, 1, h * wp), dtype=gy.dtype)
        gbuf: Any = np.empty((cb, lay.hq, wp), dtype=gy.dtype) if not fn.wide else None
        gw: Any = np.zeros((c, m, ntap), dtype=gy.dtype) if need_w else None
        flat: Any = lay.new_plane_buffer(np, c, gy.dtype) if need_w else None
        for i in range(a, z):
            if flat is not None:
                lay.pad_into(fn.x[i], flat)
            for c0, c1 in _blocks(fn):
                k = c1 - c0
                if gext is not None:
                    gcol = lay.spread_grad(gy5[i, c0:c1], gext[:k])  # (k, m, oh*Wp)
                else:
                    gcol = gy5[i, c0:c1].reshape(k, m, span)
                if gw is not None:  # gw[c] += gy_c (m, S) @ taps_c (S, T)
                    taps = _fill_taps(fn, flat[c0:c1], cols[:k, :ntap, :span])
                    gw[c0:c1] += np.matmul(gcol, taps.swapaxes(1, 2))
                if gx is None:
                    continue
                if gext is not None:  # gx[q] = sum_t w_t * gy[q - offset_t], over the rows holding real pixels
                    rows = cols[:k, :, :h * wp].reshape(k, m, ntap, h * wp)
                    lay.fill_taps_flipped(gext[:k], rows, 0, h * wp)
                    np.matmul(w3[c0:c1].reshape(k, 1, m * ntap), rows.reshape(k, m * ntap, h * wp), out=gxrows[:k])
                    gx[i, c0:c1] = lay.crop_grad(gxrows[:k].reshape(k, -1))
                else:  # strided: add each tap's share back onto the pixels it read
                    gb = gbuf[:k]
                    gb[...] = 0
                    for t, (ti, tj) in enumerate(fn.taps):
                        share = np.einsum("kmp,km->kp", gcol, w3[c0:c1, :, t]).reshape(k, oh, ow)
                        tap(gb[None], ti, tj, fn.stride, fn.dilation, oh, ow)[0] += share
                    gx[i, c0:c1] = gb[:, t0:t0 + h, l0:l0 + wd]
        if gw is not None:
            partial_gw.append(gw)
    _samples(run, n, gy.size * ntap * 2)
    gw: Any = sum(partial_gw[1:], partial_gw[0]).reshape(fn.w.shape) if need_w else None
    return gx, gw
