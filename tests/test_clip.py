"""Gradient clipping against norms computed by hand."""
import math

import numpy as np
import pytest

from minicnn.autograd import Tensor
from minicnn.nn.parameter import Parameter
from minicnn.nn.utils import clip_grad_norm_, clip_grad_value_


def with_grads(*grads):
    ps = []
    for g in grads:
        p = Parameter(np.zeros(np.shape(g)))
        p.grad = Tensor(np.array(g, dtype=np.float64))
        ps.append(p)
    return ps


def test_l2_norm_of_all_grads_and_scaling():
    a, b = with_grads([3.0, 4.0], [[12.0]])  # joint norm sqrt(9 + 16 + 144) = 13
    total = clip_grad_norm_([a, b], max_norm=6.5)
    assert isinstance(total, float) and total == pytest.approx(13.0)
    np.testing.assert_allclose(a.grad.data, [1.5, 2.0], rtol=1e-6)
    np.testing.assert_allclose(b.grad.data, [[6.0]], rtol=1e-6)
    assert clip_grad_norm_([a, b], max_norm=6.5) == pytest.approx(6.5, rel=1e-6)


def test_norm_below_max_leaves_grads_untouched():
    (a,) = with_grads([0.3, -0.4])
    assert clip_grad_norm_(a, max_norm=1.0) == pytest.approx(0.5)
    np.testing.assert_array_equal(a.grad.data, [0.3, -0.4])


def test_inf_and_l1_norms():
    a, b = with_grads([3.0, -4.0], [-12.0, 1.0])
    assert clip_grad_norm_([a, b], max_norm=100.0, norm_type=1) == pytest.approx(20.0)
    total = clip_grad_norm_([a, b], max_norm=6.0, norm_type=float("inf"))
    assert total == 12.0
    np.testing.assert_allclose(b.grad.data, [-6.0, 0.5], rtol=1e-6)
    np.testing.assert_allclose(a.grad.data, [1.5, -2.0], rtol=1e-6)


def test_params_without_grad_are_ignored_and_empty_is_zero():
    (a,) = with_grads([6.0, 8.0])
    b = Parameter(np.zeros(3))
    assert clip_grad_norm_([a, b], 5.0) == pytest.approx(10.0)
    assert b.grad is None
    assert clip_grad_norm_([b], 1.0) == 0.0


def test_shared_gradient_array_is_scaled_once():
    shared = np.array([3.0, 4.0])
    a, b = Parameter(np.zeros(2)), Parameter(np.zeros(2))
    a.grad, b.grad = Tensor(shared), Tensor(shared)  # backward may alias one array to two leaves
    clip_grad_norm_([a, b], max_norm=5 * math.sqrt(2) / 2)  # joint norm 5*sqrt(2): halve
    np.testing.assert_allclose(a.grad.data, [1.5, 2.0], rtol=1e-6)
    np.testing.assert_allclose(b.grad.data, [1.5, 2.0], rtol=1e-6)
    np.testing.assert_array_equal(shared, [3.0, 4.0])


def test_nonfinite_norm():
    a, b = with_grads([1.0, np.inf], [np.nan])
    assert math.isnan(clip_grad_norm_([a, b], 1.0))
    (c,) = with_grads([1.0, np.inf])
    with pytest.raises(RuntimeError, match="inf"):
        clip_grad_norm_([c], 1.0, error_if_nonfinite=True)


def test_float32_grads_stay_float32():
    p = Parameter(np.zeros(2, np.float32))
    p.grad = Tensor(np.array([30.0, 40.0], np.float32))
    clip_grad_norm_([p], 1.0)
    assert p.grad.data.dtype == np.float32
    np.testing.assert_allclose(p.grad.data, [0.6, 0.8], rtol=1e-5)


def test_clip_grad_value():
    a, b = with_grads([-3.0, 0.5, 2.0], [0.9])
    clip_grad_value_([a, b], 1.0)
    np.testing.assert_array_equal(a.grad.data, [-1.0, 0.5, 1.0])
    np.testing.assert_array_equal(b.grad.data, [0.9])
    with pytest.raises(ValueError, match="clip_value"):
        clip_grad_value_([a], -1.0)
