"""Winograd F(2x2, 3x3): a stride-1 3x3 convolution with 16 multiplies per 2x2 output tile
instead of 36 (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks", 2015).

Cut the padded input into 4x4 tiles that overlap by 2 (one per 2x2 block of outputs). Then

    Y_tile = A^T [ (G g G^T) (.) (B^T d_tile B) ] A          (.) = elementwise

with the constant matrices below. Summed over input channels, the elementwise product at each
of the 16 tile positions is a matrix product over channels, so the convolution becomes
    U = G g G^T                 (16, O, C)       kernel transform, once per call
    V = B^T d B                 (16, C, tiles)   input transform
    M = U @ V                   (16, O, tiles)   16 batched BLAS products
    Y = A^T M A                 2x2 outputs per tile (output transform)
Backward is the adjoint of each step:
    gM = A gy A^T (gy's 2x2 blocks spread to 4x4), gU = sum_tiles gM @ V^T, gw = G^T gU G;
    gx is itself a stride-1 3x3 convolution (of gy, padded by 2 - pad, with the kernel flipped
    and its channel axes swapped), computed by the same forward.
The transforms are a few additions per tile, done here as whole-array NumPy operations (no
loop over tiles), in blocks of samples or tile rows so the blocks stay in cache. The tiles are
laid out "wide" like `wide.py`'s rows: tw + 1 tiles per tile row, the last one garbage, so that
with the input split by row and column parity every pass is a few long contiguous runs.
Float32 error measured at or below the direct method's (the transforms only add and halve); the tests
bound it against a float64 result.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from . import tuning
from .workspace import scratch

# the transform matrices of F(2x2, 3x3) (documentation and the tests; the code below spells
# out their additions)
BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float64)
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=np.float64)
AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float64)


def applicable(kernel: tuple, stride: tuple, dilation: tuple, groups: int, pads: tuple) -> bool:
    """3x3, stride 1, undilated, ungrouped, each pad at most 2 (so gx's padding 2 - pad is >= 0)."""
    return kernel == (3, 3) and stride == (1, 1) and dilation == (1, 1) and groups == 1 and max(pads) <= 2


def kernel_transform(w: Any) -> Any:
    """w (O, C, 3, 3) -> U (16, O, C) = G w G^T at each tile position (computed in w's dtype)."""
    g = G.astype(w.dtype)
    u = np.einsum("ai,ocij,bj->aboc", g, w, g, optimize=True)  # (4, 4, O, C)
    return np.ascontiguousarray(u.reshape(16, *w.shape[:2]))


def _combine(d: list, out: list) -> None:
    """out[0..3] = B^T-rows of d[0..3]: d0 - d2, d1 + d2, d2 - d1, d1 - d3 (4 arrays each)."""
    np.subtract(d[0], d[2], out=out[0])
    np.add(d[1], d[2], out=out[1])
    np.subtract(d[2], d[1], out=out[2])
    np.subtract(d[1], d[3], out=out[3])


def _geometry(h: int, w: int, pads: tuple) -> tuple:
    oh, ow = h + pads[0] + pads[1] - 2, w + pads[2] + pads[3] - 2
    return oh, ow, (oh + 1) // 2, (ow + 1) // 2


def blocks(n: int, th: int, per_tile: int) -> list[tuple[int, int, int, int]]:
    """(n0, n1, r0, r1): samples [n0, n1) and tile rows [r0, r1) per block, about
    `tuning.WINOGRAD_BLOCK_BYTES` of transformed tiles each: whole samples when one fits,
    else bands of tile rows of one sample."""
    rows = max(1, tuning.WINOGRAD_BLOCK_BYTES // max(per_tile, 1))  # tile rows per block
    if rows >= th:
        step = rows // th
        return [(i, min(i + step, n), 0, th) for i in range(0, n, step)]
    return [(i, i + 1, r, min(r + rows, th)) for i in range(n) for r in range(0, th, rows)]


def _quarter(x: Any, q: Any, pads: tuple, blk: tuple) -> None:
    """q (2, 2, nb, C, rb+1, tw+1) <- the padded input of block `blk` split by row and column
    parity: q[p, s, n, c, a, b] = xpad[n, c, 2*(r0 + a) + p, 2*b + s] (zero outside x)."""
    n0, n1, r0, _ = blk
    h, w = x.shape[2:]
    t, left = pads[0], pads[2]
    q[...] = 0
    for p in range(2):
        a0 = max(0, (t - p - 2 * r0 + 1) // 2)             # first row of q[p] inside x
        xr0 = 2 * (r0 + a0) + p - t
        for s in range(2):
            b0 = max(0, (left - s + 1) // 2)
            xc0 = 2 * b0 + s - left
            src = x[n0:n1, :, xr0::2, xc0::2][:, :, :q.shape[4] - a0, :q.shape[5] - b0]
            q[p, s, :, :, a0:a0 + src.shape[2], b0:b0 + src.shape[3]] = src


def input_transform(x: Any, pads: tuple, blk: tuple, tw: int) -> Any:
    """V (16, C, nb, L) = B^T d B for the tiles of block `blk` of x (N, C, H, W), L = rb*(tw+1).

    The tiles are laid out "wide": tw+1 per tile row, the last one garbage (finite, and its
    output is never written; the gradient transform gives it a zero). Splitting the padded input
    by row and column parity first makes every tap of every tile a contiguous run of L values,
    so each NumPy pass below is a few long runs instead of many short rows."""
    n0, n1, r0, r1 = blk
    c = x.shape[1]
    nb, rb, lw = n1 - n0, r1 - r0, tw + 1
    length = rb * lw
    q = scratch("wino_quarter", (2, 2, nb, c, rb + 1, lw), x.dtype, np)
    _quarter(x, q, pads, blk)
    qf = q.reshape(2, 2, nb, c, (rb + 1) * lw)
    rows = scratch("wino_rows", (4, 2, nb, c, length), x.dtype, np)
    # B^T along the tile's rows: row i of tile row ty is quarter row ty + i // 2 of parity i % 2
    _combine([qf[i % 2, :, :, :, (i // 2) * lw:(i // 2) * lw + length] for i in range(4)], list(rows))
    v = scratch("wino_v", (16, c, nb, length), x.dtype, np)
    for a in range(4):  # then B along the columns: column j of tile tx is entry tx + j // 2 of parity j % 2
        even, odd = rows[a]
        dst = [v[4 * a + b, :, :, :length - 1].transpose(1, 0, 2) for b in range(4)]
        _combine([even[..., :-1], odd[..., :-1], even[..., 1:], odd[..., 1:]], dst)
    v[:, :, :, length - 1] = 0  # the last garbage tile, which no slice above reached
    return v


def output_transform(m: Any, y: Any, r0: int, tw: int) -> None:
    """m (16, O, nb, L) -> y (nb, O, oh, ow): A^T m A per tile into output rows 2*r0 ..."""
    _, o, nb, length = m.shape
    lw = tw + 1
    rb = length // lw
    oh, ow = y.shape[2:]
    s = scratch("wino_s", (2, 4, o, nb, length), m.dtype, np)
    for b in range(4):  # A^T along the rows: s0 = m0 + m1 + m2, s1 = m1 - m2 - m3
        np.add(m[b], m[4 + b], out=s[0, b])
        s[0, b] += m[8 + b]
        np.subtract(m[4 + b], m[8 + b], out=s[1, b])
        s[1, b] -= m[12 + b]
    tmp = scratch("wino_y", (o, nb, length), m.dtype, np)
    for i in range(2):  # then A along the columns, then one strided copy to pixels (2ty + i, 2tx + j)
        si = s[i]
        hh = min(rb, (oh - 2 * r0 - i + 1) // 2)
        for j in range(2):
            if j == 0:
                np.add(si[0], si[1], out=tmp)
                tmp += si[2]
            else:
                np.subtract(si[1], si[2], out=tmp)
                tmp -= si[3]
            dst = y[:, :, 2 * r0 + i::2, j::2][:, :, :hh]  # (nb, O, rows, cols)
            dst[...] = tmp.reshape(o, nb, rb, lw)[:, :, :hh, :dst.shape[3]].transpose(1, 0, 2, 3)


def _per_tile_row(c: int, o: int, tw: int, itemsize: int) -> int:
    return (16 * (c + o) + 12 * c) * (tw + 1) * itemsize  # v, m, the quarters and the row pass


def conv(x: Any, u: Any, pads: tuple, bias: Any = None) -> Any:
    """x (N, C, H, W) with U (16, O, C) -> y (N, O, oh, ow) [+ bias (O,)], stride 1, 3x3."""
    n, c, h, w = x.shape
    o = u.shape[1]
    oh, ow, th, tw = _geometry(h, w, pads)
    y = np.empty((n, o, oh, ow), dtype=x.dtype)
    for blk in blocks(n, th, _per_tile_row(c, o, tw, x.itemsize)):
        n0, n1, r0, _ = blk
        v = input_transform(x, pads, blk, tw)             # (16, C, nb, L)
        m = scratch("wino_m", (16, o) + v.shape[2:], x.dtype, np)
        np.matmul(u, v.reshape(16, c, -1), out=m.reshape(16, o, -1))  # (16, O, C) @ (16, C, tiles)
        if bias is not None:  # tile position (1, 1) reaches all four outputs with weight +1
            m[5] += bias.reshape(o, 1, 1)
        output_transform(m, y[n0:n1], r0, tw)
    return y


def grad_transform(gy: Any, blk: tuple, tw: int) -> Any:
    """gM (16, O, nb, L) = A g A^T for each 2x2 block g of gy (N, O, oh, ow) in `blk`, zero
    for the garbage tile of each row and past the output's edge: the adjoint of the output
    transform."""
    n0, n1, r0, r1 = blk
    o = gy.shape[1]
    nb, rb, lw = n1 - n0, r1 - r0, tw + 1
    length = rb * lw
    gp = scratch("wino_gp", (2, 2, o, nb, rb, lw), gy.dtype, np)  # g[i, j] of every block
    gp[...] = 0
    gb = gy[n0:n1, :, 2 * r0:2 * r1]
    for i in range(2):
        for j in range(2):
            src = gb[:, :, i::2, j::2].transpose(1, 0, 2, 3)
            gp[i, j, :, :, :src.shape[2], :src.shape[3]] = src
    g = gp.reshape(2, 2, o, nb, length)
    r = scratch("wino_gr", (4, 2, o, nb, length), gy.dtype, np)
    for j in range(2):  # A along the rows: (g0, g0 + g1, g0 - g1, -g1) of each column j
        g0, g1 = g[0, j], g[1, j]
        r[0, j] = g0
        np.add(g0, g1, out=r[1, j])
        np.subtract(g0, g1, out=r[2, j])
        np.negative(g1, out=r[3, j])
    gm = scratch("wino_m", (16, o, nb, length), gy.dtype, np)
    for a in range(4):  # then along the columns
        g0, g1 = r[a, 0], r[a, 1]
        gm[4 * a] = g0
        np.add(g0, g1, out=gm[4 * a + 1])
        np.subtract(g0, g1, out=gm[4 * a + 2])
        np.negative(g1, out=gm[4 * a + 3])
    return gm


def weight_grad(x: Any, gy: Any, pads: tuple) -> Any:
    """gw (O, C, 3, 3) = G^T [sum over tiles of (A gy A^T) @ (B^T x B)^T] G."""
    n, c, h, w = x.shape
    o = gy.shape[1]
    oh, ow, th, tw = _geometry(h, w, pads)
    gu = np.zeros((16, o, c), dtype=x.dtype)
    for blk in blocks(n, th, _per_tile_row(c, o, tw, x.itemsize)):
        v = input_transform(x, pads, blk, tw)
        gm = grad_transform(gy, blk, tw)
        gu += np.matmul(gm.reshape(16, o, -1), v.reshape(16, c, -1).swapaxes(1, 2))  # (16, O, C)
    g = G.astype(gu.dtype)
    return np.einsum("ai,aboc,bj->ocij", g, gu.reshape(4, 4, o, c), g, optimize=True)


def input_grad(gy: Any, w: Any, x_shape: tuple, pads: tuple) -> Any:
    """gx: gy convolved with the flipped, channel-swapped kernel, padded by 2 - pad each side."""
    wf = np.ascontiguousarray(w[:, :, ::-1, ::-1].swapaxes(0, 1))  # (C, O, 3, 3)
    gpads = tuple(2 - p for p in pads)
    gx = conv(gy, kernel_transform(wf), gpads)
    assert gx.shape == tuple(x_shape), (gx.shape, x_shape)
    return gx
