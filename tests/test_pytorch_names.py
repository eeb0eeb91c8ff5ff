"""Issue 10: PyTorch's names and conventions, each against values computed here by hand or
by plain NumPy loops: ceil_mode, adaptive max pooling, nll_loss, weight= on the BCE losses,
dim= / keepdim=, transpose(dim0, dim1), F.pad's flat tuple and modes, max ties."""
from __future__ import annotations

import math

import numpy as np
import pytest

import minicnn.nn.functional as F
from minicnn import Tensor, nn
from minicnn.gradcheck import gradcheck
from minicnn.ops import adaptive_max_pool2d_naive, avg_pool2d_naive, max_pool2d_naive, maximum


# ---- ceil_mode ---------------------------------------------------------------------------
def ceil_out(size: int, k: int, s: int, p: int) -> int:
    """PyTorch's documented rule, written independently: ceil, then drop a last window that
    would start at or past the end of the input plus left padding."""
    out = math.ceil((size + 2 * p - k) / s) + 1
    return out - 1 if (out - 1) * s >= size + p else out


@pytest.mark.parametrize("size, k, s, p", [(5, 2, 2, 0), (5, 2, 2, 1), (7, 3, 2, 1), (6, 3, 3, 0), (8, 3, 2, 1),
                                           (9, 2, 3, 0)])
def test_ceil_mode_output_size_and_values(size, k, s, p, rng):
    x = rng.standard_normal((2, 3, size, size + 1))
    oh, ow = ceil_out(size, k, s, p), ceil_out(size + 1, k, s, p)
    ym = F.max_pool2d(Tensor(x), k, s, p, ceil_mode=True)
    ya = F.avg_pool2d(Tensor(x), k, s, p, ceil_mode=True)
    assert ym.shape == ya.shape == (2, 3, oh, ow)
    for oy in range(oh):
        for ox in range(ow):
            y0, x0 = oy * s - p, ox * s - p
            win = x[:, :, max(y0, 0):min(y0 + k, size), max(x0, 0):min(x0 + k, size + 1)]
            np.testing.assert_allclose(ym.data[:, :, oy, ox], win.max(axis=(2, 3)))
            # count_include_pad=True: the given padding counts, the part past it (ceil's overhang) not
            div = (min(y0 + k, size + p) - y0) * (min(x0 + k, size + 1 + p) - x0)
            np.testing.assert_allclose(ya.data[:, :, oy, ox], win.sum(axis=(2, 3)) / div)
    yx = F.avg_pool2d(Tensor(x), k, s, p, ceil_mode=True, count_include_pad=False)
    np.testing.assert_allclose(yx.data, avg_pool2d_naive(Tensor(x), k, s, p, False, ceil_mode=True).data)
    np.testing.assert_allclose(ym.data, max_pool2d_naive(Tensor(x), k, s, p, ceil_mode=True).data)
    np.testing.assert_allclose(ya.data, avg_pool2d_naive(Tensor(x), k, s, p, True, ceil_mode=True).data)


def test_ceil_mode_gradcheck_and_layers(rng):
    x = Tensor(rng.standard_normal((1, 2, 7, 5)), requires_grad=True)
    assert gradcheck(lambda t: F.max_pool2d(t, 3, 2, 1, ceil_mode=True), [x])
    assert gradcheck(lambda t: F.avg_pool2d(t, 3, 2, 1, ceil_mode=True), [x])
    assert gradcheck(lambda t: F.avg_pool2d(t, 2, 2, ceil_mode=True, count_include_pad=False), [x])
    assert nn.MaxPool2d(2, ceil_mode=True)(x).shape == (1, 2, 4, 3)
    assert nn.MaxPool2d(2)(x).shape == (1, 2, 3, 2)
    assert nn.AvgPool2d(3, 2, 1, ceil_mode=True)(x).shape == (1, 2, 4, 3)
    assert "ceil_mode=True" in repr(nn.MaxPool2d(2, ceil_mode=True))


# ---- adaptive max pooling ----------------------------------------------------------------
@pytest.mark.parametrize("hw, out", [((7, 9), (3, 4)), ((5, 5), 2), ((6, 4), (6, 4)), ((10, 3), (4, 1))])
def test_adaptive_max_pool_bins_values_and_indices(hw, out, rng):
    x = rng.standard_normal((2, 3) + hw)
    y, idx = F.adaptive_max_pool2d(Tensor(x), out, return_indices=True)
    oh, ow = (out, out) if isinstance(out, int) else out
    h, w = hw
    assert y.shape == (2, 3, oh, ow)
    for i in range(oh):
        for j in range(ow):  # PyTorch's bins: floor(i*H/out) .. ceil((i+1)*H/out)
            a, b = (i * h) // oh, math.ceil((i + 1) * h / oh)
            c, d = (j * w) // ow, math.ceil((j + 1) * w / ow)
            np.testing.assert_array_equal(y.data[:, :, i, j], x[:, :, a:b, c:d].max(axis=(2, 3)))
    np.testing.assert_array_equal(np.take_along_axis(x.reshape(2, 3, -1), idx.data.reshape(2, 3, -1), 2),
                                  y.data.reshape(2, 3, -1))
    np.testing.assert_array_equal(y.data, adaptive_max_pool2d_naive(Tensor(x), out).data)
    np.testing.assert_array_equal(nn.AdaptiveMaxPool2d(out)(Tensor(x)).data, y.data)


def test_adaptive_max_pool_gradcheck_and_overlapping_bins(rng):
    x = Tensor(rng.standard_normal((2, 2, 7, 5)), requires_grad=True)
    assert gradcheck(lambda t: F.adaptive_max_pool2d(t, (3, 2)), [x])  # 7 -> 3: bins overlap
    xt = Tensor(x.data, requires_grad=True)
    xn = Tensor(x.data, requires_grad=True)
    gy = rng.standard_normal((2, 2, 3, 2))
    F.adaptive_max_pool2d(xt, (3, 2)).backward(gy)
    adaptive_max_pool2d_naive(xn, (3, 2)).backward(gy)
    np.testing.assert_allclose(xt.grad.data, xn.grad.data)


# ---- nll_loss ----------------------------------------------------------------------------
def test_nll_loss_weight_ignore_index_reductions(rng):
    logp = np.log(rng.dirichlet(np.ones(4), size=6))          # (6, 4) log-probabilities
    t = np.array([0, 3, 1, -100, 2, 3])
    w = np.array([1.0, 2.0, 0.5, 3.0])
    per = np.array([0.0 if ti == -100 else -w[ti] * logp[i, ti] for i, ti in enumerate(t)])
    keep_w = sum(w[ti] for ti in t if ti != -100)
    x = Tensor(logp)
    np.testing.assert_allclose(F.nll_loss(x, t, w, reduction="none").data, per)
    assert F.nll_loss(x, t, w, reduction="sum").item() == pytest.approx(per.sum())
    assert F.nll_loss(x, t, w).item() == pytest.approx(per.sum() / keep_w)
    assert nn.NLLLoss(w)(x, t).item() == pytest.approx(per.sum() / keep_w)
    t2 = np.array([0, 3, 1, 1, 2, 3])
    assert F.nll_loss(x, t2, ignore_index=1).item() == pytest.approx(
        -np.mean([logp[i, ti] for i, ti in enumerate(t2) if ti != 1]))
    xg = Tensor(logp, requires_grad=True)
    assert gradcheck(lambda a: F.nll_loss(a, t, w), [xg])


def test_nll_of_log_softmax_is_cross_entropy_and_spatial_targets(rng):
    z = rng.standard_normal((5, 3))
    t = np.array([2, 0, 1, 1, 0])
    assert F.nll_loss(F.log_softmax(Tensor(z), dim=1), t).item() == pytest.approx(F.cross_entropy(Tensor(z), t).item())
    logp = np.log(rng.dirichlet(np.ones(3), size=(2, 4, 5))).transpose(0, 3, 1, 2)  # (N, C, H, W)
    ts = rng.integers(0, 3, size=(2, 4, 5))
    ref = -np.mean(np.take_along_axis(logp, ts[:, None], 1))
    assert F.nll_loss(Tensor(logp), ts).item() == pytest.approx(ref)
    with pytest.raises(ValueError, match=r"NLLLoss: target classes must be in \[0, 2\]"):
        F.nll_loss(Tensor(z), np.array([0, 1, 5, 0, 0]))


# ---- weight= on the BCE losses -----------------------------------------------------------
def test_bce_weight_is_pytorch_elementwise_rescaling(rng):
    p = rng.uniform(0.05, 0.95, (4, 3))
    y = (rng.random((4, 3)) < 0.5).astype(float)
    w = np.array([1.0, 0.5, 2.0])                               # broadcast on the last axis (PyTorch)
    el = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert F.binary_cross_entropy(Tensor(p), y, w).item() == pytest.approx((w * el).mean())
    assert nn.BCELoss(weight=w)(Tensor(p), y).item() == pytest.approx((w * el).mean())
    z = np.log(p / (1 - p))
    assert F.binary_cross_entropy_with_logits(Tensor(z), y, weight=w, reduction="sum").item() == \
        pytest.approx((w * el).sum())
    assert nn.BCEWithLogitsLoss(w, pos_weight=np.array([2.0, 1.0, 1.0]))(Tensor(z), y).item() == pytest.approx(
        (w * el * np.where(y == 1, [2.0, 1.0, 1.0], 1.0)).mean())
    # Keras' sample_weight stays: one weight per sample (first axis), beside weight=
    sw = np.array([1.0, 0.0, 2.0, 1.0])
    assert F.binary_cross_entropy(Tensor(p), y, weight=w, sample_weight=sw).item() == pytest.approx(
        (w * el * sw[:, None]).mean())
    zt = Tensor(z, requires_grad=True)
    assert gradcheck(lambda a: F.binary_cross_entropy_with_logits(a, y, weight=w), [zt])
    with pytest.raises(ValueError, match=r"weight of shape \(4,\) does not broadcast"):
        F.binary_cross_entropy(Tensor(p), y, weight=np.ones(4))


# ---- dim= / keepdim= ---------------------------------------------------------------------
def test_reductions_take_dim_and_keepdim(rng):
    a = rng.standard_normal((3, 4, 5))
    x = Tensor(a)
    np.testing.assert_allclose(x.sum(dim=1).data, a.sum(axis=1))
    np.testing.assert_allclose(x.sum(1, True).data, a.sum(axis=1, keepdims=True))
    np.testing.assert_allclose(x.mean(dim=(0, 2), keepdim=True).data, a.mean(axis=(0, 2), keepdims=True))
    np.testing.assert_allclose(x.mean(axis=2, keepdims=True).data, a.mean(axis=2, keepdims=True))
    np.testing.assert_allclose(x.amax(dim=2).data, a.max(axis=2))
    np.testing.assert_allclose(x.amin(dim=0, keepdim=True).data, a.min(axis=0, keepdims=True))
    np.testing.assert_array_equal(x.argmax(dim=1).data, a.argmax(axis=1))
    np.testing.assert_array_equal(x.argmin(dim=2, keepdim=True).data, a.argmin(axis=2)[..., None])
    np.testing.assert_array_equal(x.argmax().data, a.argmax())
    e = np.exp(a - a.max(axis=1, keepdims=True))
    np.testing.assert_allclose(x.softmax(dim=1).data, e / e.sum(axis=1, keepdims=True))
    np.testing.assert_allclose(x.log_softmax(1).data, np.log(e / e.sum(axis=1, keepdims=True)))
    for call in (lambda: x.sum(dim=0, axis=0), lambda: x.mean(keepdim=True, keepdims=True),
                 lambda: x.max(dim=0, axis=1), lambda: x.var(dim=0, axis=0)):
        with pytest.raises(TypeError, match="pass one"):
            call()


def test_max_with_dim_returns_values_and_indices_like_pytorch(rng):
    a = rng.standard_normal((3, 4))
    x = Tensor(a)
    v, i = x.max(dim=1)
    np.testing.assert_allclose(v.data, a.max(axis=1))
    np.testing.assert_array_equal(i.data, a.argmax(axis=1))
    out = x.min(0, keepdim=True)
    np.testing.assert_allclose(out.values.data, a.min(axis=0, keepdims=True))
    np.testing.assert_array_equal(out.indices.data, a.argmin(axis=0)[None])
    np.testing.assert_allclose(x.max(axis=1).data, a.max(axis=1))  # NumPy spelling: values only
    assert x.max().item() == a.max()
    np.testing.assert_allclose(x.max(Tensor(np.zeros((3, 4)))).data, np.maximum(a, 0))  # max(other)


def test_tie_gradient_conventions_documented():
    """Where several entries tie for the maximum:
    * full max() / amax(): minicnn splits the gradient equally, as PyTorch does;
    * max(dim) values: minicnn splits equally too, PyTorch sends all of it to the returned index;
    * maximum(a, b) with a == b: minicnn gives it all to a; PyTorch splits it in half;
    * max-pool: the first maximal element of the window takes it, as in PyTorch."""
    x = Tensor(np.array([1.0, 3.0, 3.0]), requires_grad=True)
    x.max().backward()
    np.testing.assert_allclose(x.grad.data, [0.0, 0.5, 0.5])
    x = Tensor(np.array([[1.0, 3.0, 3.0]]), requires_grad=True)
    x.max(dim=1).values.sum().backward()
    np.testing.assert_allclose(x.grad.data, [[0.0, 0.5, 0.5]])
    a, b = Tensor(np.array([2.0]), requires_grad=True), Tensor(np.array([2.0]), requires_grad=True)
    maximum(a, b).sum().backward()
    assert (a.grad.item(), b.grad.item()) == (1.0, 0.0)
    p = Tensor(np.array([[[[5.0, 5.0], [5.0, 1.0]]]]), requires_grad=True)
    F.max_pool2d(p, 2).sum().backward()
    np.testing.assert_allclose(p.grad.data, [[[[1.0, 0.0], [0.0, 0.0]]]])


# ---- transpose / permute -----------------------------------------------------------------
def test_transpose_swaps_two_dims_like_pytorch(rng):
    a = rng.standard_normal((2, 3, 4))
    x = Tensor(a, requires_grad=True)
    np.testing.assert_array_equal(x.transpose(0, 2).data, np.swapaxes(a, 0, 2))
    np.testing.assert_array_equal(x.transpose(-1, 1).data, np.swapaxes(a, 2, 1))
    np.testing.assert_array_equal(x.permute(2, 0, 1).data, a.transpose(2, 0, 1))
    np.testing.assert_array_equal(x.permute((1, 2, 0)).data, a.transpose(1, 2, 0))
    np.testing.assert_array_equal(Tensor(a[0]).T.data, a[0].T)
    assert gradcheck(lambda t: t.transpose(1, 2), [x])


def test_transpose_and_permute_errors_name_dims_and_shape():
    m = Tensor(np.zeros((2, 3)))
    with pytest.raises(IndexError, match=r"transpose\(0, 2\).*dim 2 is out of range for a 2-D tensor of shape \(2, 3"):
        m.transpose(0, 2)
    with pytest.raises(TypeError, match=r"swaps two dims.*permute"):
        Tensor(np.zeros((2, 3, 4))).transpose(2, 0, 1)
    with pytest.raises(ValueError, match=r"permute\(0, 0\).*permutation of all 2 dims.*\(2, 3\)"):
        m.permute(0, 0)


# ---- F.pad -------------------------------------------------------------------------------
def test_pad_flat_tuple_pads_last_dims_first(rng):
    a = rng.standard_normal((2, 3, 4, 5))
    y = F.pad(Tensor(a), (1, 1))                                # PyTorch: the last dim only
    np.testing.assert_array_equal(y.data, np.pad(a, [(0, 0), (0, 0), (0, 0), (1, 1)]))
    y = F.pad(Tensor(a), (1, 2, 3, 0), value=-1.0)              # W by (1, 2), H by (3, 0)
    np.testing.assert_array_equal(y.data, np.pad(a, [(0, 0), (0, 0), (3, 0), (1, 2)], constant_values=-1.0))
    y = F.pad(Tensor(a), (-1, 0, 0, -2))                        # negative amounts crop
    np.testing.assert_array_equal(y.data, a[:, :, :2, 1:])


@pytest.mark.parametrize("mode, np_mode", [("reflect", "reflect"), ("replicate", "edge"), ("circular", "wrap")])
def test_pad_modes_match_numpy_and_gradcheck(mode, np_mode, rng):
    a = rng.standard_normal((2, 2, 4, 5))
    pads = (2, 3, 3, 1)
    y = F.pad(Tensor(a), pads, mode=mode)
    np.testing.assert_allclose(y.data, np.pad(a, [(0, 0), (0, 0), (3, 1), (2, 3)], mode=np_mode))
    x = Tensor(a, requires_grad=True)
    assert gradcheck(lambda t: F.pad(t, pads, mode=mode), [x])
    # the scatter-add backward against a plain loop over the index map
    gy = rng.standard_normal(y.shape)
    x.grad = None
    F.pad(x, pads, mode=mode).backward(gy)
    ref = np.zeros_like(a)
    src = np.arange(a.size).reshape(a.shape)
    srcp = np.pad(src, [(0, 0), (0, 0), (3, 1), (2, 3)], mode=np_mode)
    for idx, g in zip(srcp.ravel(), gy.ravel()):
        ref.flat[idx] += g
    np.testing.assert_allclose(x.grad.data, ref)


def test_pad_constant_gradcheck_and_errors(rng):
    x = Tensor(rng.standard_normal((2, 3, 4)), requires_grad=True)
    assert gradcheck(lambda t: F.pad(t, (1, 0, -1, 2), value=0.5), [x])
    with pytest.raises(ValueError, match=r"even number of values.*got 3"):
        F.pad(x, (1, 1, 1))
    with pytest.raises(ValueError, match=r"covers 4 dims but the input of shape \(2, 3, 4\) has 3"):
        F.pad(x, (1,) * 8)
    with pytest.raises(TypeError, match="flat tuple"):
        F.pad(x, 1)
    with pytest.raises(TypeError, match="ints only"):
        F.pad(x, ((1, 1), (2, 2)))
    with pytest.raises(ValueError, match="reflect padding .* smaller than"):
        F.pad(x, (4, 0), mode="reflect")
    with pytest.raises(ValueError, match="mode must be one of"):
        F.pad(x, (1, 1), mode="edge")
