"""NumPy references for the CUDA kernel tests (plain slicing and loops, written independently of
the kernels), plus autograd vector-Jacobian products through the public minicnn API."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import minicnn


def out_size(n: int, k: int, s: int, p: int, d: int = 1) -> int:
    """Output length of a window of size k, stride s, dilation d over n with p padding on both sides."""
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def windows(x: np.ndarray, k: Sequence[int], s: Sequence[int], p: Sequence[int], d: Sequence[int],
            fill: float = 0.0) -> np.ndarray:
    """(N, C, H, W) -> (N, C, kh, kw, oh, ow): every window tap as a strided slice of the padded input."""
    n, c, h, w = x.shape
    oh, ow = out_size(h, k[0], s[0], p[0], d[0]), out_size(w, k[1], s[1], p[1], d[1])
    xp = np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])), constant_values=fill)
    out = np.empty((n, c, k[0], k[1], oh, ow), dtype=x.dtype)
    for i in range(k[0]):
        for j in range(k[1]):
            out[:, :, i, j] = xp[:, :, i * d[0]: i * d[0] + s[0] * (oh - 1) + 1: s[0],
                                 j * d[1]: j * d[1] + s[1] * (ow - 1) + 1: s[1]]
    return out


def im2col_ref(x: np.ndarray, k, s, p, d) -> np.ndarray:
    win = windows(x, k, s, p, d)
    n, c, kh, kw, oh, ow = win.shape
    return win.reshape(n, c * kh * kw, oh * ow)          # (N, C*kh*kw, oh*ow)


def col2im_ref(cols: np.ndarray, x_shape, k, s, p, d) -> np.ndarray:
    """Adjoint of im2col by explicit loops over taps (adds into a padded image, then crops)."""
    n, c, h, w = x_shape
    oh, ow = out_size(h, k[0], s[0], p[0], d[0]), out_size(w, k[1], s[1], p[1], d[1])
    xp = np.zeros((n, c, h + 2 * p[0], w + 2 * p[1]), dtype=cols.dtype)
    win = cols.reshape(n, c, k[0], k[1], oh, ow)
    for i in range(k[0]):
        for j in range(k[1]):
            xp[:, :, i * d[0]: i * d[0] + s[0] * (oh - 1) + 1: s[0],
               j * d[1]: j * d[1] + s[1] * (ow - 1) + 1: s[1]] += win[:, :, i, j]
    return xp[:, :, p[0]: p[0] + h, p[1]: p[1] + w]


def maxpool_ref(x: np.ndarray, k, s, p) -> tuple[np.ndarray, np.ndarray]:
    """(y, idx): max over in-image taps, idx = iy*W + ix of the first maximum (row-major tap order)."""
    n, c, _h, w = x.shape
    win = windows(x, k, s, p, (1, 1), fill=-np.inf)       # (N, C, kh, kw, oh, ow)
    oh, ow = win.shape[-2:]
    flat = win.reshape(n, c, k[0] * k[1], oh, ow)
    t = flat.argmax(axis=2)                                # first maximum wins ties
    ti, tj = t // k[1], t % k[1]
    iy = np.arange(oh)[:, None] * s[0] - p[0] + ti
    ix = np.arange(ow)[None, :] * s[1] - p[1] + tj
    return flat.max(axis=2), (iy * w + ix).astype(np.int64)


def vjp(fn: Callable[..., Any], inputs: Sequence[np.ndarray], gy: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """(fn(*inputs), gradients of sum(fn * gy) w.r.t. every input) through minicnn's autograd."""
    ts = [minicnn.tensor(a, requires_grad=True) for a in inputs]
    y = fn(*ts)
    y.backward(gy)
    return y.data, [t.grad.data if hasattr(t.grad, "data") else t.grad for t in ts]
