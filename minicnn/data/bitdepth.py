"""Bit depth of high-bit-depth images, so 12-bit X-rays stored in 16-bit files keep their contrast.

The rule (used by `load_image` and by the DataLoader's collate for uint16 arrays):
1. an explicit `bits` argument wins (set it when you know your scanner's depth: consistent
   scaling across every image of a dataset);
2. else the file's own declaration: a PNG `sBIT` chunk ("12 significant bits");
3. else the data's maximum: the smallest of 8, 10, 12, 14, 16 (then 24, 32) bits that holds it.
A value v then maps to round(v * 255 / (2**bits - 1)), so the brightest possible value is 255.
"""
from __future__ import annotations

import os
import struct

import numpy as np

CANDIDATE_BITS = (8, 10, 12, 14, 16, 24, 32)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_significant_bits(path: str | os.PathLike) -> int | None:
    """The grey sample's significant bits from a PNG's sBIT chunk, or None (no PNG, no chunk)."""
    try:
        with open(path, "rb") as f:
            if f.read(8) != PNG_SIGNATURE:
                return None
            while True:
                head = f.read(8)
                if len(head) < 8:
                    return None
                length, kind = struct.unpack(">I4s", head)
                if kind in (b"IDAT", b"IEND"):
                    return None  # sBIT must come before the image data
                data = f.read(length)
                f.seek(4, os.SEEK_CUR)  # CRC
                if kind == b"sBIT" and data:
                    return int(data[0])
    except OSError:
        return None


def detect_bits(max_value: float, declared: int | None = None) -> int:
    """Bit depth for an image whose largest value is `max_value` (see the module docstring)."""
    if declared is not None:
        if not 1 <= int(declared) <= 32:
            raise ValueError(f"bit depth must be in 1..32, got {declared}")
        return int(declared)
    for bits in CANDIDATE_BITS:
        if max_value <= (1 << bits) - 1:
            return bits
    raise ValueError(f"image values up to {max_value} exceed 32 bits")


def scale_to_uint8(a: np.ndarray, bits: int) -> np.ndarray:
    """Integer samples of `bits` significant bits -> uint8, v -> round(v * 255 / (2**bits - 1)), clipped."""
    scaled = np.rint(a.astype(np.float64) * (255.0 / ((1 << bits) - 1)))
    return np.clip(scaled, 0, 255).astype(np.uint8)


def scale_to_unit(a: np.ndarray, bits: int) -> np.ndarray:
    """Integer samples of `bits` significant bits -> float32 in [0, 1] (v / (2**bits - 1))."""
    return (a.astype(np.float32) * np.float32(1.0 / ((1 << bits) - 1))).clip(0.0, 1.0)
