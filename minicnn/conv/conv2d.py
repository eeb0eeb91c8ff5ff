"""2-D convolution (cross-correlation, like every framework) as im2col + matmul.

Three paths, same maths (y = W @ columns, the columns being every window of the input):
- 1x1, stride 1, no padding: the input already is the column matrix, one matmul per sample.
- stride 1 (the common 3x3 'same' case): the "wide row" layout of `wide.py`, per sample and
  per band of positions, so the column matrix stays in cache and each copy is a long slice.
- anything else: strided windows copied into a column buffer per chunk of samples.
The weight is the left operand, so the matmul writes straight into the NCHW output.
Backward rebuilds the columns from the saved input instead of keeping them: a 3x3 conv's
columns are 9x the input, far too much memory to hold for every layer of a network.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ..autograd import Function, Tensor
from ..backend import get_array_module
from .im2col import col2im_add, pad_hw, windows
from .parallel import parallel_range
from .shapes import Padding, pair, window_geometry
from .wide import WideLayout
from .workspace import scratch

CHUNK_BYTES = 4 << 20  # strided path: column buffer per chunk of samples
BAND_BYTES = 4 << 20   # wide path: column buffer per band of positions
WIDE_MIN_WORK = 1 << 16  # columns per sample below which batching samples (strided path) is faster
THREAD_SAMPLES = False  # wide path: split samples over threads (each calling BLAS) instead of letting BLAS thread


def check_float(who: str, **arrays: Any) -> None:
    """All arrays floating point and of one dtype (float32 with float64 would silently upcast)."""
    dtypes = {name: a.dtype for name, a in arrays.items() if a is not None}
    for name, dt in dtypes.items():
        if not np.issubdtype(np.dtype(str(dt)), np.floating):
            raise TypeError(f"{who}: {name} must be floating point, got dtype {dt}")
    if len(set(map(str, dtypes.values()))) > 1:
        raise TypeError(f"{who}: dtypes differ ({', '.join(f'{k} {v}' for k, v in dtypes.items())}); "
                        f"convert with .float() or .double()")


def chunks(n: int, per_item_bytes: int, budget: int = CHUNK_BYTES) -> list[tuple[int, int]]:
    """Split range(n) into [start, stop) pieces of about `budget` bytes each (at least 1 item)."""
    step = max(1, budget // max(per_item_bytes, 1))
    return [(i, min(i + step, n)) for i in range(0, n, step)]


class Conv2dFn(Function):
    """y = conv2d(x, w) + b with x (N, C, H, W), w (O, C/groups, kh, kw), b (O,)."""

    def __init__(self, stride: Any = 1, padding: Padding = 0, dilation: Any = 1, groups: int = 1,
                 who: str = "conv2d"):
        self.who = who
        self.stride = pair(stride, "stride", who)
        self.dilation = pair(dilation, "dilation", who)
        if not isinstance(groups, int) or groups < 1:
            raise ValueError(f"{who}: groups must be a positive int, got {groups!r}")
        self.padding, self.groups = padding, groups

    def _check(self, x: Any, w: Any, b: Optional[Any]) -> None:
        who, g = self.who, self.groups
        if w.ndim != 4:
            raise ValueError(f"{who}: weight must be 4-D (out, in/groups, kh, kw), got shape {w.shape}")
        if x.ndim == 4 and x.shape[1] != w.shape[1] * g:
            raise ValueError(f"{who}: expected input with {w.shape[1] * g} channels, got shape {x.shape}")
        if w.shape[0] % g:
            raise ValueError(f"{who}: out channels {w.shape[0]} not divisible by groups={g}")
        if b is not None and b.shape != (w.shape[0],):
            raise ValueError(f"{who}: bias must have shape ({w.shape[0]},), got {b.shape}")
        check_float(who, input=x, weight=w, bias=b)

    def forward(self, x, w, b=None):
        self._check(x, w, b)
        k = (w.shape[2], w.shape[3])
        self.pads, oh, ow = window_geometry(x.shape, k, self.stride, self.padding, self.dilation, self.who)
        n, o, g = x.shape[0], w.shape[0], self.groups
        self.x, self.w, self.has_bias, self.k, self.out_hw = x, w, b is not None, k, (oh, ow)
        wg = w.reshape(g, o // g, -1)                      # (G, O/G, C/G*kh*kw)
        if self._is_pointwise():
            y = get_array_module(x).matmul(wg, x.reshape(n, g, -1, oh * ow)).reshape(n, o, oh, ow)
        elif self._use_wide():
            y = self._forward_wide(x, wg)
        else:
            y = self._forward_strided(x, wg)
        if b is not None:
            y += b.reshape(1, o, 1, 1)
        return y

    def backward(self, gy):
        need_x, need_w = self.needs_grad[0], self.needs_grad[1]
        if self._is_pointwise():
            gx, gw = self._backward_pointwise(gy, need_x, need_w)
        elif self._use_wide():
            gx, gw = self._backward_wide(gy, need_x, need_w)
        else:
            gx, gw = self._backward_strided(gy, need_x, need_w)
        n, o = gy.shape[:2]
        gb = gy.reshape(n, o, -1).sum(axis=2).sum(axis=0) if self.has_bias and self.needs_grad[2] else None
        gw = gw.reshape(self.w.shape) if gw is not None else None
        return (gx, gw, gb) if self.has_bias else (gx, gw)

    def _is_pointwise(self) -> bool:
        """A 1x1, stride-1, unpadded conv needs no im2col: the input already is the column matrix."""
        return self.k == (1, 1) and self.stride == (1, 1) and not any(self.pads)

    def _use_wide(self) -> bool:
        """Wide rows for stride 1, unless a sample is so small that per-sample calls would dominate."""
        n, c, _, _, taps = self._shapes()
        return self.stride == (1, 1) and c * taps * self.out_hw[0] * self.out_hw[1] >= WIDE_MIN_WORK

    def _shapes(self) -> tuple:
        """(N, C, O, G, taps) of this call."""
        n, c = self.x.shape[:2]
        return n, c, self.w.shape[0], self.groups, self.k[0] * self.k[1]

    # ---- 1x1 --------------------------------------------------------------------------------
    def _backward_pointwise(self, gy, need_x, need_w):
        xp = get_array_module(gy)
        n, c, o, g, _ = self._shapes()
        x4 = self.x.reshape(n, g, c // g, -1)              # (N, G, C/G, H*W)
        gy4 = gy.reshape(n, g, o // g, -1)                 # (N, G, O/G, H*W)
        # gw^T = x @ gy^T: with the small channel count as the output's columns BLAS runs ~2x faster
        gw = xp.matmul(x4, gy4.swapaxes(2, 3)).sum(axis=0).swapaxes(1, 2) if need_w else None  # (G, O/G, C/G)
        gx = None
        if need_x:
            gx = xp.matmul(self.w.reshape(g, o // g, c // g).swapaxes(1, 2), gy4).reshape(self.x.shape)
        return gx, gw

    # ---- stride 1: wide rows ----------------------------------------------------------------
    def _wide(self) -> tuple:
        lay = WideLayout(self.x.shape, self.k, self.dilation, self.pads, self.out_hw)
        n, c, o, g, taps = self._shapes()
        return lay, lay.bands(c * taps * self.x.itemsize, BAND_BYTES)

    def _samples(self, run, n: int, work: int) -> None:
        if THREAD_SAMPLES:
            parallel_range(run, n, work, get_array_module(self.x))
        else:
            run(0, n)

    def _forward_wide(self, x, wg):
        xp = get_array_module(x)
        lay, bands = self._wide()
        n, c, o, g, taps = self._shapes()
        y = xp.empty((n, o) + self.out_hw, dtype=x.dtype)
        band = max(p1 - p0 for p0, p1 in bands)

        def run(a: int, z: int) -> None:
            flat = lay.new_plane_buffer(xp, c, x.dtype)    # (C, Hq*Wp)
            cols = xp.empty((c, taps, band), dtype=x.dtype)
            yw = xp.empty((g, o // g, lay.span), dtype=x.dtype)
            for i in range(a, z):
                lay.pad_into(x[i], flat)
                for p0, p1 in bands:
                    cv = lay.fill_taps(flat, cols[:, :, :p1 - p0], p0, p1)  # (C, T, band)
                    xp.matmul(wg, cv.reshape(g, -1, p1 - p0), out=yw[:, :, p0:p1])
                y[i] = lay.crop(yw.reshape(o, -1))
        self._samples(run, n, y.size * taps)
        return y

    def _backward_wide(self, gy, need_x, need_w):
        """gw = sum over bands of gy @ columns^T; gx = a "full" conv of gy with the transposed
        kernel (negated tap offsets), so both are matmuls over long-slice column matrices."""
        xp = get_array_module(gy)
        lay, bands = self._wide()
        n, c, o, g, taps = self._shapes()
        x, dt = self.x, gy.dtype
        # (G, C/G, O/G*T): weight[o, c, t] regrouped so input channels are the rows
        wflip = self.w.reshape(g, o // g, c // g, taps).transpose(0, 2, 1, 3).reshape(g, c // g, -1)
        gbands = lay.bands(o * taps * x.itemsize, BAND_BYTES, lay.h * lay.wp)
        gx = xp.empty_like(x) if need_x else None
        width = max(p1 - p0 for p0, p1 in bands + gbands)
        partial_gw: list = []

        def run(a: int, z: int) -> None:
            flat = lay.new_plane_buffer(xp, c, dt) if need_w else None
            gext = lay.new_grad_buffer(xp, o, dt)          # (O, lead + Hq*Wp)
            cols = xp.empty((max(c, o), taps, width), dtype=dt)
            rows = xp.empty((g, c // g, lay.h * lay.wp), dtype=dt) if need_x else None
            gwt = xp.zeros((g, c // g * taps, o // g), dtype=dt) if need_w else None  # gw transposed
            for i in range(a, z):
                gyw = lay.spread_grad(gy[i], gext)         # (O, oh*Wp)
                if need_w:  # gw^T += columns_band @ gy_band^T (this operand order is ~2x faster in BLAS)
                    lay.pad_into(x[i], flat)
                    for p0, p1 in bands:
                        cv = lay.fill_taps(flat, cols[:c, :, :p1 - p0], p0, p1)  # (C, T, band)
                        gwt += xp.matmul(cv.reshape(g, -1, p1 - p0), gyw[:, p0:p1].reshape(g, o // g, -1).swapaxes(1, 2))
                if need_x:
                    for p0, p1 in gbands:
                        cv = lay.fill_taps_flipped(gext, cols[:o, :, :p1 - p0], p0, p1)  # (O, T, band)
                        xp.matmul(wflip, cv.reshape(g, -1, p1 - p0), out=rows[:, :, p0:p1])
                    gx[i] = lay.crop_grad(rows.reshape(c, -1))
            if need_w:
                partial_gw.append(gwt)
        self._samples(run, n, gy.size * taps * 2)
        return gx, (sum(partial_gw[1:], partial_gw[0]).swapaxes(1, 2) if need_w else None)

    # ---- any stride: strided windows ---------------------------------------------------------
    def _chunks(self) -> list[tuple[int, int]]:
        n, c = self.x.shape[:2]
        per = c * self.k[0] * self.k[1] * self.out_hw[0] * self.out_hw[1] * self.x.itemsize
        return chunks(n, per)

    def _cols(self, xc: Any) -> Any:
        """Column matrix of a chunk, (nb, G, C/G*kh*kw, oh*ow), in the shared workspace."""
        xp = get_array_module(xc)
        nb, c, h, w = xc.shape
        (kh, kw), (oh, ow), g = self.k, self.out_hw, self.groups
        t, b, l, r = self.pads
        padbuf = scratch("pad", (nb, c, h + t + b, w + l + r), xc.dtype, xp) if any(self.pads) else None
        cols = scratch("cols", (nb, c, kh, kw, oh, ow), xc.dtype, xp)

        def fill(a: int, z: int) -> None:
            xpad = pad_hw(xc[a:z], self.pads, out=padbuf[a:z]) if padbuf is not None else xc[a:z]
            xp.copyto(cols[a:z], windows(xpad, self.k, self.stride, self.dilation, oh, ow))
        parallel_range(fill, nb, cols.size, xp)
        return cols.reshape(nb, g, c // g * kh * kw, oh * ow)  # (nb, G, C/G*kh*kw, oh*ow)

    def _forward_strided(self, x, wg):
        xp = get_array_module(x)
        n, c, o, g, _ = self._shapes()
        oh, ow = self.out_hw
        y = xp.empty((n, o, oh, ow), dtype=x.dtype)
        y4 = y.reshape(n, g, o // g, oh * ow)              # (N, G, O/G, oh*ow)
        for n0, n1 in self._chunks():
            xp.matmul(wg, self._cols(x[n0:n1]), out=y4[n0:n1])
        return y

    def _backward_strided(self, gy, need_x, need_w):
        xp = get_array_module(gy)
        x, w = self.x, self.w
        n, c, o, g, _ = self._shapes()
        _, _, h, wd = x.shape
        (kh, kw), (oh, ow) = self.k, self.out_hw
        gy4 = gy.reshape(n, g, o // g, oh * ow)            # (N, G, O/G, oh*ow)
        wgt = w.reshape(g, o // g, -1).swapaxes(1, 2)      # (G, C/G*kh*kw, O/G)
        gw = xp.zeros((g, o // g, wgt.shape[1]), dtype=w.dtype) if need_w else None
        gx = xp.empty_like(x) if need_x else None
        t, b, l, r = self.pads
        for n0, n1 in self._chunks():
            nb = n1 - n0
            if need_w:
                cols = self._cols(x[n0:n1])
                gw += xp.matmul(cols, gy4[n0:n1].swapaxes(2, 3)).sum(axis=0).swapaxes(1, 2)  # (nb, G, K, O/G) -> (G, O/G, K)
            if not need_x:
                continue
            gcols = scratch("cols", (nb, g, wgt.shape[1], oh * ow), x.dtype, xp)
            xp.matmul(wgt, gy4[n0:n1], out=gcols)          # (nb, G, C/G*kh*kw, oh*ow)
            gpad = scratch("gpad", (nb, c, h + t + b, wd + l + r), x.dtype, xp) if any(self.pads) else gx[n0:n1]
            gcols6 = gcols.reshape(nb, c, kh, kw, oh, ow)  # (nb, C, kh, kw, oh, ow)

            def scatter(a: int, z: int, gpad=gpad, gcols6=gcols6, n0=n0) -> None:
                gpad[a:z] = 0
                col2im_add(gcols6[a:z], gpad[a:z], self.stride, self.dilation)
                if any(self.pads):
                    gx[n0 + a:n0 + z] = gpad[a:z, :, t:t + h, l:l + wd]
            parallel_range(scatter, nb, gcols.size, xp)
        return gx, gw


def conv2d(x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Padding = 0, dilation: Any = 1,
           groups: int = 1) -> Tensor:
    """(N, C, H, W) * weight (O, C/groups, kh, kw) [+ bias (O,)] -> (N, O, oh, ow); PyTorch's F.conv2d."""
    fn = Conv2dFn(stride, padding, dilation, groups)
    return fn(x, weight) if bias is None else fn(x, weight, bias)
