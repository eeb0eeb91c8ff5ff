"""Procedural "chest phantom" X-rays: a stand-in dataset that needs no download.

Each image is drawn from a handful of random numbers: a body silhouette, two lung fields
whose outline wobbles smoothly, heart, spine, clavicles, rib arcs, vessels near the hila,
exposure changes and noise. Pneumonia images add soft, patchy opacities inside the lungs.
Nuisance variation that carries no label (heart size, faint nodule-like spots, breast
shadows, contrast) keeps the task learnable but not trivial: a four-conv CNN trained on
4000 images at 64 px is near chance after one epoch and reaches about 0.9 test accuracy
(AUC about 0.95) after 20; a linear model on the pixels gets about 0.83.

Coordinates: x runs left to right and y top to bottom, both in [-1, 1]; like a PA film,
the heart bulges to the image's right (the patient's left). Brighter means denser.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .dataset import Dataset, check_index
from .rng import make_rng

CLASSES = ["normal", "pneumonia"]
SPLITS = {"train": 0, "val": 1, "test": 2}
N_UNIFORMS = 128  # random numbers reserved per image; the drawing below uses fewer
MAX_BLOBS = 4     # opacity slots per image; unused slots get zero amplitude
LUNG_TOP, LUNG_BOTTOM = -0.74, 0.55
MAX_OPACITY = 0.45  # a consolidation cannot get denser than solid tissue


def _sig(z: np.ndarray) -> np.ndarray:
    """Logistic step: soft edges make the anatomy look radiographic, not cartoon-like."""
    return 0.5 * (1.0 + np.tanh(0.5 * z))


class _Draws:
    """Hands out the columns of a (N, N_UNIFORMS) uniform table, scaled to [lo, hi)."""

    def __init__(self, u: np.ndarray):
        self.u, self.col = u, 0

    def __call__(self, lo: float, hi: float, k: int = 0) -> np.ndarray:
        width = max(k, 1)
        cols = self.u[:, self.col:self.col + width]  # (N, width)
        self.col += width
        if self.col > self.u.shape[1]:
            raise RuntimeError("phantom: N_UNIFORMS too small for the parameters drawn")
        v = (lo + (hi - lo) * cols).astype(np.float32)
        return v[:, :, None, None] if k else v[:, 0, None, None]  # (N, k, 1, 1) or (N, 1, 1)


def _lung(x: np.ndarray, y: np.ndarray, side: float, d: _Draws) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Soft mask (N, H, W) of one lung, and its base centre and base half-width (N, 1, 1)."""
    t = np.clip((y - LUNG_TOP) / (LUNG_BOTTOM - LUNG_TOP), 0.0, 1.0)   # 0 at the apex, 1 at the base
    c0, w0 = side * d(0.40, 0.45), d(0.28, 0.32)
    centre = c0 + side * 0.07 * t                                      # the bases spread outwards
    wobble = 1.0 + d(-0.06, 0.06) * np.sin(6.0 * t + d(0, 6.3)) + d(-0.04, 0.04) * np.sin(11.0 * t + d(0, 6.3))
    half_w = w0 * (0.35 + 0.65 * np.sqrt(t)) * wobble                  # narrow apex, wide base
    # the hemidiaphragm is a dome: the lung base is highest mid-lung, lowest at the sides
    across = np.clip((x - centre) / half_w, -1.5, 1.5)
    floor = LUNG_BOTTOM + d(-0.05, 0.05) - d(0.10, 0.18) * (1.0 - across ** 2)
    top = LUNG_TOP + d(-0.04, 0.04)
    sharp = 40.0
    mask = _sig(sharp * (half_w - np.abs(x - centre))) * _sig(sharp * (floor - y)) * _sig(sharp * (y - top))
    return mask, c0, w0


def _smooth_field(g: np.ndarray, d: _Draws, waves: int, freq: tuple[float, float]) -> np.ndarray:
    """Random smooth texture (N, H, W) in about [-1, 1] on the grid g (W,): a sum of plane waves.

    sin(a + b) = sin(a)cos(b) + cos(a)sin(b) splits each wave into a column part times a row
    part, so the sum over waves is a batched matrix product instead of N*K*H*W sines.
    """
    angle, k, phase = d(0, np.pi, waves), d(*freq, waves), d(0, 2 * np.pi, waves)  # (N, K, 1, 1)
    a = (k * np.cos(angle) * g + phase)[:, :, 0, :]                      # (N, K, W) along x
    b = (k * np.sin(angle) * g)[:, :, 0, :].transpose(0, 2, 1)           # (N, H, K) along y
    return (np.cos(b) @ np.sin(a) + np.sin(b) @ np.cos(a)) / np.sqrt(waves)


def _blobs(g: np.ndarray, amp: np.ndarray, bx: np.ndarray, by: np.ndarray,
           sx: np.ndarray, sy: np.ndarray) -> np.ndarray:
    """Sum of axis-aligned Gaussians (N, H, W) on grid g; amp, centres and widths are (N, K, 1, 1)."""
    ex = np.exp(-0.5 * ((g - bx) / sx) ** 2)[:, :, 0, :]                 # (N, K, W)
    ey = (amp * np.exp(-0.5 * ((g - by) / sy) ** 2))[:, :, 0, :]         # (N, K, H)
    return ey.transpose(0, 2, 1) @ ex                                   # (N, H, K) @ (N, K, W)


def _render(u: np.ndarray, noise: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Images (N, H, W) float32 in [0, 1] from uniforms (N, N_UNIFORMS), noise (N, H, W), labels (N,)."""
    size = noise.shape[1]
    d = _Draws(u)
    g = np.linspace(-1.0, 1.0, size, dtype=np.float32)
    # a small random rotation, shift and zoom, applied by moving the sampling grid
    rot, zoom, shift_x, shift_y = d(-0.08, 0.08), d(1.05, 1.25), d(-0.06, 0.06), d(-0.06, 0.06)
    cos, sin = np.cos(rot), np.sin(rot)
    gx, gy = g[None, None, :] - shift_x, g[None, :, None] - shift_y
    x = (cos * gx + sin * gy) / zoom    # (N, H, W) anatomy coordinates of each pixel
    y = (-sin * gx + cos * gy) / zoom   # (N, H, W)
    ax = np.abs(x)                      # most anatomy is mirror-symmetric

    # torso: rounded shoulders, open at the bottom (abdomen), with a neck on top
    body_w, shoulder = d(0.84, 0.94), d(-0.86, -0.78)
    body = _sig(25.0 * (1.0 - ((ax / body_w) ** 2) ** 2 - (np.clip((y - 0.1) / (shoulder - 0.1), 0, None) ** 2) ** 3))
    neck = _sig(30.0 * (0.22 - ax)) * _sig(30.0 * (0.2 - y))
    tissue = np.maximum(body, neck)

    # heart: an ellipse sitting on the diaphragm, bulging to the image's right; size is a nuisance
    hx, hy, hr = d(0.05, 0.12), d(0.26, 0.34), d(0.85, 1.2)
    heart = _sig(12.0 * (1.0 - ((x - hx) / (0.30 * hr)) ** 2 - ((y - hy) / (0.24 * hr)) ** 2))

    # the lungs are air: they let X-rays through except where the heart lies in front of them
    left, left_c, left_w = _lung(x, y, -1.0, d)
    right, right_c, right_w = _lung(x, y, +1.0, d)
    lungs = np.maximum(left, right) * (1.0 - heart)
    img = 0.05 + (0.60 + 0.08 * _sig(10.0 * (y - 0.5))) * tissue * (1.0 - d(0.58, 0.70) * lungs)

    # ribs: arcs leaving the spine, drooping steeply towards the sides; clearest over air
    period = d(0.15, 0.18)
    a = np.clip(ax - 0.08, 0.0, None)
    v = y + 0.15 * a - 0.75 * a ** 2
    ribs = np.clip(np.cos(2 * np.pi * v / period + d(0, 2 * np.pi)), 0.0, 1.0)
    ribs *= np.sqrt(ribs)               # narrower, sharper-edged bands
    thorax = _sig(20.0 * (ax - 0.07)) * _sig(15.0 * (0.55 - y)) * body
    img += d(0.07, 0.12) * ribs * thorax * (0.35 + 0.65 * lungs)

    # clavicles: two bars from the sternum out to the shoulders
    clav_y = d(-0.74, -0.64) - 0.12 * ax
    img += 0.15 * _sig(60.0 * (0.03 - np.abs(y - clav_y))) * _sig(20.0 * (ax - 0.08)) * _sig(20.0 * (0.72 - ax))

    # spine down the middle, with the air-filled trachea dark over its upper part
    img += 0.12 * _sig(40.0 * (0.07 - ax)) * tissue
    img -= 0.09 * _sig(60.0 * (0.035 - np.abs(x - 0.01))) * _sig(30.0 * (-0.3 - y)) * tissue

    # vessels: lung markings fanning out from the hila, brighter near the centre
    hila = np.exp(-np.minimum(np.hypot(x - 0.14, y), np.hypot(x + 0.14, y)) / d(0.18, 0.28))
    vessels = 0.5 + 0.5 * _smooth_field(g, d, 4, (9.0, 16.0))
    img += d(0.10, 0.20) * hila * vessels * lungs

    # breast shadows: soft density over the lower outer lungs in some images
    img += d(-0.06, 0.08).clip(0) * _sig(10.0 * (y - 0.15)) * _sig(8.0 * (ax - 0.35)) * body

    # opacities: pneumonia gets 1-4 patchy blobs; any image may show one faint small spot
    right_side = d(0, 1, MAX_BLOBS) < 0.5                      # (N, K, 1, 1)
    t = d(0.3, 0.95, MAX_BLOBS)                                 # depth in the lung: lower lobes more often
    c0 = np.where(right_side, right_c[:, None], left_c[:, None])
    w0 = np.where(right_side, right_w[:, None], left_w[:, None])
    bx = c0 + np.sign(c0) * 0.07 * t + w0 * np.sqrt(t) * d(-0.6, 0.6, MAX_BLOBS)
    by = LUNG_TOP + (LUNG_BOTTOM - LUNG_TOP) * t * 0.9
    sx, sy = d(0.07, 0.22, MAX_BLOBS), d(0.07, 0.22, MAX_BLOBS)
    count = 1 + np.floor(d(0, MAX_BLOBS - 1e-3))[:, :, :, None]  # 1..MAX_BLOBS, (N, 1, 1, 1)
    active = (np.arange(MAX_BLOBS, dtype=np.float32)[None, :, None, None] < count)
    strength = d(0.05, 0.30, MAX_BLOBS) * active * labels[:, None, None, None]
    spot = np.zeros_like(strength)
    spot[:, :1] = d(0.0, 0.14)[:, :, :, None] * (d(0, 1)[:, :, :, None] < 0.35)       # label-free
    sx = np.where(spot > 0, 0.035, sx)
    sy = np.where(spot > 0, 0.035, sy)
    # blob centres from anatomy back to pixel-grid coordinates (the inverse of the pose above)
    grid_x = zoom[:, None] * (cos[:, None] * bx - sin[:, None] * by) + shift_x[:, None]
    grid_y = zoom[:, None] * (sin[:, None] * bx + cos[:, None] * by) + shift_y[:, None]
    bumps = _blobs(g, strength + spot, grid_x, grid_y, sx * zoom[:, None], sy * zoom[:, None])
    patchy = 0.6 + 0.4 * _smooth_field(g, d, 5, (6.0, 14.0))
    haze = d(0.0, 0.10) * labels[:, None, None]                # diffuse infiltrate in some cases
    density = (bumps + haze) * np.clip(patchy, 0.0, 1.0)
    opacity = MAX_OPACITY * (1.0 - np.exp(-density / MAX_OPACITY)) * lungs  # overlapping blobs saturate
    img += opacity

    # exposure: slowly varying brightness, contrast, gamma, then film grain
    img += 0.03 * _smooth_field(g, d, 3, (1.0, 3.0))
    img = np.clip(d(0.85, 1.15) * (img - 0.3) + 0.3 + d(-0.05, 0.05), 0.0, 1.0) ** d(0.8, 1.25)
    img += d(0.015, 0.035) * noise
    return np.clip(img, 0.0, 1.0)


def make_phantoms(n: int, size: int = 64, seed: int = 0,
                  pneumonia_fraction: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic chest X-rays: images uint8 (N, size, size) and labels int64 (N,), 1 = pneumonia.

    Exactly round(n * pneumonia_fraction) images are pneumonia, in random order. Everything
    depends only on (n, size, seed, pneumonia_fraction).
    """
    if n < 0 or size < 8:
        raise ValueError(f"make_phantoms: need n >= 0 and size >= 8, got n={n}, size={size}")
    if not 0.0 <= pneumonia_fraction <= 1.0:
        raise ValueError(f"make_phantoms: pneumonia_fraction must be in [0, 1], got {pneumonia_fraction}")
    rng = make_rng(seed, 0)
    labels = np.zeros(n, dtype=np.int64)
    labels[: int(round(n * pneumonia_fraction))] = 1
    rng.shuffle(labels)
    u = rng.random((n, N_UNIFORMS))
    images = np.empty((n, size, size), dtype=np.uint8)
    chunk = max(1, 2 ** 20 // (size * size))  # keeps each (chunk, H, W) float32 temporary near 4 MB
    for i in range(0, n, chunk):
        j = min(n, i + chunk)
        noise = rng.standard_normal((j - i, size, size), dtype=np.float32)
        img = _render(u[i:j], noise, labels[i:j].astype(np.float32))
        images[i:j] = np.round(img * 255.0).astype(np.uint8)
    return images, labels


class PhantomDataset(Dataset):
    """A split of synthetic chest X-rays; items are (uint8 image (size, size), label int).

    Each split draws from its own seed derived from (seed, split), so train, val and test
    never share images, and the same arguments always give the same data.
    """

    classes = CLASSES

    def __init__(self, split: str = "train", n: int = 1000, size: int = 64, seed: int = 0,
                 transform: Callable | None = None, pneumonia_fraction: float = 0.5):
        if split not in SPLITS:
            raise ValueError(f"PhantomDataset: split must be one of {list(SPLITS)}, got {split!r}")
        derived = int(np.random.SeedSequence(int(seed), spawn_key=(SPLITS[split],)).generate_state(1)[0])
        self.split, self.transform = split, transform
        self.images, self.targets = make_phantoms(n, size, derived, pneumonia_fraction)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        i = check_index(index, len(self), "PhantomDataset")
        image = self.images[i]
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.targets[i])
