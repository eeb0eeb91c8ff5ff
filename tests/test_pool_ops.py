"""Pooling ops: fast vs loop references (forward and backward) and numeric gradients."""
import numpy as np
import pytest
from test_conv_ops import check_vs_reference

from minicnn.autograd import Tensor
from minicnn.gradcheck import gradcheck
from minicnn.ops import (
    adaptive_avg_pool2d,
    adaptive_avg_pool2d_naive,
    avg_pool2d,
    avg_pool2d_naive,
    global_avg_pool2d,
    max_pool2d,
    max_pool2d_naive,
)

# (kernel, stride, padding): non-overlapping, overlapping, padded, 'same' (Inception: 3x3 / 4x4 stride 1)
POOL_CASES = [(2, None, 0), (3, 2, 0), (3, 2, 1), (2, 1, 1), (3, 1, "same"), (4, 1, "same"), ((2, 3), (1, 2), "same"),
              (3, 3, "valid"), ((3, 2), (2, 1), (1, 0)), (4, 2, 2), (5, 3, "same")]


def pool_id(case):
    return "k{}-s{}-p{}".format(*case).replace(" ", "")


@pytest.mark.parametrize("case", POOL_CASES, ids=pool_id)
@pytest.mark.parametrize("shape", [(2, 3, 7, 6), (1, 1, 5, 9), (2, 3, 8, 6)], ids=["N2C3", "N1C1", "even"])
def test_max_pool_matches_naive_and_gradcheck(case, shape, rng):
    k, s, p = case
    x = rng.permutation(np.prod(shape)).reshape(shape) / 7.0  # distinct values: no ties, so gradcheck is exact
    check_vs_reference(lambda t: max_pool2d(t, k, s, p), lambda t: max_pool2d_naive(t, k, s, p), [x], rng)
    assert gradcheck(lambda t: max_pool2d(t, k, s, p), [Tensor(x, requires_grad=True)])


@pytest.mark.parametrize("case", POOL_CASES, ids=pool_id)
@pytest.mark.parametrize("include", [None, True, False])
def test_avg_pool_matches_naive_and_gradcheck(case, include, rng):
    k, s, p = case
    x = rng.standard_normal((2, 3, 7, 6))
    check_vs_reference(lambda t: avg_pool2d(t, k, s, p, count_include_pad=include),
                       lambda t: avg_pool2d_naive(t, k, s, p, include), [x], rng)
    assert gradcheck(lambda t: avg_pool2d(t, k, s, p, count_include_pad=include), [Tensor(x, requires_grad=True)])


@pytest.mark.parametrize("window", [[[1, 1], [1, 1]], [[0, 2], [2, 0]], [[0, 1], [2, 2]], [[3, 0], [0, 3]]])
@pytest.mark.parametrize("k", [2, 3])  # 2: the pairwise fast path; 3 (padded to 3x3): the general path
def test_max_pool_ties_go_to_first_element(window, k):
    """PyTorch: the first maximal element in row-major window order gets the gradient."""
    x = np.full((1, 1, k, k), -9.0)
    x[0, 0, :2, :2] = window
    t = Tensor(x, requires_grad=True)
    max_pool2d(t, k).sum().backward()
    expected = np.zeros((k, k))
    first = int(np.argmax(np.asarray(window).ravel()))  # argmax returns the first maximum
    expected[first // 2, first % 2] = 1
    np.testing.assert_array_equal(t.grad.data[0, 0], expected)


def test_max_pool_same_pads_with_minus_inf():
    x = -np.arange(1.0, 13.0).reshape(1, 1, 3, 4)  # all negative: zero padding would win the max
    y = max_pool2d(x, 3, 1, "same").data
    assert y.shape == x.shape and (y < 0).all()
    assert y[0, 0, 0, 0] == -1.0


def test_avg_pool_same_counts_real_pixels_like_keras():
    x = np.ones((1, 1, 4, 4))
    np.testing.assert_allclose(avg_pool2d(x, 3, 1, "same").data, 1.0)  # Keras: padding not counted
    y = avg_pool2d(x, 3, 1, 1).data  # PyTorch default: padding counted
    assert y[0, 0, 0, 0] == pytest.approx(4 / 9) and y[0, 0, 1, 1] == 1.0


@pytest.mark.parametrize("shape,out", [((2, 3, 7, 6), (3, 4)), ((1, 2, 5, 9), 2), ((2, 1, 8, 6), (4, 3)),
                                       ((1, 2, 3, 5), (7, 6)), ((1, 1, 6, 6), 1)])
def test_adaptive_avg_pool_matches_naive_and_gradcheck(shape, out, rng):
    x = rng.standard_normal(shape)
    check_vs_reference(lambda t: adaptive_avg_pool2d(t, out), lambda t: adaptive_avg_pool2d_naive(t, out), [x], rng)
    assert gradcheck(lambda t: adaptive_avg_pool2d(t, out), [Tensor(x, requires_grad=True)])


def test_adaptive_bins_follow_pytorch_rule():
    x = np.arange(5.0).reshape(1, 1, 1, 5)
    # bins for 5 -> 3: [0,2), [1,4), [3,5)
    np.testing.assert_allclose(adaptive_avg_pool2d(x, (1, 3)).data.ravel(), [0.5, 2.0, 3.5])


def test_adaptive_none_keeps_axis(rng):
    x = rng.standard_normal((1, 2, 6, 5))
    assert adaptive_avg_pool2d(x, (None, 1)).shape == (1, 2, 6, 1)


def test_global_avg_pool_and_gradcheck(rng):
    x = rng.standard_normal((2, 3, 5, 4))
    np.testing.assert_allclose(global_avg_pool2d(x).data, x.mean(axis=(2, 3)))
    assert gradcheck(global_avg_pool2d, [Tensor(x, requires_grad=True)])


def test_pool_float32_keeps_dtype(rng):
    x = Tensor(rng.standard_normal((2, 3, 8, 8)).astype(np.float32), requires_grad=True)
    for y in (max_pool2d(x, 2), avg_pool2d(x, 3, 1, "same"), adaptive_avg_pool2d(x, 3), global_avg_pool2d(x)):
        assert y.dtype == np.float32
        y.sum().backward()
        assert x.grad.dtype == np.float32
