"""Max, average, adaptive (average and max) and global-average pooling over (N, C, H, W).

Max and average pooling loop over the kh*kw window taps (never over pixels): each tap is a
strided slice of the padded input covering every output position at once. Max pooling has a
CPU body (`minicnn.cpu.pooling`: per sample over threads, and a pairwise 2x2 path); max and
average pooling run on our kernels on the GPU (`minicnn.ops.gpu_layers`); the rest is plain
array code for both backends.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd import Function, Tensor
from ..backend import Array, get_array_module
from .geometry import Padding, ceil_mode_geometry, check_4d, check_float, pair, window_geometry
from .im2col import pad_hw, tap


class _WindowPool(Function):
    """Shared set-up: kernel/stride/padding resolution, the PyTorch half-kernel padding rule and
    ceil_mode (PyTorch: ceil instead of floor in the output size, as long as the last window
    starts inside the input or the left padding; done as extra bottom/right padding that the
    average's divisor does not count)."""

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Padding = 0, who: str = "pool2d",
                 ceil_mode: bool = False):
        self.who = who
        self.k = pair(kernel_size, "kernel_size", who)
        self.stride = self.k if stride is None else pair(stride, "stride", who)
        self.padding, self.ceil_mode = padding, bool(ceil_mode)

    def setup(self, x: Array) -> None:
        """Check the input, resolve padding and output size."""
        check_float(self.who, input=x)
        self.pads, oh, ow = window_geometry(x.shape, self.k, self.stride, self.padding, (1, 1), self.who)
        t, b, left, r = self.given_pads = self.pads
        if not isinstance(self.padding, str) and (max(t, b) * 2 > self.k[0] or max(left, r) * 2 > self.k[1]):
            # a window of padding only would have no real pixel (max = -inf); PyTorch refuses too
            raise ValueError(f"{self.who}: padding {self.padding!r} must be at most half the kernel size {self.k}")
        if self.ceil_mode:
            self.pads, oh, ow = ceil_mode_geometry(x.shape, self.k, self.stride, self.pads)
        self.x_shape, self.out_hw = x.shape, (oh, ow)
        self.taps = [(i, j) for i in range(self.k[0]) for j in range(self.k[1])]

    def crop(self, gpad: Any) -> Any:
        """The (N, C, H, W) interior of a padded (N, C, Hp, Wp) gradient."""
        t, _, left, _ = self.pads
        h, w = self.x_shape[2:]
        return gpad[:, :, t:t + h, left:left + w]


class MaxPool2dFn(_WindowPool):
    """Window maximum; the gradient goes to the first maximal element of each window (PyTorch).

    Forward keeps, per output, the index of the winning tap; backward routes gy there.
    """

    # ---- GPU: maxpool.cu, value and first-argmax index (minicnn/ops/gpu_layers.py) ----------
    def forward_gpu(self, x: Array) -> Array:
        from . import gpu_layers
        return gpu_layers.maxpool_forward(self, x)

    def backward_gpu(self, gy: Array) -> Array:
        from . import gpu_layers
        return gpu_layers.maxpool_backward(self, gy)

    def forward_cpu(self, x: Array) -> Array:
        from ..cpu import pooling as kernels
        self.pairwise = kernels.tiles_pairwise(self)
        return kernels.forward_pairs(self, x) if self.pairwise else kernels.forward_windows(self, x)

    def backward_cpu(self, gy: Array) -> Array:
        from ..cpu import pooling as kernels
        return kernels.backward_pairs(self, gy) if self.pairwise else kernels.backward_windows(self, gy)


class AvgPool2dFn(_WindowPool):
    """Window mean. count_include_pad=True divides by kh*kw (PyTorch's default); False divides by
    the number of real pixels in the window (TensorFlow/Keras 'same' average pooling)."""

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Padding = 0,
                 count_include_pad: bool | None = None, who: str = "avg_pool2d", ceil_mode: bool = False):
        super().__init__(kernel_size, stride, padding, who, ceil_mode)
        # None: PyTorch's True for numeric padding, Keras' False for 'same'
        self.include = count_include_pad if count_include_pad is not None else not isinstance(padding, str)

    def _divisor(self, xp: Any, dtype: Any) -> Any:
        """(oh, ow) array (or scalar) to divide each window sum by."""
        if (self.include and self.pads == self.given_pads) or not any(self.pads):
            return dtype.type(self.k[0] * self.k[1])
        h, w = self.x_shape[2:]
        t, b, left, r = self.given_pads                  # ceil_mode's extra padding never counts
        oh, ow = self.out_hw

        def real(n_out: int, size: int, k: int, s: int, before: int, after: int) -> np.ndarray:
            start = np.arange(n_out) * s - before        # first input row of each window
            if self.include:                             # the given padding counts, the overhang not
                return np.minimum(start + k, size + after) - start
            return np.minimum(start + k, size) - np.maximum(start, 0)

        rows = real(oh, h, self.k[0], self.stride[0], t, b)
        cols = real(ow, w, self.k[1], self.stride[1], left, r)
        return xp.asarray(np.outer(rows, cols).astype(dtype))  # (oh, ow)

    def forward(self, x: Array) -> Array:
        self.setup(x)
        xp = get_array_module(x)
        if xp is not np and not getattr(self, "ceil_mode", False):   # GPU: avgpool.cu (gpu_layers.py)
            from . import gpu_layers
            self.on_kernels = True
            return gpu_layers.avgpool_forward(self, x)
        oh, ow = self.out_hw
        xpad = pad_hw(x, self.pads)
        y = xp.zeros((x.shape[0], x.shape[1], oh, ow), dtype=x.dtype)
        for i, j in self.taps:
            y += tap(xpad, i, j, self.stride, (1, 1), oh, ow)
        self.div = self._divisor(xp, x.dtype)
        self.pad_shape = xpad.shape
        y /= self.div
        return y

    def backward(self, gy: Array) -> Any:
        if getattr(self, "on_kernels", False):
            from . import gpu_layers
            return gpu_layers.avgpool_backward(self, gy)
        xp = get_array_module(gy)
        oh, ow = self.out_hw
        g = gy / self.div
        gpad = xp.zeros(self.pad_shape, dtype=gy.dtype)
        for i, j in self.taps:
            tap(gpad, i, j, self.stride, (1, 1), oh, ow)[...] += g
        return self.crop(gpad)


def adaptive_bins(size: int, out: int) -> list[tuple[int, int]]:
    """PyTorch's adaptive bins along one axis: [floor(i*size/out), ceil((i+1)*size/out))."""
    return [((i * size) // out, -((-(i + 1) * size) // out)) for i in range(out)]


def _bin_matrix(size: int, out: int, dtype: Any) -> np.ndarray:
    """(out, size) averaging matrix: row i holds 1/len over bin i."""
    m = np.zeros((out, size), dtype=dtype)
    for i, (a, b) in enumerate(adaptive_bins(size, out)):
        m[i, a:b] = 1.0 / (b - a)
    return m


class _AdaptivePool2dFn(Function):
    """What adaptive pools share: the output size (None keeps that axis) and the input checks."""

    def __init__(self, output_size: Any, who: str):
        self.who = who
        if isinstance(output_size, int) or output_size is None:
            output_size = (output_size, output_size)
        if len(output_size) != 2 or any(s is not None and (not isinstance(s, int) or s < 1) for s in output_size):
            raise ValueError(f"{who}: output_size must be a positive int or a pair (None keeps that axis), "
                             f"got {output_size!r}")
        self.output_size = tuple(output_size)

    def _output_hw(self, x: Array) -> tuple[int, int]:
        """Check x is a float (N, C, H, W) array; the (oh, ow) it pools to."""
        check_4d(x.shape, self.who)
        check_float(self.who, input=x)
        oh, ow = (s if s is not None else d for s, d in zip(self.output_size, x.shape[2:]))
        return oh, ow


class AdaptiveAvgPool2dFn(_AdaptivePool2dFn):
    """Average over PyTorch's adaptive bins. A bin is a rectangle (row bin x column bin), so the
    mean is separable: y = Ph @ x @ Pw.T with per-axis averaging matrices, two matmuls."""

    def __init__(self, output_size: Any, who: str = "adaptive_avg_pool2d"):
        super().__init__(output_size, who)

    def forward(self, x: Array) -> Array:
        oh, ow = self._output_hw(x)
        xp = get_array_module(x)
        n, c, h, w = x.shape
        self.ph = xp.asarray(_bin_matrix(h, oh, x.dtype))  # (oh, H)
        self.pw = xp.asarray(_bin_matrix(w, ow, x.dtype))  # (ow, W)
        self.x_shape = x.shape
        t = x.reshape(n * c * h, w) @ self.pw.T             # (N*C*H, ow)
        t = t.reshape(n * c, h, ow).swapaxes(1, 2).reshape(n * c * ow, h)  # (N*C*ow, H)
        y = t @ self.ph.T                                    # (N*C*ow, oh)
        return y.reshape(n, c, ow, oh).swapaxes(2, 3).copy()  # (N, C, oh, ow)

    def backward(self, gy: Array) -> Any:
        n, c, h, w = self.x_shape
        oh, ow = gy.shape[2:]
        t = gy.swapaxes(2, 3).reshape(n * c * ow, oh) @ self.ph   # (N*C*ow, H)
        t = t.reshape(n * c, ow, h).swapaxes(1, 2).reshape(n * c * h, ow)  # (N*C*H, ow)
        return (t @ self.pw).reshape(n, c, h, w)


class AdaptiveMaxPool2dFn(_AdaptivePool2dFn):
    """Maximum over PyTorch's adaptive bins [floor(i*H/oh), ceil((i+1)*H/oh)). One vectorised
    max per output cell (over every sample and channel at once); the gradient goes to the
    first maximum of each bin in row-major order (PyTorch routes it to one maximum too)."""

    def __init__(self, output_size: Any, who: str = "adaptive_max_pool2d"):
        super().__init__(output_size, who)

    def forward(self, x: Array) -> Array:
        oh, ow = self._output_hw(x)
        xp = get_array_module(x)
        n, c, h, w = x.shape
        self.x_shape, self.rows, self.cols = x.shape, adaptive_bins(h, oh), adaptive_bins(w, ow)
        y = xp.empty((n, c, oh, ow), dtype=x.dtype)
        self.arg = xp.empty((n, c, oh, ow), dtype=np.int64)  # flat index of the winner inside its bin
        for i, (y0, y1) in enumerate(self.rows):
            for j, (x0, x1) in enumerate(self.cols):
                win = x[:, :, y0:y1, x0:x1].reshape(n, c, -1)   # (N, C, bin)
                a = win.argmax(axis=2)                           # the first maximum
                self.arg[:, :, i, j] = a
                y[:, :, i, j] = xp.take_along_axis(win, a[:, :, None], axis=2)[:, :, 0]
        return y

    def backward(self, gy: Array) -> Any:
        xp = get_array_module(gy)
        n, c, h, w = self.x_shape
        gx = xp.zeros(self.x_shape, dtype=gy.dtype)
        nn_, cc = xp.meshgrid(xp.arange(n), xp.arange(c), indexing="ij")
        for i, (y0, _) in enumerate(self.rows):
            for j, (x0, x1) in enumerate(self.cols):
                by, bx = xp.divmod(self.arg[:, :, i, j], x1 - x0)
                # bins overlap when H is not a multiple of oh: accumulate, never overwrite
                xp.add.at(gx, (nn_, cc, y0 + by, x0 + bx), gy[:, :, i, j])
        return gx


class GlobalAvgPool2dFn(Function):
    """(N, C, H, W) -> (N, C) mean over all pixels (Keras GlobalAveragePooling2D)."""

    def __init__(self, who: str = "global_avg_pool2d"):
        self.who = who

    def forward(self, x: Array) -> Array:
        check_4d(x.shape, self.who)
        check_float(self.who, input=x)
        self.x_shape = x.shape
        n, c, h, w = x.shape
        return x.reshape(n, c, h * w).mean(axis=2)       # (N, C)

    def backward(self, gy: Array) -> Any:
        xp = get_array_module(gy)
        n, c, h, w = self.x_shape
        g = gy / gy.dtype.type(h * w)
        return xp.broadcast_to(g[:, :, None, None], self.x_shape).copy()


def max_pool2d(x: Any, kernel_size: Any, stride: Any = None, padding: Padding = 0, ceil_mode: bool = False) -> Tensor:
    """(N, C, H, W) -> (N, C, oh, ow) window max; padding may be 'same' (pads with -inf)."""
    return MaxPool2dFn(kernel_size, stride, padding, "max_pool2d", ceil_mode)(x)


def avg_pool2d(x: Any, kernel_size: Any, stride: Any = None, padding: Padding = 0, ceil_mode: bool = False,
               count_include_pad: bool | None = None) -> Tensor:
    """(N, C, H, W) -> (N, C, oh, ow) window mean (see AvgPool2dFn for count_include_pad; PyTorch's order)."""
    return AvgPool2dFn(kernel_size, stride, padding, count_include_pad, "avg_pool2d", ceil_mode)(x)


def adaptive_avg_pool2d(x: Any, output_size: Any) -> Tensor:
    """(N, C, H, W) -> (N, C, *output_size) with PyTorch's adaptive bins."""
    return AdaptiveAvgPool2dFn(output_size)(x)


def adaptive_max_pool2d(x: Any, output_size: Any, return_indices: bool = False) -> Any:
    """(N, C, H, W) -> (N, C, *output_size) max over PyTorch's adaptive bins; with return_indices,
    also each maximum's flat index into H*W (PyTorch's)."""
    fn = AdaptiveMaxPool2dFn(output_size)
    y = fn(x)
    if not return_indices:
        return y
    w = fn.x_shape[3]
    xp = get_array_module(y.data)
    idx = xp.empty(y.shape, dtype=np.int64)
    for i, (y0, _) in enumerate(fn.rows):
        for j, (x0, x1) in enumerate(fn.cols):
            by, bx = xp.divmod(fn.arg[:, :, i, j], x1 - x0)
            idx[:, :, i, j] = (y0 + by) * w + x0 + bx
    return y, Tensor(idx)


def global_avg_pool2d(x: Any) -> Tensor:
    """(N, C, H, W) -> (N, C)."""
    return GlobalAvgPool2dFn()(x)
