"""Winograd F(2x2, 3x3) (minicnn.cpu.winograd, algorithm="winograd"): the transform matrices,
agreement with the plain-loop reference on odd shapes (whole samples and bands of tile rows),
float32 accuracy against float64, a float64 directional gradient check, and the rule."""
import numpy as np
import pytest

import minicnn
from minicnn.autograd import Tensor
from minicnn.cpu import tuning, winograd
from minicnn.cpu.conv import choose_conv_algorithm
from minicnn.gradcheck import gradcheck
from minicnn.ops import conv2d
from minicnn.ops.naive import conv2d_naive


def test_transform_matrices_compute_a_1d_correlation(rng):
    """A^T [(G g) * (B^T d)] = the 2 outputs of correlating 4 inputs d with 3 taps g."""
    d, g = rng.standard_normal(4), rng.standard_normal(3)
    want = np.array([d[0:3] @ g, d[1:4] @ g])
    np.testing.assert_allclose(winograd.AT @ ((winograd.G @ g) * (winograd.BT @ d)), want, rtol=1e-12)


def _pads(p):
    return (p[0], p[1]), (p[2], p[3])


@pytest.mark.parametrize("block_bytes", [tuning.WINOGRAD_BLOCK_BYTES, 3000])  # samples / bands of tile rows
@pytest.mark.parametrize("shape,pads", [
    ((2, 3, 7, 9), (1, 1, 1, 1)),   # odd sizes: the last tile row/column is cropped
    ((3, 4, 8, 6), (0, 0, 2, 0)),   # unpadded rows, left pad only
    ((1, 2, 9, 5), (2, 1, 0, 2)),   # uneven pads up to 2
    ((2, 5, 3, 3), (0, 0, 0, 0)),   # a single output pixel
])
def test_matches_naive_reference(shape, pads, block_bytes, rng, monkeypatch):
    monkeypatch.setattr(tuning, "WINOGRAD_BLOCK_BYTES", block_bytes)
    o = 6
    x = Tensor(rng.standard_normal(shape), requires_grad=True)
    w = Tensor(rng.standard_normal((o, shape[1], 3, 3)), requires_grad=True)
    b = Tensor(rng.standard_normal(o), requires_grad=True)
    y = conv2d(x, w, b, padding=_pads(pads), algorithm="winograd")
    gy = rng.standard_normal(y.shape)
    y.backward(gy)
    xr, wr, br = (Tensor(t.data, requires_grad=True) for t in (x, w, b))
    yr = conv2d_naive(xr, wr, br, padding=_pads(pads))
    yr.backward(gy)
    np.testing.assert_allclose(y.data, yr.data, rtol=1e-10, atol=1e-10)
    for got, ref in ((x, xr), (w, wr), (b, br)):
        np.testing.assert_allclose(got.grad.data, ref.grad.data, rtol=1e-10, atol=1e-10)


def test_float32_error_is_bounded_against_float64(rng):
    """Float32 Winograd vs the float64 result: within 5x the direct ("wide") float32 error,
    and below 1e-5 of the output's scale (output, input and weight gradients)."""
    x64 = rng.standard_normal((2, 64, 20, 18))
    w64 = 0.1 * rng.standard_normal((32, 64, 3, 3))
    gy64 = rng.standard_normal((2, 32, 20, 18))

    def run(dtype, algorithm):
        x = Tensor(x64.astype(dtype), requires_grad=True)
        w = Tensor(w64.astype(dtype), requires_grad=True)
        y = conv2d(x, w, padding=1, algorithm=algorithm)
        y.backward(gy64.astype(dtype))
        return [a.astype(np.float64) for a in (y.data, x.grad.data, w.grad.data)]

    truth = run(np.float64, "reference")
    wino, direct = run(np.float32, "winograd"), run(np.float32, "wide")
    for t, a, d in zip(truth, wino, direct):
        scale = np.abs(t).max()
        err_w, err_d = np.abs(a - t).max() / scale, np.abs(d - t).max() / scale
        assert err_w < 1e-5, err_w
        assert err_w <= 5 * err_d, (err_w, err_d)


@pytest.mark.parametrize("kw,x_shape", [(dict(padding=1), (2, 6, 11, 9)), (dict(padding=(2, 0)), (3, 4, 8, 7))])
def test_directional_gradcheck(kw, x_shape, rng):
    x = Tensor(rng.standard_normal(x_shape), requires_grad=True)
    w = Tensor(rng.standard_normal((5, x_shape[1], 3, 3)), requires_grad=True)
    b = Tensor(rng.standard_normal(5), requires_grad=True)
    assert gradcheck(lambda *t: conv2d(*t, **kw, algorithm="winograd"), [x, w, b], mode="directional", rtol=1e-6)


@pytest.mark.parametrize("kw", [dict(stride=2, padding=1), dict(dilation=2, padding=2), dict(groups=2, padding=1),
                                dict(padding=3)])
def test_refuses_geometry_it_cannot_compute(kw):
    x = minicnn.tensor(np.zeros((1, 4, 9, 9), np.float32))
    w = minicnn.tensor(np.zeros((4, 4 // kw.get("groups", 1), 3, 3), np.float32))
    with pytest.raises(ValueError, match="winograd"):
        conv2d(x, w, **kw, algorithm="winograd")


def test_rule_takes_winograd_only_for_wide_channel_products():
    same = ((3, 3), (1, 1), (1, 1, 1, 1))
    assert choose_conv_algorithm(*same, 64, (32, 32), 128) == "winograd"
    assert choose_conv_algorithm(*same, 48, (32, 32), 96) == "winograd"
    assert choose_conv_algorithm(*same, 32, (64, 64), 64) == "winograd"
    assert choose_conv_algorithm(*same, 16, (180, 180), 16) == "wide"      # measured 1.3-1.6x slower there
    assert choose_conv_algorithm(*same, 32, (64, 64), 32) == "wide"        # 1.1-1.2x slower
    assert choose_conv_algorithm(*same, 64, (32, 32), 128, (1, 1), 2) == "wide"  # grouped
    assert choose_conv_algorithm((3, 3), (2, 2), (1, 1, 1, 1), 64, (16, 16), 128) == "strided"
