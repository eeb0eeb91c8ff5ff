"""Connected-component labelling and Otsu's threshold, in NumPy (no SciPy).

Labelling works on horizontal runs of foreground pixels rather than on single pixels: runs
in neighbouring rows that touch are merged with a small union-find, and a 224x224 mask has
only a few hundred runs, so the Python loop stays short.
"""
from __future__ import annotations

import numpy as np


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Foreground runs as (row, start column, end column exclusive), in raster order."""
    padded = np.pad(mask.astype(np.int8), ((0, 0), (1, 1)))  # (H, W + 2): every run has both edges
    edges = np.diff(padded, axis=1)  # (H, W + 1): +1 where a run starts, -1 one past where it ends
    rows, starts = np.nonzero(edges == 1)
    _, ends = np.nonzero(edges == -1)  # same raster order, so ends[k] closes starts[k]
    return rows, starts, ends


def _touching_pairs(rows: np.ndarray, starts: np.ndarray, ends: np.ndarray, width: int,
                    connectivity: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (run in row r + 1, run in row r) that touch: overlapping columns, or diagonal for 8."""
    reach = 1 if connectivity == 8 else 0
    stride = width + 4  # row * stride + column sorts runs in raster order, with room for +-reach
    start_key, end_key = rows * stride + starts, rows * stride + ends
    below = np.flatnonzero(rows > 0)
    up = (rows[below] - 1) * stride
    # runs of the row above with end > start - reach and start < end + reach
    lo = np.searchsorted(end_key, up + starts[below] - reach, side="right")
    hi = np.searchsorted(start_key, up + ends[below] + reach, side="left")
    counts = np.maximum(hi - lo, 0)
    b = np.repeat(below, counts)
    within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)  # 0..count-1 per group
    a = np.repeat(lo, counts) + within
    return b, a


def label_components(mask: np.ndarray, connectivity: int = 8) -> tuple[np.ndarray, int]:
    """Label connected foreground regions of a (H, W) mask: int32 (H, W) with 0 = background, and the count."""
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"label_components: expected a 2-D mask, got shape {mask.shape}")
    if connectivity not in (4, 8):
        raise ValueError(f"label_components: connectivity must be 4 or 8, got {connectivity}")
    h, w = mask.shape
    rows, starts, ends = _runs(mask)
    parent = list(range(len(rows)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]  # path halving keeps the trees flat
            i = parent[i]
        return i

    for b, a in zip(*_touching_pairs(rows, starts, ends, w, connectivity)):
        rb, ra = find(int(b)), find(int(a))
        if rb != ra:
            parent[max(ra, rb)] = min(ra, rb)  # the earlier run in raster order stays the root
    roots = np.array([find(i) for i in range(len(rows))], dtype=np.int64)
    _, run_label = np.unique(roots, return_inverse=True)  # roots sorted = raster order of first pixel
    run_label = run_label.reshape(-1) + 1
    # paint runs: +label at the start, -label one past the end, cumulate along the row
    marks = np.zeros((h, w + 1), dtype=np.int64)
    np.add.at(marks, (rows, starts), run_label)
    np.add.at(marks, (rows, ends), -run_label)
    labels = np.cumsum(marks, axis=1)[:, :w].astype(np.int32)
    return labels, int(run_label.max()) if len(rows) else 0


def otsu_threshold(img: np.ndarray) -> int:
    """Grey level t maximising the between-class variance of (img <= t) vs (img > t), for uint8 images."""
    if img.dtype != np.uint8:
        raise TypeError(f"otsu_threshold: expected uint8, got {img.dtype}")
    p = np.bincount(img.ravel(), minlength=256).astype(np.float64)
    p /= p.sum()
    w0 = np.cumsum(p)  # weight of the class at or below t
    mu = np.cumsum(p * np.arange(256))  # unnormalised mean of that class
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mu[-1] * w0 - mu) ** 2 / (w0 * (1 - w0))
    between[~np.isfinite(between)] = -1  # t where one class is empty
    return int(np.argmax(between))
