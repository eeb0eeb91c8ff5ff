"""The "wide row" layout for stride-1 window ops (convolution, depthwise convolution).

Pad one sample's planes to (C, Hp, Wp) and flatten each to 1-D with row pitch Wp. The pixel
that kernel tap (i, j) reads for output (y, x) then sits at y*Wp + x + offset, offset =
i*d*Wp + j*d: the same for every output. So tap t's input for all outputs is ONE contiguous
slice flat[:, offset_t : offset_t + oh*Wp] (long, cache-friendly copies; no index arrays).
The output is computed for oh*Wp "wide" positions; the Wp - ow that wrap past a row's end
are garbage and cropped. One spare zero row under each plane keeps the last taps' slices
(up to (kw-1)*d pixels past the plane) inside the buffer.

Backward: the input gradient is the same sum with negated offsets, i.e. tap t's gradient
is added onto the slice it read (col2im with long slices); the output gradient is spread
into the wide layout with zeros in the garbage columns so they contribute nothing.
"""
from __future__ import annotations

from typing import Any

from ..ops.geometry import Pads, Pair


class WideLayout:
    """Geometry of one stride-1 window op on (N, C, H, W) inputs."""

    def __init__(self, x_shape: tuple, kernel: Pair, dilation: Pair, pads: Pads, out_hw: Pair):
        _, _, self.h, self.w = x_shape
        self.pads = pads
        self.hp, self.wp = self.h + pads[0] + pads[1], self.w + pads[2] + pads[3]
        self.hq = self.hp + (1 if kernel[1] > 1 else 0)   # + the spare row
        self.oh, self.ow = out_hw
        self.span = self.oh * self.wp                       # wide output positions
        self.offsets = [i * dilation[0] * self.wp + j * dilation[1] for i in range(kernel[0]) for j in range(kernel[1])]

    def new_plane_buffer(self, xp: Any, c: int, dtype: Any) -> Any:
        """Zeroed (c, Hq*Wp) buffer; pad_into only ever overwrites the interior, so the border stays 0."""
        return xp.zeros((c, self.hq * self.wp), dtype=dtype)

    def pad_into(self, xs: Any, flat: Any) -> Any:
        """Copy one sample's planes (c, H, W) into the interior of a plane buffer (c, Hq*Wp)."""
        t, left = self.pads[0], self.pads[2]
        flat.reshape(-1, self.hq, self.wp)[:, t:t + self.h, left:left + self.w] = xs
        return flat

    def crop(self, wide: Any) -> Any:
        """(..., oh*Wp) wide output -> (..., oh, ow) view without the wrap-around columns."""
        return wide.reshape(wide.shape[:-1] + (self.oh, self.wp))[..., :self.ow]

    def fill_taps(self, flat: Any, cols: Any, p0: int, p1: int) -> Any:
        """cols (..., T, p1-p0) <- for each tap t, flat[..., offset_t + p0 : offset_t + p1] (im2col)."""
        for t, o in enumerate(self.offsets):
            cols[..., t, :] = flat[..., o + p0:o + p1]
        return cols

    # ---- the input gradient as a correlation with negated offsets ----------------------------
    @property
    def lead(self) -> int:
        """Zeros in front of the wide output gradient, so that q - offset_t never goes below 0."""
        return max(self.offsets)

    def new_grad_buffer(self, xp: Any, c: int, dtype: Any) -> Any:
        """Zeroed (c, lead + Hq*Wp) buffer for the wide output gradient (spread_grad fills it)."""
        return xp.zeros((c, self.lead + self.hq * self.wp), dtype=dtype)

    def spread_grad(self, g: Any, gext: Any) -> Any:
        """Write one sample's output gradient (..., oh, ow) into gext (..., L); garbage columns stay 0."""
        self.crop(gext[..., self.lead:self.lead + self.span])[...] = g
        return gext[..., self.lead:self.lead + self.span]    # (..., oh*Wp) view, wide layout

    def fill_taps_flipped(self, gext: Any, cols: Any, p0: int, p1: int) -> Any:
        """cols (..., T, p1-p0) <- gext (..., L) shifted by -offset_t, for positions [p0, p1) of the
        H*Wp band of rows that hold real pixels: then gx = sum_t W_t^T @ cols[..., t, :] (a "full" conv)."""
        base = self.lead + self.pads[0] * self.wp
        for t, o in enumerate(self.offsets):
            cols[..., t, :] = gext[..., base - o + p0:base - o + p1]
        return cols

    def crop_grad(self, rows: Any) -> Any:
        """(c, H*Wp) gradient rows -> (c, H, W) real pixels, a view."""
        left = self.pads[2]
        return rows.reshape(-1, self.h, self.wp)[:, :, left:left + self.w]

    def bands(self, bytes_per_position: int, budget: int, length: int | None = None) -> list[tuple[int, int]]:
        """Split positions [0, length or oh*Wp) into pieces whose column matrix fits `budget` bytes."""
        length = self.span if length is None else length
        step = max(256, budget // max(bytes_per_position, 1))
        return [(p, min(p + step, length)) for p in range(0, length, step)]
