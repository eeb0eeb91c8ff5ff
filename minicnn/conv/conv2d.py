"""2-D convolution (cross-correlation, like every framework) as im2col + one matmul per chunk.

Forward, per chunk of samples: pad -> im2col into a reused buffer -> y = W @ cols.
The chunk is sized so the column buffer stays in cache, and the matmul writes straight into
the NCHW output (weight on the left), so no transpose of the output is ever needed.
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
from .workspace import scratch

CHUNK_BYTES = 4 << 20  # target size of one chunk's column buffer (fits in L2/L3)


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
        xp = get_array_module(x)
        n, o, g = x.shape[0], w.shape[0], self.groups
        self.x, self.w, self.has_bias, self.k, self.out_hw = x, w, b is not None, k, (oh, ow)
        wg = w.reshape(g, o // g, -1)                      # (G, O/G, C/G*kh*kw)
        y = xp.empty((n, o, oh, ow), dtype=x.dtype)
        y4 = y.reshape(n, g, o // g, oh * ow)              # (N, G, O/G, oh*ow)
        for n0, n1 in self._chunks():
            xp.matmul(wg, self._cols(x[n0:n1]), out=y4[n0:n1])
        if b is not None:
            y += b.reshape(1, o, 1, 1)
        return y

    def _is_pointwise(self) -> bool:
        """A 1x1, stride-1, unpadded conv needs no im2col: the input already is the column matrix."""
        return self.k == (1, 1) and self.stride == (1, 1) and not any(self.pads)

    def _chunks(self) -> list[tuple[int, int]]:
        n, c = self.x.shape[:2]
        per = c * self.k[0] * self.k[1] * self.out_hw[0] * self.out_hw[1] * self.x.itemsize
        return chunks(n, per)

    def _cols(self, xc: Any) -> Any:
        """Column matrix of a chunk, (nb, G, C/G*kh*kw, oh*ow), in the shared workspace."""
        xp = get_array_module(xc)
        nb, c, h, w = xc.shape
        (kh, kw), (oh, ow), g = self.k, self.out_hw, self.groups
        if self._is_pointwise():
            return xc.reshape(nb, g, c // g, h * w)        # (nb, G, C/G, H*W), a view
        t, b, l, r = self.pads
        padbuf = scratch("pad", (nb, c, h + t + b, w + l + r), xc.dtype, xp) if any(self.pads) else None
        cols = scratch("cols", (nb, c, kh, kw, oh, ow), xc.dtype, xp)

        def fill(a: int, z: int) -> None:
            xpad = pad_hw(xc[a:z], self.pads, out=padbuf[a:z]) if padbuf is not None else xc[a:z]
            xp.copyto(cols[a:z], windows(xpad, self.k, self.stride, self.dilation, oh, ow))
        parallel_range(fill, nb, cols.size, xp)
        return cols.reshape(nb, g, c // g * kh * kw, oh * ow)  # (nb, G, C/G*kh*kw, oh*ow)

    def backward(self, gy):
        xp = get_array_module(gy)
        x, w, g = self.x, self.w, self.groups
        n, c, h, wd = x.shape
        o, (kh, kw), (oh, ow) = w.shape[0], self.k, self.out_hw
        gy4 = gy.reshape(n, g, o // g, oh * ow)            # (N, G, O/G, oh*ow)
        wgt = w.reshape(g, o // g, -1).swapaxes(1, 2)      # (G, C/G*kh*kw, O/G)
        gw = xp.zeros((g, o // g, wgt.shape[1]), dtype=w.dtype) if self.needs_grad[1] else None
        gx = xp.empty_like(x) if self.needs_grad[0] else None
        t, b, l, r = self.pads
        for n0, n1 in self._chunks():
            nb = n1 - n0
            if gw is not None:
                cols = self._cols(x[n0:n1])
                gw += xp.matmul(gy4[n0:n1], cols.swapaxes(2, 3)).sum(axis=0)  # (nb, G, O/G, K) -> (G, O/G, K)
            if gx is None:
                continue
            if self._is_pointwise():
                xp.matmul(wgt, gy4[n0:n1], out=gx[n0:n1].reshape(nb, g, c // g, h * wd))
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
        gb = gy.reshape(n, o, -1).sum(axis=2).sum(axis=0) if self.has_bias and self.needs_grad[2] else None
        gw = gw.reshape(w.shape) if gw is not None else None
        return (gx, gw, gb) if self.has_bias else (gx, gw)


def conv2d(x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Padding = 0, dilation: Any = 1,
           groups: int = 1) -> Tensor:
    """(N, C, H, W) * weight (O, C/groups, kh, kw) [+ bias (O,)] -> (N, O, oh, ow); PyTorch's F.conv2d."""
    fn = Conv2dFn(stride, padding, dilation, groups)
    return fn(x, weight) if bias is None else fn(x, weight, bias)
