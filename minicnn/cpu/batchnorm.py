"""Batch norm's CPU body: every pass runs block by block (one sample, an L2-sized block of
channels), the blocks split over threads, so the several passes over a block read it from
memory once.

Accuracy at float32 whatever the data's mean and sign (post-ReLU, large offsets, tiny
spread): the statistics are a two-pass mean and centred sum of squares *per block*, merged
across samples in float64 with Chan's parallel update; the output is (x - mean) * scale + bias
and the backward works on x - mean too, so no step subtracts two large nearly equal numbers.
"""
from __future__ import annotations

import functools
from typing import Any

import numpy as np

from . import tuning
from .threads import parallel_range


def each_block(fn: Any, shape: tuple, work: int, dtype: Any) -> None:
    """fn(i, c0, c1, tmp) for every sample i and L2-sized block [c0, c1) of channels of an
    (N, C, L) array, the blocks split over threads; tmp is the thread's (cb, L) scratch.

    Working block by block keeps the several passes over a block in cache, so each value is
    read from memory once per call rather than once per pass.
    """
    n, c, length = shape
    cb = max(1, min(c, tuning.BN_BLOCK_ELEMS // max(length, 1)))       # channels per block
    nb = -(-c // cb)

    def run(a: int, z: int) -> None:
        tmp = np.empty((cb, length), dtype=dtype)
        for u in range(a, z):
            i, b = divmod(u, nb)
            c0, c1 = b * cb, min(c, (b + 1) * cb)
            fn(i, c0, c1, tmp[:c1 - c0])
    parallel_range(run, n * nb, work)


DOT_CHUNK = 512  # values per float32 partial dot product; the partials are added in float64
FAR_MEAN = 10.0  # |mean| / sigma of a block above which its mean is refined by one more pass


@functools.lru_cache(maxsize=64)
def chunk_of(length: int) -> int:
    """The chunk for an L-value row: a divisor of L in [256, 1024] nearest 512 if there is one
    (the (k, L) block is then a contiguous (k * L / chunk, chunk) matrix: one plain BLAS call),
    else 512 with a separate tail."""
    if length <= 1024:
        return length
    divisors = [c for c in range(256, 1025) if length % c == 0]
    return min(divisors, key=lambda c: abs(c - DOT_CHUNK)) if divisors else DOT_CHUNK


def rowdot(a: Any, b: Any) -> Any:
    """(k, L), (k, L) -> (k,) float64 row-wise dot products: batched BLAS over ~512-value chunks.

    One float32 dot over L = 8100 non-negative values loses ~1.5e-7 relatively (the variance of
    post-ReLU data; PyTorch's float32 batch norm is at ~4e-8); chunks added in float64 bring it
    to ~2e-8, for ~60% more time on this pass (which runs in cache).
    """
    k, length = a.shape
    ch = chunk_of(length)
    full = length - length % ch
    nk = full // ch
    s = (a[:, :full].reshape(k * nk, 1, ch) @ b[:, :full].reshape(k * nk, ch, 1)).reshape(k, nk).sum(
        axis=1, dtype=np.float64)                      # (k * nk, 1, 1) partials -> (k,)
    if full < length:
        s += (a[:, None, full:] @ b[:, full:, None])[:, 0, 0]  # (k, 1, r) @ (k, r, 1)
    return s


def rowsum(a: Any) -> Any:
    """(k, L) -> (k,) float64 row sums: one BLAS matrix-vector product over ~512-value chunks."""
    k, length = a.shape
    ch = chunk_of(length)
    full = length - length % ch
    s = (a[:, :full].reshape(k * (full // ch), ch) @ np.ones(ch, a.dtype)).reshape(k, -1).sum(
        axis=1, dtype=np.float64)                      # (k, nk) partials -> (k,)
    if full < length:
        s += a[:, full:].sum(axis=1, dtype=np.float64)
    return s


def batch_stats(x3: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, C, L) -> per-channel float64 mean and biased variance, in one read of x.

    Per block (sample i, channels): the block's mean m (a float64 sum of float32 partials over
    512 values), then M2_b = sum((x - m32)^2) - L (m - m32)^2 around m rounded to float32 (the
    correction is tiny, so nothing cancels). Where |m| > 10 sigma_b, m's own error (~1e-8 |m|)
    would show, so m is refined by the sum of the centred values, one more pass. The blocks
    merge in float64: mean = avg(mean_b), M2 = sum(M2_b) + L * sum((mean_b - mean)^2).
    """
    n, c, length = x3.shape
    mean_b = np.empty((n, c), dtype=np.float64)
    m2_b = np.empty((n, c), dtype=np.float64)

    def run(i: int, c0: int, c1: int, d: Any) -> None:
        xb = x3[i, c0:c1]                                   # (cb, L)
        m = rowsum(xb) / length                             # (cb,) float64 block mean
        m32 = m.astype(x3.dtype)
        np.subtract(xb, m32[:, None], out=d)
        q = rowdot(d, d)                                    # sum((x - m32)^2)
        if np.any(m * m > FAR_MEAN ** 2 * q / length):      # |mean| >> sigma: refine m from x - m32
            m = m32 + rowsum(d) / length
        mean_b[i, c0:c1] = m
        m2_b[i, c0:c1] = q - length * (m - m32) ** 2
    each_block(run, x3.shape, 2 * x3.size, x3.dtype)
    mean = mean_b.mean(axis=0)                              # (C,) float64
    m2 = m2_b.sum(axis=0) + length * ((mean_b - mean) ** 2).sum(axis=0)
    var = np.maximum(m2 / (n * length), 0.0)
    return mean, var


def normalize(x3: np.ndarray, centre: Any, scale: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """y = (x3 - centre) * scale + shift, or x3 * scale + shift when centre is None; (C, 1) coefficients.

    The caller drops the centring pass only where |mean| / sigma is small, i.e. where
    x * scale and shift cannot cancel.
    """
    y = np.empty_like(x3)

    def run(i: int, c0: int, c1: int, _: Any) -> None:
        out = y[i, c0:c1]
        if centre is None:
            np.multiply(x3[i, c0:c1], scale[c0:c1], out=out)
        else:
            np.subtract(x3[i, c0:c1], centre[c0:c1], out=out)
            out *= scale[c0:c1]
        out += shift[c0:c1]
    each_block(run, x3.shape, x3.size, x3.dtype)
    return y


def grad_sums(g3: np.ndarray, x3: np.ndarray, centre: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel float64 sum(gy) and sum(gy * (x - centre)) ((C, 1) centre; None: sum(gy * x),
    one pass shorter, for the caller to centre where |mean| / sigma is small)."""
    n, c, length = g3.shape
    sg = np.empty((n, c), dtype=np.float64)            # per-sample sum(gy)
    sgx = np.empty((n, c), dtype=np.float64)           # per-sample sum(gy * (x - centre))

    def sums(i: int, c0: int, c1: int, xc: Any) -> None:
        x = x3[i, c0:c1]
        if centre is not None:
            x = np.subtract(x, centre[c0:c1], out=xc)
        sg[i, c0:c1] = rowsum(g3[i, c0:c1])
        sgx[i, c0:c1] = rowdot(g3[i, c0:c1], x)
    each_block(sums, g3.shape, 2 * g3.size, g3.dtype)
    return sg.sum(axis=0), sgx.sum(axis=0)


def input_grad(g3: np.ndarray, x3: np.ndarray, k: np.ndarray, coef: Any = None) -> np.ndarray:
    """Batch norm's input gradient from (C, 1) coefficients: gx = k * gy when coef is None (eval),
    gx = k * gy + x * u + v for coef = ("affine", u, v), or the cancellation-free
    gx = k * (gy - gbar - (x - centre) * w) for coef = ("centred", gbar, centre, w)."""
    gx = np.empty_like(g3)

    def grad(i: int, c0: int, c1: int, tmp: Any) -> None:
        out, g, x = gx[i, c0:c1], g3[i, c0:c1], x3[i, c0:c1]
        if coef is None:
            np.multiply(g, k[c0:c1], out=out)
        elif coef[0] == "affine":
            u, v = coef[1][c0:c1], coef[2][c0:c1]
            np.multiply(g, k[c0:c1], out=out)
            np.multiply(x, u, out=tmp)
            out += tmp
            out += v
        else:
            gbar, centre, w = (a[c0:c1] for a in coef[1:])
            np.subtract(g, gbar, out=out)
            np.subtract(x, centre, out=tmp)
            tmp *= w
            out -= tmp
            out *= k[c0:c1]
    each_block(grad, g3.shape, 3 * g3.size, g3.dtype)
    return gx
