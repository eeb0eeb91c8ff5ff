"""Launch code for every kernel in kernels/*.cu, shared by the GPU loader and the CPU harness.

Each function takes `mod`, an object with `launch(kernel, grid, block, args)` and `grid_cap` (the most
blocks a 1-D grid may have: every kernel loops, so a capped grid is still correct), plus the input
and preallocated output arrays (NumPy for the CPU harness, CuPy on the GPU), and works out the
launch shape and the scalar arguments. Geometry arguments are already resolved: `pads` is
(top, left), and (oh, ow) is the output size.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

THREADS = 256          # every kernel is written for 256-thread blocks
DW_TILE, DW_PATCH, DW_TAPS = 16, 48, 64       # must match depthwise_conv.cu
C3_TP, C3_OC = 8, 16                          # must match conv3x3.cu

Dims = int | Sequence[int]
Pair = Sequence[int]  # (y, x) of a stride, dilation or kernel; pads as (top, bottom, left, right)


class Module(Protocol):
    grid_cap: int

    def launch(self, kernel: str, grid: Dims, block: Dims, args: Sequence[Any]) -> None: ...


def suffix(a: Any) -> str:
    """Entry-point suffix for an array's dtype ('f32' / 'f64'); a clear error for anything else."""
    name = str(a.dtype)
    if name == "float32":
        return "f32"
    if name == "float64":
        return "f64"
    raise TypeError(f"minicnn.cuda: kernels take float32 or float64 arrays, got {name}")


def blocks(mod: Module, units: int, per_block: int = THREADS) -> int:
    """Blocks for `units` work items at `per_block` each, capped at mod.grid_cap (kernels loop)."""
    return max(1, min(mod.grid_cap, -(-int(units) // per_block)))


def _window(k: Sequence[int], s: Sequence[int], pads: Sequence[int], d: Sequence[int], oh: int, ow: int) -> list[int]:
    return [k[0], k[1], s[0], s[1], pads[0], pads[1], d[0], d[1], oh, ow]


def im2col(mod: Module, x: Any, cols: Any, k: Sequence[int], s: Sequence[int], pads: Sequence[int],
           d: Sequence[int], out_hw: Sequence[int]) -> None:
    """x (N, C, H, W) -> cols (N, C*kh*kw, oh*ow)."""
    n, c, h, w = x.shape
    mod.launch(f"im2col_{suffix(x)}", blocks(mod, cols.size), THREADS,
               [x, cols, n, c, h, w, *_window(k, s, pads, d, *out_hw)])


def col2im(mod: Module, cols: Any, x: Any, k: Sequence[int], s: Sequence[int], pads: Sequence[int],
           d: Sequence[int], out_hw: Sequence[int]) -> None:
    """cols (N, C*kh*kw, oh*ow) -> x (N, C, H, W), overwriting x with the gathered sums."""
    n, c, h, w = x.shape
    mod.launch(f"col2im_{suffix(x)}", blocks(mod, x.size), THREADS,
               [cols, x, n, c, h, w, *_window(k, s, pads, d, *out_hw)])


def _dw_check(k: Sequence[int], s: Sequence[int], d: Sequence[int], who: str) -> None:
    fwd = [(DW_TILE - 1) * s[a] + (k[a] - 1) * d[a] + 1 for a in (0, 1)]
    bwd = [(DW_TILE - 1 + (k[a] - 1) * d[a]) // s[a] + 2 for a in (0, 1)]
    if k[0] * k[1] > DW_TAPS or max(fwd + bwd) > DW_PATCH:
        raise ValueError(f"minicnn.cuda.{who}: kernel {tuple(k)}, stride {tuple(s)}, dilation {tuple(d)} needs a "
                         f"shared patch of {max(fwd + bwd)} > {DW_PATCH} or more than {DW_TAPS} taps; "
                         "use the im2col path for this geometry")


def depthwise_forward(mod: Module, x: Any, w: Any, y: Any, s: Pair, pads: Pair, d: Pair) -> None:
    """x (N, C, H, W), w (C, 1, kh, kw) -> y (N, C, oh, ow)."""
    n, c, h, wd = x.shape
    k, (oh, ow) = w.shape[2:], y.shape[2:]
    _dw_check(k, s, d, "depthwise_forward")
    tiles = n * c * -(-oh // DW_TILE) * -(-ow // DW_TILE)
    mod.launch(f"depthwise_forward_{suffix(x)}", blocks(mod, tiles, 1), THREADS,
               [x, w, y, n, c, h, wd, *_window(k, s, pads, d, oh, ow)])


def depthwise_input_grad(mod: Module, dy: Any, w: Any, dx: Any, s: Pair, pads: Pair, d: Pair) -> None:
    """dy (N, C, oh, ow), w (C, 1, kh, kw) -> dx (N, C, H, W)."""
    n, c, h, wd = dx.shape
    k, (oh, ow) = w.shape[2:], dy.shape[2:]
    _dw_check(k, s, d, "depthwise_input_grad")
    tiles = n * c * -(-h // DW_TILE) * -(-wd // DW_TILE)
    mod.launch(f"depthwise_input_grad_{suffix(dy)}", blocks(mod, tiles, 1), THREADS,
               [dy, w, dx, n, c, h, wd, *_window(k, s, pads, d, oh, ow)])


def depthwise_weight_grad(mod: Module, x: Any, dy: Any, dw: Any, s: Pair, pads: Pair, d: Pair) -> None:
    """x (N, C, H, W), dy (N, C, oh, ow) -> dw (C, 1, kh, kw)."""
    n, c, h, wd = x.shape
    k, (oh, ow) = dw.shape[2:], dy.shape[2:]
    _dw_check(k, s, d, "depthwise_weight_grad")
    mod.launch(f"depthwise_weight_grad_{suffix(x)}", blocks(mod, c, 1), THREADS,
               [x, dy, dw, n, c, h, wd, *_window(k, s, pads, d, oh, ow)])


def maxpool_forward(mod: Module, x: Any, y: Any, idx: Any, k: Pair, s: Pair, pads: Pair) -> None:
    """x (N, C, H, W) -> y (N, C, oh, ow) and idx (same shape, int64: iy*W + ix of the first maximum)."""
    n, c, h, w = x.shape
    oh, ow = y.shape[2:]
    mod.launch(f"maxpool_forward_{suffix(x)}", blocks(mod, y.size), THREADS,
               [x, y, idx, n, c, h, w, k[0], k[1], s[0], s[1], pads[0], pads[1], oh, ow])


def maxpool_backward(mod: Module, dy: Any, idx: Any, dx: Any, k: Pair, s: Pair, pads: Pair) -> None:
    """dy, idx (N, C, oh, ow) -> dx (N, C, H, W)."""
    n, c, h, w = dx.shape
    oh, ow = dy.shape[2:]
    mod.launch(f"maxpool_backward_{suffix(dy)}", blocks(mod, dx.size), THREADS,
               [dy, idx, dx, n, c, h, w, k[0], k[1], s[0], s[1], pads[0], pads[1], oh, ow])


def avgpool_forward(mod: Module, x: Any, y: Any, k: Sequence[int], s: Sequence[int], pads: Sequence[int],
                    include_pad: bool) -> None:
    """x (N, C, H, W) -> y (N, C, oh, ow)."""
    n, c, h, w = x.shape
    oh, ow = y.shape[2:]
    mod.launch(f"avgpool_forward_{suffix(x)}", blocks(mod, y.size), THREADS,
               [x, y, n, c, h, w, k[0], k[1], s[0], s[1], pads[0], pads[1], oh, ow, int(include_pad)])


def avgpool_backward(mod: Module, dy: Any, dx: Any, k: Sequence[int], s: Sequence[int], pads: Sequence[int],
                     include_pad: bool) -> None:
    """dy (N, C, oh, ow) -> dx (N, C, H, W)."""
    n, c, h, w = dx.shape
    oh, ow = dy.shape[2:]
    mod.launch(f"avgpool_backward_{suffix(dy)}", blocks(mod, dx.size), THREADS,
               [dy, dx, n, c, h, w, k[0], k[1], s[0], s[1], pads[0], pads[1], oh, ow, int(include_pad)])


def _nc_inner(x: Any) -> tuple[int, int, int]:
    """(N, C, prod of the remaining dims) of an (N, C, ...) array."""
    inner = 1
    for v in x.shape[2:]:
        inner *= int(v)
    return int(x.shape[0]), int(x.shape[1]), inner


def bn_stats(mod: Module, x: Any, mean: Any, var: Any) -> None:
    """x (N, C, ...) float32 or float64 -> mean (C,), biased var (C,), both float64 (summed in double)."""
    n, c, hw = _nc_inner(x)
    mod.launch(f"bn_stats_{suffix(x)}", blocks(mod, c, 1), THREADS, [x, mean, var, n, c, hw])


def _channel_grid(mod: Module, n: int, c: int, hw: int) -> tuple[int, int]:
    """2-D grid of the per-channel elementwise kernels: (blocks over a channel's N*HW values,
    blocks over C), both capped so that the whole grid stays within mod.grid_cap blocks."""
    by = max(1, min(c, 65535, mod.grid_cap))
    return max(1, min(mod.grid_cap // by, -(-n * hw // THREADS))), by


def bn_forward(mod: Module, x: Any, mean: Any, var: Any, gamma: Any, beta: Any, y: Any, eps: float) -> None:
    """y = (x - mean) / sqrt(var + eps) * gamma + beta, per channel of x (N, C, ...); float64 mean, var (C,)."""
    n, c, hw = _nc_inner(x)
    mod.launch(f"bn_forward_{suffix(x)}", _channel_grid(mod, n, c, hw), THREADS,
               [x, mean, var, gamma, beta, y, n, c, hw, eps])


def bn_backward(mod: Module, x: Any, dy: Any, mean: Any, var: Any, gamma: Any, dx: Any, dgamma: Any, dbeta: Any,
                eps: float, training: bool = True) -> None:
    """dgamma, dbeta (C,) and dx (like x) from dy; float64 mean, var (C,), treated as batch statistics
    when `training` (as constants otherwise)."""
    n, c, hw = _nc_inner(x)
    mod.launch(f"bn_backward_reduce_{suffix(x)}", blocks(mod, c, 1), THREADS,
               [x, dy, mean, var, dgamma, dbeta, n, c, hw, eps])
    mod.launch(f"bn_backward_input_{suffix(x)}", _channel_grid(mod, n, c, hw), THREADS,
               [x, dy, mean, var, gamma, dgamma, dbeta, dx, n, c, hw, eps, int(training)])


ACTIVATIONS = {"none": 0, "relu": 1}


def bias_act(mod: Module, x: Any, bias: Any, y: Any, act: str = "relu") -> None:
    """y = act(x + bias[c]) for x (N, C, ...); y may be x (in place)."""
    if act not in ACTIVATIONS:
        raise ValueError(f"minicnn.cuda.bias_act: unknown activation {act!r}; expected one of {sorted(ACTIVATIONS)}")
    n, c, inner = _nc_inner(x)
    mod.launch(f"bias_act_{suffix(x)}", blocks(mod, x.size), THREADS, [x, bias, y, n, c, inner, ACTIVATIONS[act]])


def relu_backward(mod: Module, y: Any, dy: Any, dx: Any) -> None:
    """dx = dy where the ReLU output y > 0, else 0."""
    mod.launch(f"relu_backward_{suffix(y)}", blocks(mod, y.size), THREADS, [y, dy, dx, y.size])


def bias_grad(mod: Module, dy: Any, db: Any) -> None:
    """db[c] = sum of dy (N, C, ...) over every axis but 1."""
    n, c, inner = _nc_inner(dy)
    mod.launch(f"bias_grad_{suffix(dy)}", blocks(mod, c, 1), THREADS, [dy, db, n, c, inner])


def adam(mod: Module, p: Any, g: Any, m: Any, v: Any, step: int, lr: float, betas: tuple[float, float],
         eps: float, weight_decay: float, decoupled: bool) -> None:
    """One Adam (decoupled=False) or AdamW step on flat-contiguous p, updating p, m, v in place."""
    b1, b2 = float(betas[0]), float(betas[1])
    mod.launch(f"adam_{suffix(p)}", blocks(mod, p.size), THREADS,
               [p, g, m, v, p.size, lr, b1, b2, eps, weight_decay, 1.0 - b1 ** step, 1.0 - b2 ** step, int(decoupled)])


def conv3x3(mod: Module, x: Any, w: Any, y: Any, s: Sequence[int], pads: Sequence[int]) -> None:
    """x (N, C, H, W), w (O, C, 3, 3) -> y (N, O, oh, ow); stride 1 or 2, no dilation."""
    n, c, h, wd = x.shape
    o = w.shape[0]
    oh, ow = y.shape[2:]
    if tuple(w.shape[2:]) != (3, 3) or w.shape[1] != c or not set(s) <= {1, 2}:
        raise ValueError(f"minicnn.cuda.conv3x3: needs w (O, {c}, 3, 3) and stride 1 or 2; "
                         f"got w {tuple(w.shape)}, stride {tuple(s)}")
    tiles = n * -(-o // C3_OC) * -(-oh // C3_TP) * -(-ow // C3_TP)
    mod.launch(f"conv3x3_{suffix(x)}", blocks(mod, tiles, 1), THREADS,
               [x, w, y, n, c, h, wd, o, s[0], s[1], pads[0], pads[1], oh, ow])


def conv3x3_input_grad(mod: Module, dy: Any, w: Any, dx: Any, pads: Sequence[int]) -> None:
    """Stride-1 input gradient: dx = conv3x3(dy, w flipped and transposed, padding 2 - p)."""
    w_t = w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3).copy()   # (C, O, 3, 3)
    conv3x3(mod, dy, w_t, dx, (1, 1), (2 - pads[0], 2 - pads[1]))
