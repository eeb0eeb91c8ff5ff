"""Convolution's CPU algorithms: the same maths as the reference `W @ im2col(x)` in
`minicnn.ops.conv`, arranged so the column matrix stays in cache and BLAS gets big products.

- "pointwise" (1x1, stride 1, unpadded): the input already is the column matrix.
- "wide" (stride 1, the common 3x3 'same' case): the wide-row layout of `wide.py`, per sample
  and per band of positions; each tap's copy is one long contiguous slice.
- "strided" (any geometry): strided windows copied into a reused column buffer per chunk of
  samples.
- "winograd" (3x3, stride 1, undilated, ungrouped): F(2x2, 3x3) in `winograd.py`, 2.25x fewer
  multiplies in 16 batched products, paid for with transform passes; wins when the channel
  counts are large enough (the rule's threshold, measured).
`choose_conv_algorithm` is the one rule that picks among them. The weight is the left
operand, so the matmul writes straight into the NCHW output. Backward rebuilds the columns
from the saved input instead of keeping them (a 3x3 conv's columns are 9x the input).
Each function takes the `Conv2dFn` whose `setup` resolved the geometry (`fn.x`, `fn.w`,
`fn.k`, `fn.pads`, `fn.out_hw`, `fn.stride`, `fn.dilation`, `fn.groups`).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..ops.im2col import col2im_add, pad_hw, windows
from . import tuning, winograd
from .threads import parallel_range
from .wide import WideLayout
from .workspace import scratch

ALGORITHMS = ("pointwise", "wide", "strided", "winograd")


def choose_conv_algorithm(kernel: tuple, stride: tuple, pads: tuple, in_channels: int, out_hw: tuple,
                          out_channels: int = 0, dilation: tuple = (1, 1), groups: int = 1) -> str:
    """The rule: 1x1/stride 1/unpadded -> "pointwise"; 3x3/stride 1/undilated/ungrouped with
    in*out channels >= `tuning.WINOGRAD_MIN_CO` -> "winograd"; stride 1 with at least
    `tuning.WIDE_MIN_WORK` column entries per sample -> "wide" (below that, per-sample calls
    cost more than they save); anything else -> "strided"."""
    if kernel == (1, 1) and stride == (1, 1) and not any(pads):
        return "pointwise"
    wide_channels = in_channels * out_channels >= tuning.WINOGRAD_MIN_CO
    if wide_channels and winograd.applicable(kernel, stride, dilation, groups, pads):
        return "winograd"
    if stride == (1, 1) and in_channels * kernel[0] * kernel[1] * out_hw[0] * out_hw[1] >= tuning.WIDE_MIN_WORK:
        return "wide"
    return "strided"


def applicable(algorithm: str, kernel: tuple, stride: tuple, pads: tuple, dilation: tuple = (1, 1),
               groups: int = 1) -> bool:
    """Whether `algorithm` can compute this geometry ("strided" always can)."""
    if algorithm == "winograd":
        return winograd.applicable(kernel, stride, dilation, groups, pads)
    if algorithm == "pointwise":
        return kernel == (1, 1) and stride == (1, 1) and not any(pads)
    if algorithm == "wide":
        return stride == (1, 1)
    return algorithm == "strided"


def chunks(n: int, per_item_bytes: int, budget: int) -> list[tuple[int, int]]:
    """Split range(n) into [start, stop) pieces of about `budget` bytes each (at least 1 item)."""
    step = max(1, budget // max(per_item_bytes, 1))
    return [(i, min(i + step, n)) for i in range(0, n, step)]


def _shapes(fn: Any) -> tuple:
    """(N, C, O, G, taps) of this call."""
    n, c = fn.x.shape[:2]
    return n, c, fn.w.shape[0], fn.groups, fn.k[0] * fn.k[1]


def _add_bias(y: Any, b: Any) -> Any:
    if b is not None:
        y += b.reshape(1, -1, 1, 1)
    return y


def forward_pointwise(fn: Any, x: Any, wg: Any, b: Any = None) -> Any:
    """y = W @ x per sample: (G, O/G, C/G) @ (N, G, C/G, H*W)."""
    n, o = x.shape[0], fn.w.shape[0]
    oh, ow = fn.out_hw
    return _add_bias(np.matmul(wg, x.reshape(n, fn.groups, -1, oh * ow)).reshape(n, o, oh, ow), b)


# ---- 1x1 --------------------------------------------------------------------------------
def backward_pointwise(fn: Any, gy: Any, need_x: bool, need_w: bool) -> tuple:
    n, c, o, g, _ = _shapes(fn)
    x4 = fn.x.reshape(n, g, c // g, -1)              # (N, G, C/G, H*W)
    gy4 = gy.reshape(n, g, o // g, -1)                 # (N, G, O/G, H*W)
    # gw^T = x @ gy^T: with the small channel count as the output's columns BLAS runs ~2x faster
    gw: Any = np.matmul(x4, gy4.swapaxes(2, 3)).sum(axis=0).swapaxes(1, 2) if need_w else None  # (G, O/G, C/G)
    gx = None
    if need_x:
        gx = np.matmul(fn.w.reshape(g, o // g, c // g).swapaxes(1, 2), gy4).reshape(fn.x.shape)
    return gx, gw


# ---- stride 1: wide rows ----------------------------------------------------------------
def _wide(fn: Any) -> tuple:
    lay = WideLayout(fn.x.shape, fn.k, fn.dilation, fn.pads, fn.out_hw)
    n, c, o, g, taps = _shapes(fn)
    return lay, lay.bands(c * taps * fn.x.itemsize, tuning.BAND_BYTES)

def _samples(fn: Any, run: Any, n: int, work: int) -> None:
    if tuning.THREAD_SAMPLES:
        parallel_range(run, n, work)
    else:
        run(0, n)

def forward_wide(fn: Any, x: Any, wg: Any, b: Any = None) -> Any:
    lay, bands = _wide(fn)
    n, c, o, g, taps = _shapes(fn)
    y = np.empty((n, o) + fn.out_hw, dtype=x.dtype)
    band = max(p1 - p0 for p0, p1 in bands)

    def run(a: int, z: int) -> None:
        flat = lay.new_plane_buffer(np, c, x.dtype)    # (C, Hq*Wp)
        cols = np.empty((c, taps, band), dtype=x.dtype)
        yw = np.empty((g, o // g, lay.span), dtype=x.dtype)
        for i in range(a, z):
            lay.pad_into(x[i], flat)
            for p0, p1 in bands:
                cv = lay.fill_taps(flat, cols[:, :, :p1 - p0], p0, p1)  # (C, T, band)
                np.matmul(wg, cv.reshape(g, -1, p1 - p0), out=yw[:, :, p0:p1])
            if b is None:
                y[i] = lay.crop(yw.reshape(o, -1))
            else:  # the bias rides on the crop copy instead of costing its own pass over y
                np.add(lay.crop(yw.reshape(o, -1)), b.reshape(o, 1, 1), out=y[i])
    _samples(fn, run, n, y.size * taps)
    return y

def backward_wide(fn: Any, gy: Any, need_x: bool, need_w: bool) -> tuple:
    """gw = sum over bands of gy @ columns^T; gx = a "full" conv of gy with the transposed
    kernel (negated tap offsets), so both are matmuls over long-slice column matrices."""
    lay, bands = _wide(fn)
    n, c, o, g, taps = _shapes(fn)
    x, dt = fn.x, gy.dtype
    # (G, C/G, O/G*T): weight[o, c, t] regrouped so input channels are the rows
    wflip = fn.w.reshape(g, o // g, c // g, taps).transpose(0, 2, 1, 3).reshape(g, c // g, -1)
    gbands = lay.bands(o * taps * x.itemsize, tuning.BAND_BYTES, lay.h * lay.wp)
    gx: Any = np.empty_like(x) if need_x else None
    width = max(p1 - p0 for p0, p1 in bands + gbands)
    partial_gw: list = []

    def run(a: int, z: int) -> None:
        flat: Any = lay.new_plane_buffer(np, c, dt) if need_w else None
        gext = lay.new_grad_buffer(np, o, dt)          # (O, lead + Hq*Wp)
        cols = np.empty((max(c, o), taps, width), dtype=dt)
        rows: Any = np.empty((g, c // g, lay.h * lay.wp), dtype=dt) if need_x else None
        gwt: Any = np.zeros((g, c // g * taps, o // g), dtype=dt) if need_w else None  # gw transposed
        for i in range(a, z):
            gyw = lay.spread_grad(gy[i], gext)         # (O, oh*Wp)
            if need_w:  # gw^T += columns_band @ gy_band^T (this operand order is ~2x faster in BLAS)
                lay.pad_into(x[i], flat)
                for p0, p1 in bands:
                    cv = lay.fill_taps(flat, cols[:c, :, :p1 - p0], p0, p1)  # (C, T, band)
                    gwt += np.matmul(cv.reshape(g, -1, p1 - p0), gyw[:, p0:p1].reshape(g, o // g, -1).swapaxes(1, 2))
            if need_x:
                for p0, p1 in gbands:
                    cv = lay.fill_taps_flipped(gext, cols[:o, :, :p1 - p0], p0, p1)  # (O, T, band)
                    np.matmul(wflip, cv.reshape(g, -1, p1 - p0), out=rows[:, :, p0:p1])
                gx[i] = lay.crop_grad(rows.reshape(c, -1))
        if need_w:
            partial_gw.append(gwt)
    _samples(fn, run, n, gy.size * taps * 2)
    return gx, (sum(partial_gw[1:], partial_gw[0]).swapaxes(1, 2) if need_w else None)


# ---- any stride: strided windows ---------------------------------------------------------
def _chunks(fn: Any) -> list[tuple[int, int]]:
    n, c = fn.x.shape[:2]
    per = c * fn.k[0] * fn.k[1] * fn.out_hw[0] * fn.out_hw[1] * fn.x.itemsize
    return chunks(n, per, tuning.CHUNK_BYTES)

def _cols(fn: Any, xc: Any) -> Any:
    """Column matrix of a chunk, (nb, G, C/G*kh*kw, oh*ow), in the shared workspace."""
    nb, c, h, w = xc.shape
    (kh, kw), (oh, ow), g = fn.k, fn.out_hw, fn.groups
    t, b, left, r = fn.pads
    padbuf: Any = scratch("pad", (nb, c, h + t + b, w + left + r), xc.dtype, np) if any(fn.pads) else None
    cols = scratch("cols", (nb, c, kh, kw, oh, ow), xc.dtype, np)

    def fill(a: int, z: int) -> None:
        xpad = pad_hw(xc[a:z], fn.pads, out=padbuf[a:z]) if padbuf is not None else xc[a:z]
        np.copyto(cols[a:z], windows(xpad, fn.k, fn.stride, fn.dilation, oh, ow))
    parallel_range(fill, nb, cols.size)
    return cols.reshape(nb, g, c // g * kh * kw, oh * ow)  # (nb, G, C/G*kh*kw, oh*ow)

def forward_strided(fn: Any, x: Any, wg: Any, b: Any = None) -> Any:
    n, c, o, g, _ = _shapes(fn)
    oh, ow = fn.out_hw
    y = np.empty((n, o, oh, ow), dtype=x.dtype)
    y4 = y.reshape(n, g, o // g, oh * ow)              # (N, G, O/G, oh*ow)
    for n0, n1 in _chunks(fn):
        np.matmul(wg, _cols(fn, x[n0:n1]), out=y4[n0:n1])
    return _add_bias(y, b)

def backward_strided(fn: Any, gy: Any, need_x: bool, need_w: bool) -> tuple:
    x, w = fn.x, fn.w
    n, c, o, g, _ = _shapes(fn)
    _, _, h, wd = x.shape
    (kh, kw), (oh, ow) = fn.k, fn.out_hw
    gy4 = gy.reshape(n, g, o // g, oh * ow)            # (N, G, O/G, oh*ow)
    wgt = w.reshape(g, o // g, -1).swapaxes(1, 2)      # (G, C/G*kh*kw, O/G)
    gw: Any = np.zeros((g, o // g, wgt.shape[1]), dtype=w.dtype) if need_w else None
    gx: Any = np.empty_like(x) if need_x else None
    t, b, left, r = fn.pads
    for n0, n1 in _chunks(fn):
        nb = n1 - n0
        if need_w:
            cols = _cols(fn, x[n0:n1])
            # (nb, G, K, O/G) -> (G, O/G, K)
            gw += np.matmul(cols, gy4[n0:n1].swapaxes(2, 3)).sum(axis=0).swapaxes(1, 2)
        if not need_x:
            continue
        gcols = scratch("cols", (nb, g, wgt.shape[1], oh * ow), x.dtype, np)
        np.matmul(wgt, gy4[n0:n1], out=gcols)          # (nb, G, C/G*kh*kw, oh*ow)
        gpad = scratch("gpad", (nb, c, h + t + b, wd + left + r), x.dtype, np) if any(fn.pads) else gx[n0:n1]
        gcols6 = gcols.reshape(nb, c, kh, kw, oh, ow)  # (nb, C, kh, kw, oh, ow)

        def scatter(a: int, z: int, gpad=gpad, gcols6=gcols6, n0=n0) -> None:
            gpad[a:z] = 0
            col2im_add(gcols6[a:z], gpad[a:z], fn.stride, fn.dilation)
            if any(fn.pads):
                gx[n0 + a:n0 + z] = gpad[a:z, :, t:t + h, left:left + wd]
        parallel_range(scatter, nb, gcols.size)
    return gx, gw


# ---- 3x3, stride 1: Winograd F(2x2, 3x3) --------------------------------------------------
def forward_winograd(fn: Any, x: Any, wg: Any, b: Any = None) -> Any:
    return winograd.conv(x, winograd.kernel_transform(fn.w), fn.pads, b)

def backward_winograd(fn: Any, gy: Any, need_x: bool, need_w: bool) -> tuple:
    gw = winograd.weight_grad(fn.x, gy, fn.pads) if need_w else None
    gx = winograd.input_grad(gy, fn.w, fn.x.shape, fn.pads) if need_x else None
    return gx, gw


FORWARD = {"pointwise": forward_pointwise, "wide": forward_wide, "strided": forward_strided,
           "winograd": forward_winograd}
BACKWARD = {"pointwise": backward_pointwise, "wide": backward_wide, "strided": backward_strided,
            "winograd": backward_winograd}
