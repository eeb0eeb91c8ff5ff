"""CLAHE: contrast-limited adaptive histogram equalisation, in NumPy.

The image is cut into a grid of tiles. Each tile gets its own equalisation lookup table: its
histogram, clipped at `clip_limit` times the mean bin count (rounded down, as OpenCV does)
with the excess spread evenly over all bins, then cumulated and scaled to 0..255. Every
pixel blends the tables of the four tile centres around it bilinearly, so no seams show. Sizes that do not divide
by the grid are padded at the bottom/right by mirroring, then cropped back.
`clahe_naive` is the same algorithm as plain loops, kept as the reference for tests.
"""
from __future__ import annotations

import math

import numpy as np
from PIL import Image

from ._image import ImageLike, Transform, like, to_pil


def _pad(img: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """Mirror-pad (H, W) at the bottom/right so each side divides by its tile count."""
    h, w = img.shape
    ph, pw = -h % grid[0], -w % grid[1]
    return np.pad(img, ((0, ph), (0, pw)), mode="symmetric") if ph or pw else img


def _check(img: np.ndarray, clip_limit: float, grid: tuple[int, int]) -> None:
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 2:
        raise TypeError(f"clahe: expected a uint8 (H, W) array, got {getattr(img, 'dtype', type(img))} "
                        f"of shape {getattr(img, 'shape', None)}")
    if grid[0] < 1 or grid[1] < 1:
        raise ValueError(f"clahe: tile_grid must be positive, got {grid}")
    if clip_limit < 0:
        raise ValueError(f"clahe: clip_limit must be >= 0 (0 = no clipping), got {clip_limit}")


def tile_luts(hist: np.ndarray, area: int, clip_limit: float) -> np.ndarray:
    """Histograms (..., 256) of tiles of `area` pixels -> float lookup tables (..., 256)."""
    hist = hist.astype(np.int64)
    if clip_limit > 0:
        limit = max(int(clip_limit * area / 256), 1)  # an integer limit (as OpenCV) keeps the sums exact
        excess = np.maximum(hist - limit, 0).sum(axis=-1, keepdims=True)  # (..., 1)
        hist = np.minimum(hist, limit) + excess / 256
    return np.clip(np.round(np.cumsum(hist, axis=-1) * (255 / area)), 0, 255)


def _blend_coords(n: int, tile: int, tiles: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each of n pixels: the two neighbouring tile indices and the weight of the second."""
    f = (np.arange(n) + 0.5) / tile - 0.5  # position in units of tiles, 0 = first tile centre
    lo = np.floor(f)
    weight = f - lo
    return np.clip(lo, 0, tiles - 1).astype(np.intp), np.clip(lo + 1, 0, tiles - 1).astype(np.intp), weight


def clahe(img: np.ndarray, clip_limit: float = 2.0, tile_grid: tuple[int, int] = (8, 8)) -> np.ndarray:
    """CLAHE of a uint8 (H, W) image -> uint8 (H, W); tile_grid = (tile rows, tile columns)."""
    _check(img, clip_limit, tile_grid)
    h, w = img.shape
    gy, gx = tile_grid
    padded = _pad(img, tile_grid)
    th, tw = padded.shape[0] // gy, padded.shape[1] // gx
    tiles = padded.reshape(gy, th, gx, tw).transpose(0, 2, 1, 3).reshape(gy * gx, th * tw)  # (tiles, pixels)
    keys = np.arange(gy * gx)[:, None] * 256 + tiles  # one histogram row per tile
    hist = np.bincount(keys.ravel(), minlength=gy * gx * 256).reshape(gy, gx, 256)
    lut = tile_luts(hist, th * tw, clip_limit)  # (gy, gx, 256)
    y0, y1, wy = _blend_coords(h, th, gy)
    x0, x1, wx = _blend_coords(w, tw, gx)
    y0, y1, wy = y0[:, None], y1[:, None], wy[:, None]  # (H, 1) against (W,): broadcast to (H, W)
    out = (1 - wy) * ((1 - wx) * lut[y0, x0, img] + wx * lut[y0, x1, img]) \
        + wy * ((1 - wx) * lut[y1, x0, img] + wx * lut[y1, x1, img])
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def clahe_naive(img: np.ndarray, clip_limit: float = 2.0, tile_grid: tuple[int, int] = (8, 8)) -> np.ndarray:
    """Reference CLAHE with explicit loops (slow; for tests). Same result as `clahe`."""
    _check(img, clip_limit, tile_grid)
    h, w = img.shape
    gy, gx = tile_grid
    padded = _pad(img, tile_grid)
    th, tw = padded.shape[0] // gy, padded.shape[1] // gx
    area = th * tw
    luts: list[list[list[int]]] = [[[] for _ in range(gx)] for _ in range(gy)]
    for ty in range(gy):
        for tx in range(gx):
            hist: list[float] = [0] * 256  # counts, then fractional once the excess is spread
            for y in range(ty * th, (ty + 1) * th):
                for x in range(tx * tw, (tx + 1) * tw):
                    hist[int(padded[y, x])] += 1
            if clip_limit > 0:
                limit = max(int(clip_limit * area / 256), 1)
                excess: float = 0
                for v in range(256):
                    excess += max(hist[v] - limit, 0)
                hist = [min(c, limit) + excess / 256 for c in hist]
            lut, total = [], 0.0
            for c in hist:
                total += c
                lut.append(min(max(round(total * (255 / area)), 0), 255))
            luts[ty][tx] = lut
    out = np.empty((h, w), dtype=np.uint8)
    for y in range(h):
        fy = (y + 0.5) / th - 0.5
        ya, wy = math.floor(fy), fy - math.floor(fy)
        ya, yb = min(max(ya, 0), gy - 1), min(max(ya + 1, 0), gy - 1)
        for x in range(w):
            fx = (x + 0.5) / tw - 0.5
            xa, wx = math.floor(fx), fx - math.floor(fx)
            xa, xb = min(max(xa, 0), gx - 1), min(max(xa + 1, 0), gx - 1)
            v = int(img[y, x])
            top = (1 - wx) * luts[ya][xa][v] + wx * luts[ya][xb][v]
            bottom = (1 - wx) * luts[yb][xa][v] + wx * luts[yb][xb][v]
            out[y, x] = min(max(round((1 - wy) * top + wy * bottom), 0), 255)
    return out


class CLAHE(Transform):
    """CLAHE as a transform; colour images are equalised channel by channel."""

    def __init__(self, clip_limit: float = 2.0, tile_grid: tuple[int, int] = (8, 8)):
        rows, cols = tile_grid
        self.clip_limit, self.tile_grid = clip_limit, (rows, cols)

    def __call__(self, img: ImageLike, rng: np.random.Generator | None = None) -> ImageLike:
        a = np.asarray(to_pil(img, "CLAHE"))
        if a.ndim == 2:
            out = clahe(a, self.clip_limit, self.tile_grid)
        else:
            out = np.stack([clahe(np.ascontiguousarray(a[:, :, c]), self.clip_limit, self.tile_grid)
                            for c in range(a.shape[2])], axis=2)
        return like(Image.fromarray(out), img)
