"""Every kernels/*.cu entry point executed on the CPU (minicnn.cuda.cpu_harness) against NumPy, and
the very same tests on a real GPU through CuPy (the `gpu` variants, skipped where there is none).

Inputs are odd shapes larger than one tile, grids are capped at 3 blocks so the grid-stride loops
really loop, outputs start as NaN (an unwritten element shows), every buffer has guard zones
(an out-of-bounds write raises naming the argument), shared memory is poisoned before each block,
and every test runs with threads and blocks in forward and in shuffled order.
"""
from __future__ import annotations

import numpy as np
import pytest
from cuda_refs import col2im_ref, im2col_ref, maxpool_ref, out_size, vjp, windows

import minicnn.cuda as mc
import minicnn.nn.functional as F
from minicnn.cuda import launches as L
from minicnn.cuda.cpu_harness import CpuModule, compiler_available

_MODS: dict = {}
TOL = {np.float32: {"rtol": 2e-5, "atol": 2e-5}, np.float64: {"rtol": 1e-11, "atol": 1e-11}}


@pytest.fixture(params=["forward", "shuffled", pytest.param("gpu", marks=pytest.mark.gpu)])
def order(request):
    if request.param == "gpu":
        if not mc.is_available():
            try:
                mc.require()
            except mc.CudaUnavailable as e:
                pytest.skip(f"no usable GPU: {e}")
    elif not compiler_available():
        pytest.skip("no C++ compiler (g++) to build the CPU harness")
    return request.param


class GpuViaNumpy:
    """The GPU module behind a NumPy-in, NumPy-out launch(), so the CPU tests run unchanged on the GPU."""

    def __init__(self, name: str):
        self.cp = mc.require()
        self.mod = mc.module(name)
        self.grid_cap = self.mod.grid_cap

    def launch(self, kernel, grid, block, args):
        dev = [self.cp.asarray(a) if isinstance(a, np.ndarray) else a for a in args]
        self.mod.launch(kernel, grid, block, dev)
        self.cp.cuda.Device().synchronize()
        for a, d in zip(args, dev):
            if isinstance(a, np.ndarray):
                a[...] = self.cp.asnumpy(d)


def mod(name: str, order: str):
    key = (name, order)
    if key not in _MODS:
        shuffled = order == "shuffled"
        _MODS[key] = GpuViaNumpy(name) if order == "gpu" else CpuModule(name, grid_cap=3, shuffle=shuffled, seed=7)
    return _MODS[key]


def nans(shape, dtype) -> np.ndarray:
    return np.full(shape, np.nan, dtype=dtype)


def close(got, want, dtype):
    np.testing.assert_allclose(got, want, **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k,s,p,d", [((3, 3), (1, 1), (1, 1), (1, 1)), ((3, 2), (2, 3), (1, 0), (2, 1))])
def test_im2col_col2im(order, dtype, k, s, p, d, rng):
    x = rng.standard_normal((2, 3, 11, 13)).astype(dtype)
    oh, ow = out_size(11, k[0], s[0], p[0], d[0]), out_size(13, k[1], s[1], p[1], d[1])
    cols = nans((2, 3 * k[0] * k[1], oh * ow), dtype)
    L.im2col(mod("im2col", order), x, cols, k, s, p, d, (oh, ow))
    np.testing.assert_array_equal(cols, im2col_ref(x, k, s, p, d))
    g = rng.standard_normal(cols.shape).astype(dtype)
    back = nans(x.shape, dtype)
    L.col2im(mod("col2im", order), g, back, k, s, p, d, (oh, ow))
    close(back, col2im_ref(g, x.shape, k, s, p, d), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k,s,p,d", [((3, 3), (1, 1), (1, 1), (1, 1)), ((5, 3), (2, 1), (2, 1), (1, 2))])
def test_depthwise(order, dtype, k, s, p, d, rng):
    n, c, h, w = 2, 3, 19, 18                         # more than one 16x16 tile each way
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((c, 1, *k)).astype(dtype)
    oh, ow = out_size(h, k[0], s[0], p[0], d[0]), out_size(w, k[1], s[1], p[1], d[1])
    gy = rng.standard_normal((n, c, oh, ow)).astype(dtype)
    m = mod("depthwise_conv", order)
    y, dx, dw = nans(gy.shape, dtype), nans(x.shape, dtype), nans(wt.shape, dtype)
    L.depthwise_forward(m, x, wt, y, s, p, d)
    L.depthwise_input_grad(m, gy, wt, dx, s, p, d)
    L.depthwise_weight_grad(m, x, gy, dw, s, p, d)
    ref_y, (ref_dx, ref_dw) = vjp(lambda a, b: F.depthwise_conv2d(a, b, stride=s, padding=p, dilation=d),
                                  [x.astype(np.float64), wt.astype(np.float64)], gy.astype(np.float64))
    # the reference itself: sum of taps written with plain slicing
    direct = np.einsum("ncijyx,cij->ncyx", windows(x.astype(np.float64), k, s, p, d), wt[:, 0].astype(np.float64))
    np.testing.assert_allclose(ref_y, direct, rtol=1e-12, atol=1e-12)
    close(y, ref_y, dtype)
    close(dx, ref_dx, dtype)
    np.testing.assert_allclose(dw, ref_dw, rtol=TOL[dtype]["rtol"] * 10, atol=TOL[dtype]["atol"] * 10)


def test_depthwise_rejects_too_large_geometry():
    m = mod("depthwise_conv", "forward")
    x = np.zeros((1, 1, 40, 40), np.float32)
    w = np.zeros((1, 1, 9, 9), np.float32)
    with pytest.raises(ValueError, match="taps"):
        L.depthwise_forward(m, x, w, np.zeros((1, 1, 32, 32), np.float32), (1, 1), (0, 0), (1, 1))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k,s,p", [((2, 2), (2, 2), (0, 0)), ((3, 3), (2, 2), (1, 1)), ((3, 2), (1, 2), (1, 0))])
def test_maxpool(order, dtype, k, s, p, rng):
    x = rng.standard_normal((2, 3, 11, 14)).astype(dtype)
    x[0, 0, :2, :2] = 1.5                              # ties: the first maximum must win
    ref_y, ref_idx = maxpool_ref(x, k, s, p)
    m = mod("maxpool", order)
    y, idx = nans(ref_y.shape, dtype), np.full(ref_y.shape, -7, np.int64)
    L.maxpool_forward(m, x, y, idx, k, s, p)
    np.testing.assert_array_equal(y, ref_y)
    np.testing.assert_array_equal(idx, ref_idx)
    gy = rng.standard_normal(y.shape).astype(dtype)
    dx = nans(x.shape, dtype)
    L.maxpool_backward(m, gy, idx, dx, k, s, p)
    _, (ref_dx,) = vjp(lambda a: F.max_pool2d(a, k, s, p), [x.astype(np.float64)], gy.astype(np.float64))
    close(dx, ref_dx, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k,s,p,include", [((3, 3), (2, 2), (1, 1), True), ((3, 3), (2, 2), (1, 1), False),
                                           ((2, 3), (2, 1), (0, 1), True)])
def test_avgpool(order, dtype, k, s, p, include, rng):
    x = rng.standard_normal((2, 3, 11, 14)).astype(dtype)
    oh, ow = out_size(11, k[0], s[0], p[0]), out_size(14, k[1], s[1], p[1])
    gy = rng.standard_normal((2, 3, oh, ow)).astype(dtype)
    m = mod("avgpool", order)
    y, dx = nans(gy.shape, dtype), nans(x.shape, dtype)
    L.avgpool_forward(m, x, y, k, s, p, include)
    L.avgpool_backward(m, gy, dx, k, s, p, include)
    ref_y, (ref_dx,) = vjp(lambda a: F.avg_pool2d(a, k, s, p, count_include_pad=include),
                           [x.astype(np.float64)], gy.astype(np.float64))
    close(y, ref_y, dtype)
    close(dx, ref_dx, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bn_stats(order, dtype, rng):
    x = rng.standard_normal((3, 5, 9, 11)) * 2.0
    x = np.maximum(x, 0) + 300.0                       # post-ReLU with a large offset: naive E[x^2]-E[x]^2 fails here
    xd = x.astype(dtype)
    mean, var = nans(5, np.float64), nans(5, np.float64)   # float64 statistics for both dtypes (double sums)
    L.bn_stats(mod("batchnorm_stats", order), xd, mean, var)
    x64 = xd.astype(np.float64)
    ref_m, ref_v = x64.mean(axis=(0, 2, 3)), x64.var(axis=(0, 2, 3))
    np.testing.assert_allclose(mean, ref_m, rtol=1e-13)
    np.testing.assert_allclose(var, ref_v, rtol=1e-11)
    if dtype == np.float32:
        naive = (xd * xd).mean(axis=(0, 2, 3), dtype=np.float32) - xd.mean(axis=(0, 2, 3), dtype=np.float32) ** 2
        assert np.abs(naive - ref_v).max() > 1e6 * np.abs(var - ref_v).max()  # the careful path is really better


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("training", [True, False])
def test_bn_apply(order, dtype, training, rng):
    n, c, h, w = 7, 4, 7, 9                            # N*H*W = 441 > 256: the grid-stride walk wraps rows
    x = (rng.standard_normal((n, c, h, w)) * 1.5 + 0.5).astype(dtype)
    gamma = rng.uniform(0.5, 1.5, c).astype(dtype)
    beta = rng.standard_normal(c).astype(dtype)
    gy = rng.standard_normal(x.shape).astype(dtype)
    eps = 1e-5
    if training:
        mean, var = x.astype(np.float64).mean(axis=(0, 2, 3)), x.astype(np.float64).var(axis=(0, 2, 3))
    else:
        mean, var = rng.standard_normal(c) * 0.1, rng.uniform(0.5, 2.0, c)
    m = mod("batchnorm_apply", order)
    y, dx, dg, db = nans(x.shape, dtype), nans(x.shape, dtype), nans(c, dtype), nans(c, dtype)
    L.bn_forward(m, x, mean, var, gamma, beta, y, eps)     # statistics are float64 for both dtypes
    L.bn_backward(m, x, gy, mean, var, gamma, dx, dg, db, eps, training)
    rm, rv = mean.copy(), var.copy()
    ref_y, (ref_dx, ref_dg, ref_db) = vjp(
        lambda a, g_, b_: F.batch_norm(a, rm, rv, g_, b_, training=training, eps=eps),
        [x.astype(np.float64), gamma.astype(np.float64), beta.astype(np.float64)], gy.astype(np.float64))
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-9, "atol": 1e-9}
    np.testing.assert_allclose(y, ref_y, **tol)
    np.testing.assert_allclose(dx, ref_dx, **tol)
    np.testing.assert_allclose(dg, ref_dg, **tol)
    np.testing.assert_allclose(db, ref_db, **tol)


@pytest.mark.parametrize("kind", ["large_mean", "tiny_variance"])
def test_bn_float32_accuracy_far_from_zero(order, kind, rng):
    """|mean| / sigma = 1e4 and sigma = 1e-4 at 0.5: stats + forward + backward in float32 within a
    few float32 roundings of float64 on the same values (a float32 mean alone is off by ~1e-4 sigma)."""
    loc, sigma = (100.0, 0.01) if kind == "large_mean" else (0.5, 1e-4)
    n, c, h, w = 4, 3, 17, 19
    x = (loc + sigma * rng.standard_normal((n, c, h, w))).astype(np.float32)
    gamma, beta = np.linspace(0.5, 1.5, c), np.linspace(-0.2, 0.2, c)
    z = (x - x.mean(axis=(0, 2, 3), keepdims=True)) / x.std(axis=(0, 2, 3), keepdims=True)
    gy = 0.5 + np.cos(np.arange(x.size).reshape(x.shape) * 0.37) + 0.3 * z   # sums well conditioned
    outs = []
    for dt in (np.float32, np.float64):
        mean, var = nans(c, np.float64), nans(c, np.float64)
        L.bn_stats(mod("batchnorm_stats", order), x.astype(dt), mean, var)
        m = mod("batchnorm_apply", order)
        y, dx, dg, db = nans(x.shape, dt), nans(x.shape, dt), nans(c, dt), nans(c, dt)
        args = [x.astype(dt), gy.astype(np.float32).astype(dt), mean, var, gamma.astype(dt)]
        L.bn_forward(m, args[0], mean, var, gamma.astype(dt), beta.astype(dt), y, 1e-5 * sigma ** 2)
        L.bn_backward(m, *args, dx, dg, db, 1e-5 * sigma ** 2, True)
        outs.append((y, dx, dg, db))
    for name, a, b in zip(("y", "dx", "dgamma", "dbeta"), *outs):
        err = np.linalg.norm(a.astype(np.float64) - b) / np.linalg.norm(b)
        assert err < 3e-7, f"{kind} {name}: float32 relative error {err:.2e}"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bias_act(order, dtype, rng):
    x = rng.standard_normal((3, 5, 7, 9)).astype(dtype)
    b = rng.standard_normal(5).astype(dtype)
    m = mod("bias_act", order)
    for act in ("none", "relu"):
        y = nans(x.shape, dtype)
        L.bias_act(m, x, b, y, act)
        want = x + b[:, None, None]
        np.testing.assert_array_equal(y, np.maximum(want, 0) if act == "relu" else want)
    inplace = x.copy()
    L.bias_act(m, inplace, b, inplace, "relu")
    np.testing.assert_array_equal(inplace, np.maximum(x + b[:, None, None], 0))
    gy = rng.standard_normal(x.shape).astype(dtype)
    dx, db = nans(x.shape, dtype), nans(5, dtype)
    L.relu_backward(m, inplace, gy, dx)
    np.testing.assert_array_equal(dx, np.where(inplace > 0, gy, 0))
    L.bias_grad(m, gy, db)
    close(db, gy.astype(np.float64).sum(axis=(0, 2, 3)), dtype)
    lin, dbl = rng.standard_normal((37, 6)).astype(dtype), nans(6, dtype)   # (N, F) after a linear layer
    L.bias_grad(m, lin, dbl)
    close(dbl, lin.astype(np.float64).sum(axis=0), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("decoupled", [False, True])
def test_adam(order, dtype, decoupled, rng):
    n = 1000
    p = rng.standard_normal(n).astype(dtype)
    m_, v_ = (rng.standard_normal(n) * 0.1).astype(dtype), rng.uniform(0, 0.01, n).astype(dtype)
    g = rng.standard_normal(n).astype(dtype)
    lr, betas, eps, wd, step = 1e-2, (0.9, 0.999), 1e-8, 0.05, 3
    rp, rm, rv, rg = (a.astype(np.float64) for a in (p, m_, v_, g))
    if decoupled:
        rp = rp * (1 - lr * wd)
    else:
        rg = rg + wd * rp
    rm = betas[0] * rm + (1 - betas[0]) * rg
    rv = betas[1] * rv + (1 - betas[1]) * rg * rg
    rp = rp - lr / (1 - betas[0] ** step) * rm / (np.sqrt(rv) / np.sqrt(1 - betas[1] ** step) + eps)
    L.adam(mod("adam", order), p, g, m_, v_, step, lr, betas, eps, wd, decoupled)
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-13}
    np.testing.assert_allclose(m_, rm, **tol)
    np.testing.assert_allclose(v_, rv, **tol)
    np.testing.assert_allclose(p, rp, **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("s,p", [((1, 1), (1, 1)), ((2, 1), (0, 1))])
def test_conv3x3(order, dtype, s, p, rng):
    n, c, h, w, o = 2, 11, 10, 9, 19                    # C not a multiple of 8, O not of 16, tiles > 1
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((o, c, 3, 3)).astype(dtype)
    oh, ow = out_size(h, 3, s[0], p[0]), out_size(w, 3, s[1], p[1])
    gy = rng.standard_normal((n, o, oh, ow)).astype(dtype)
    m = mod("conv3x3", order)
    y = nans(gy.shape, dtype)
    L.conv3x3(m, x, wt, y, s, p)
    ref_y, (ref_dx, _) = vjp(lambda a, b: F.conv2d(a, b, stride=s, padding=p),
                             [x.astype(np.float64), wt.astype(np.float64)], gy.astype(np.float64))
    direct = np.einsum("ncijyx,ocij->noyx", windows(x.astype(np.float64), (3, 3), s, p, (1, 1)), wt.astype(np.float64))
    np.testing.assert_allclose(ref_y, direct, rtol=1e-12, atol=1e-12)
    tol = {"rtol": 1e-4, "atol": 1e-4} if dtype == np.float32 else {"rtol": 1e-11, "atol": 1e-11}
    np.testing.assert_allclose(y, ref_y, **tol)
    if s == (1, 1):
        dx = nans(x.shape, dtype)
        L.conv3x3_input_grad(m, gy, wt, dx, p)
        np.testing.assert_allclose(dx, ref_dx, **tol)
