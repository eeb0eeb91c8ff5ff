"""Loop references for every fast op: slow, readable, obviously correct. The tests compare the
fast ops against these, forward and backward, so read these first to see what an op computes.

They are CPU-only (NumPy loops): on GPU arrays they raise the seam's BackendError.
Padding is never materialised here: a tap that falls outside the input is simply skipped
(for a sum that is zero padding; for a max it is -inf padding).
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from ..autograd import Function, Tensor
from ..backend import Array
from .geometry import Padding, pair, window_geometry
from .pooling import adaptive_bins


def _geometry(x_shape: tuple, kernel: Any, stride: Any, padding: Padding, dilation: Any, who: str):
    k, s, d = pair(kernel, "kernel_size", who), pair(stride, "stride", who), pair(dilation, "dilation", who)
    pads, oh, ow = window_geometry(x_shape, k, s, padding, d, who)
    return k, s, d, pads, oh, ow


def window_taps(x_shape: tuple, k: tuple, s: tuple, d: tuple, pads: tuple, oy: int, ox: int) -> Iterator[tuple]:
    """(i, j, iy, ix) for every kernel tap of output position (oy, ox) that lands inside the input."""
    h, w = x_shape[2:]
    for i in range(k[0]):
        for j in range(k[1]):
            iy = oy * s[0] - pads[0] + i * d[0]
            ix = ox * s[1] - pads[2] + j * d[1]
            if 0 <= iy < h and 0 <= ix < w:
                yield i, j, iy, ix


# ---- im2col ------------------------------------------------------------------------------
def im2col_naive(x: np.ndarray, kernel_size: Any, stride: Any = 1, padding: Padding = 0,
                 dilation: Any = 1) -> np.ndarray:
    """(N, C, H, W) -> (N, C*kh*kw, oh*ow), one window per column, zeros where padded."""
    k, s, d, pads, oh, ow = _geometry(x.shape, kernel_size, stride, padding, dilation, "im2col_naive")
    n_, c_ = x.shape[:2]
    cols = np.zeros((n_, c_ * k[0] * k[1], oh * ow), dtype=x.dtype)
    for n in range(n_):
        for c in range(c_):
            for oy in range(oh):
                for ox in range(ow):
                    for i, j, iy, ix in window_taps(x.shape, k, s, d, pads, oy, ox):
                        cols[n, (c * k[0] + i) * k[1] + j, oy * ow + ox] = x[n, c, iy, ix]
    return cols


def col2im_naive(cols: np.ndarray, x_shape: tuple, kernel_size: Any, stride: Any = 1, padding: Padding = 0,
                 dilation: Any = 1) -> np.ndarray:
    """Adjoint of im2col: add every column entry back onto the pixel it came from."""
    k, s, d, pads, oh, ow = _geometry(tuple(x_shape), kernel_size, stride, padding, dilation, "col2im_naive")
    x = np.zeros(x_shape, dtype=cols.dtype)
    for n in range(x_shape[0]):
        for c in range(x_shape[1]):
            for oy in range(oh):
                for ox in range(ow):
                    for i, j, iy, ix in window_taps(x_shape, k, s, d, pads, oy, ox):
                        x[n, c, iy, ix] += cols[n, (c * k[0] + i) * k[1] + j, oy * ow + ox]
    return x


# ---- convolution -------------------------------------------------------------------------
class Conv2dNaiveFn(Function):
    """Direct 7-deep loop convolution; backward runs the same loops, accumulating the other way."""

    def __init__(self, stride: Any, padding: Padding, dilation: Any, groups: int):
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups

    def terms(self) -> Iterator[tuple]:
        """Every product of the convolution: (n, o, oy, ox, input channel, weight channel, i, j, iy, ix)."""
        n_, c_ = self.x.shape[:2]
        o_, cg = self.w.shape[:2]
        og = o_ // self.groups
        for n in range(n_):
            for o in range(o_):
                for oy in range(self.oh):
                    for ox in range(self.ow):
                        for cw in range(cg):
                            ci = (o // og) * cg + cw          # the input channel in o's group
                            for i, j, iy, ix in window_taps(self.x.shape, self.k, self.s, self.d, self.pads, oy, ox):
                                yield n, o, oy, ox, ci, cw, i, j, iy, ix

    def forward_cpu(self, x: Array, w: Array, b: Array | None = None) -> Array:
        if x.ndim == 4 and x.shape[1] != w.shape[1] * self.groups:
            raise ValueError(f"conv2d_naive: expected input with {w.shape[1] * self.groups} channels, "
                             f"got shape {x.shape}")
        self.x, self.w, self.has_bias = x, w, b is not None
        self.k, self.s, self.d, self.pads, self.oh, self.ow = _geometry(
            x.shape, w.shape[2:], self.stride, self.padding, self.dilation, "conv2d_naive")
        y = np.zeros((x.shape[0], w.shape[0], self.oh, self.ow), dtype=x.dtype)
        for n, o, oy, ox, ci, cw, i, j, iy, ix in self.terms():
            y[n, o, oy, ox] += x[n, ci, iy, ix] * w[o, cw, i, j]
        if b is not None:
            for o in range(w.shape[0]):
                y[:, o] += b[o]
        return y

    def backward_cpu(self, gy: Array) -> Any:
        gx, gw = np.zeros_like(self.x), np.zeros_like(self.w)
        for n, o, oy, ox, ci, cw, i, j, iy, ix in self.terms():
            gx[n, ci, iy, ix] += gy[n, o, oy, ox] * self.w[o, cw, i, j]
            gw[o, cw, i, j] += gy[n, o, oy, ox] * self.x[n, ci, iy, ix]
        if not self.has_bias:
            return gx, gw
        return gx, gw, gy.sum(axis=(0, 2, 3))


def conv2d_naive(x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Padding = 0, dilation: Any = 1,
                 groups: int = 1) -> Tensor:
    """Loop reference for conv2d (same arguments)."""
    fn = Conv2dNaiveFn(stride, padding, dilation, groups)
    return fn(x, weight) if bias is None else fn(x, weight, bias)


def depthwise_conv2d_naive(x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Padding = 0,
                           dilation: Any = 1) -> Tensor:
    """Loop reference for depthwise_conv2d: by definition a grouped conv with groups = C."""
    return conv2d_naive(x, weight, bias, stride, padding, dilation, groups=x.shape[1])


# ---- pooling -----------------------------------------------------------------------------
class _PoolNaiveFn(Function):
    def __init__(self, kernel_size: Any, stride: Any, padding: Padding, ceil_mode: bool = False):
        self.kernel_size, self.stride, self.padding, self.ceil_mode = kernel_size, stride, padding, ceil_mode

    def _setup(self, x: np.ndarray, who: str) -> None:
        stride = self.kernel_size if self.stride is None else self.stride
        self.x_shape = x.shape
        self.k, self.s, self.d, self.pads, self.oh, self.ow = _geometry(x.shape, self.kernel_size, stride,
                                                                       self.padding, 1, who)
        if self.ceil_mode:  # ceil, then drop a last window that would start past the input and left padding
            h, w = x.shape[2:]
            t, b, left, r = self.pads
            self.oh = -(-(h + t + b - self.k[0]) // self.s[0]) + 1
            self.ow = -(-(w + left + r - self.k[1]) // self.s[1]) + 1
            self.oh -= (self.oh - 1) * self.s[0] >= h + t
            self.ow -= (self.ow - 1) * self.s[1] >= w + left

    def count(self, oy: int, ox: int, taps: list) -> int:
        """Divisor of an average window: every tap inside input + given padding (count_include_pad),
        or the real pixels only; never the taps in ceil_mode's overhang."""
        if not getattr(self, "include", False):
            return len(taps)
        h, w = self.x_shape[2:]
        t, b, left, r = self.pads
        n = 0
        for i in range(self.k[0]):
            for j in range(self.k[1]):
                iy, ix = oy * self.s[0] - t + i, ox * self.s[1] - left + j
                n += -t <= iy < h + b and -left <= ix < w + r
        return n

    def positions(self) -> Iterator[tuple]:
        n_, c_ = self.x_shape[:2]
        for n in range(n_):
            for c in range(c_):
                for oy in range(self.oh):
                    for ox in range(self.ow):
                        yield n, c, oy, ox, list(window_taps(self.x_shape, self.k, self.s, self.d, self.pads, oy, ox))


class MaxPool2dNaiveFn(_PoolNaiveFn):
    def forward_cpu(self, x: Array) -> Array:
        self._setup(x, "max_pool2d_naive")
        y = np.zeros((x.shape[0], x.shape[1], self.oh, self.ow), dtype=x.dtype)
        self.argmax = {}
        for n, c, oy, ox, taps in self.positions():
            best: Any = None
            for _, _, iy, ix in taps:
                if best is None or x[n, c, iy, ix] > x[n, c, best[0], best[1]]:  # first maximum wins ties
                    best = (iy, ix)
            self.argmax[n, c, oy, ox] = best
            y[n, c, oy, ox] = x[n, c, best[0], best[1]]
        return y

    def backward_cpu(self, gy: Array) -> Any:
        gx = np.zeros(self.x_shape, dtype=gy.dtype)
        for (n, c, oy, ox), (iy, ix) in self.argmax.items():
            gx[n, c, iy, ix] += gy[n, c, oy, ox]
        return gx


class AvgPool2dNaiveFn(_PoolNaiveFn):
    def __init__(self, kernel_size: Any, stride: Any, padding: Padding, count_include_pad: bool | None,
                 ceil_mode: bool = False):
        super().__init__(kernel_size, stride, padding, ceil_mode)
        self.include = count_include_pad if count_include_pad is not None else not isinstance(padding, str)

    def forward_cpu(self, x: Array) -> Array:
        self._setup(x, "avg_pool2d_naive")
        y = np.zeros((x.shape[0], x.shape[1], self.oh, self.ow), dtype=x.dtype)
        for n, c, oy, ox, taps in self.positions():
            count = self.count(oy, ox, taps)
            y[n, c, oy, ox] = sum(x[n, c, iy, ix] for _, _, iy, ix in taps) / count
        return y

    def backward_cpu(self, gy: Array) -> Any:
        gx = np.zeros(self.x_shape, dtype=gy.dtype)
        for n, c, oy, ox, taps in self.positions():
            count = self.count(oy, ox, taps)
            for _, _, iy, ix in taps:
                gx[n, c, iy, ix] += gy[n, c, oy, ox] / count
        return gx


def max_pool2d_naive(x: Any, kernel_size: Any, stride: Any = None, padding: Padding = 0,
                     ceil_mode: bool = False) -> Tensor:
    """Loop reference for max_pool2d."""
    return MaxPool2dNaiveFn(kernel_size, stride, padding, ceil_mode)(x)


def avg_pool2d_naive(x: Any, kernel_size: Any, stride: Any = None, padding: Padding = 0,
                     count_include_pad: bool | None = None, ceil_mode: bool = False) -> Tensor:
    """Loop reference for avg_pool2d."""
    return AvgPool2dNaiveFn(kernel_size, stride, padding, count_include_pad, ceil_mode)(x)


class AdaptiveAvgPool2dNaiveFn(Function):
    def __init__(self, output_size: Any):
        self.out = pair(output_size, "output_size", "adaptive_avg_pool2d_naive")

    def bins(self) -> Iterator[tuple]:
        n_, c_, h, w = self.x_shape
        for n in range(n_):
            for c in range(c_):
                for oy, (y0, y1) in enumerate(adaptive_bins(h, self.out[0])):
                    for ox, (x0, x1) in enumerate(adaptive_bins(w, self.out[1])):
                        yield n, c, oy, ox, y0, y1, x0, x1

    def forward_cpu(self, x: Array) -> Array:
        self.x_shape = x.shape
        y = np.zeros(x.shape[:2] + self.out, dtype=x.dtype)
        for n, c, oy, ox, y0, y1, x0, x1 in self.bins():
            y[n, c, oy, ox] = x[n, c, y0:y1, x0:x1].mean()
        return y

    def backward_cpu(self, gy: Array) -> Any:
        gx = np.zeros(self.x_shape, dtype=gy.dtype)
        for n, c, oy, ox, y0, y1, x0, x1 in self.bins():
            gx[n, c, y0:y1, x0:x1] += gy[n, c, oy, ox] / ((y1 - y0) * (x1 - x0))
        return gx


def adaptive_avg_pool2d_naive(x: Any, output_size: Any) -> Tensor:
    """Loop reference for adaptive_avg_pool2d (int or pair output size)."""
    return AdaptiveAvgPool2dNaiveFn(output_size)(x)


class AdaptiveMaxPool2dNaiveFn(AdaptiveAvgPool2dNaiveFn):
    """Max over each adaptive bin; the gradient goes to the bin's first maximum (row-major)."""

    def forward_cpu(self, x: Array) -> Array:
        self.x_shape = x.shape
        y = np.zeros(x.shape[:2] + self.out, dtype=x.dtype)
        self.best = {}
        for n, c, oy, ox, y0, y1, x0, x1 in self.bins():
            win = x[n, c, y0:y1, x0:x1]
            by, bx = divmod(int(np.argmax(win)), x1 - x0)  # argmax: the first maximum
            self.best[n, c, oy, ox] = (y0 + by, x0 + bx)
            y[n, c, oy, ox] = win[by, bx]
        return y

    def backward_cpu(self, gy: Array) -> Any:
        gx = np.zeros(self.x_shape, dtype=gy.dtype)
        for (n, c, oy, ox), (iy, ix) in self.best.items():
            gx[n, c, iy, ix] += gy[n, c, oy, ox]
        return gx


def adaptive_max_pool2d_naive(x: Any, output_size: Any) -> Tensor:
    """Loop reference for adaptive_max_pool2d."""
    return AdaptiveMaxPool2dNaiveFn(output_size)(x)


# ---- batch norm --------------------------------------------------------------------------
def batch_norm_naive(x: Tensor, running_mean: Any = None, running_var: Any = None, weight: Any = None,
                     bias: Any = None, training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Batch norm written as a chain of autograd ops (its backward is derived by the engine,
    independently of the fused one); running stats updated channel by channel.

    As a reference it computes in float64 whatever the input's dtype (the result is cast back):
    a float32 chain would round the mean to float32, which alone costs |mean| / sigma * 6e-8
    of relative accuracy on large-mean data.
    """
    x = x if isinstance(x, Tensor) else Tensor(x)
    if x.dtype != np.float64:
        dt = x.dtype

        def up(a: Any) -> Any:
            return a.to(dtype=np.float64) if isinstance(a, Tensor) else a
        rm_, rv_ = (a.data if isinstance(a, Tensor) else a for a in (running_mean, running_var))
        rm64 = None if rm_ is None else rm_.astype(np.float64)
        rv64 = None if rv_ is None else rv_.astype(np.float64)
        y = batch_norm_naive(up(x), rm64, rv64, up(weight), up(bias), training, momentum, eps)
        if training and rm_ is not None:
            rm_[...], rv_[...] = rm64, rv64
        return y.to(dtype=dt)
    c = x.shape[1]
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, c) + (1,) * (x.ndim - 2)                  # broadcast a (C,) vector over axis 1
    if training:
        mean = x.mean(axis=axes, keepdims=True)
        var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)  # biased, for normalising
        if running_mean is not None:
            rm = running_mean.data if isinstance(running_mean, Tensor) else running_mean
            rv = running_var.data if isinstance(running_var, Tensor) else running_var
            for ch in range(c):
                vals = np.moveaxis(x.data, 1, 0)[ch].ravel()
                rm[ch] = (1 - momentum) * rm[ch] + momentum * vals.mean()
                rv[ch] = (1 - momentum) * rv[ch] + momentum * vals.var(ddof=1)  # unbiased
    else:
        rm = running_mean.data if isinstance(running_mean, Tensor) else running_mean
        rv = running_var.data if isinstance(running_var, Tensor) else running_var
        mean, var = Tensor(rm.reshape(shape)), Tensor(rv.reshape(shape))
    y = (x - mean) / (var + eps).sqrt()
    if weight is not None:
        y = y * weight.reshape(shape) + bias.reshape(shape)
    return y
