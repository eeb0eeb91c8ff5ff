"""The engine adds a tensor's gradients in place into a sum it allocated itself, never into an
array an op returned or will still read (issue 14): results equal the plain out-of-place sums."""
import numpy as np

from minicnn.autograd import Tensor


def test_many_uses_of_one_tensor_sum_correctly(rng):
    a = Tensor(rng.standard_normal((3, 4)), requires_grad=True)
    y = a * 2.0 + a * 3.0 + a + a.relu()       # four contributions to a's gradient
    gy = rng.standard_normal((3, 4))
    y.backward(gy)
    np.testing.assert_allclose(a.grad.data, gy * (6.0 + (a.data > 0)), rtol=1e-12)


def test_shared_gradient_array_is_not_modified_in_place(rng):
    """Add's backward returns the SAME array for both inputs; an in-place sum into one input's
    gradient must not leak into the other's."""
    a = Tensor(rng.standard_normal(5), requires_grad=True)
    b = Tensor(rng.standard_normal(5), requires_grad=True)
    s = a + b                                  # d s/d a = d s/d b = the same array
    y = (s + s) * 1.0 + a * 4.0 + a * 5.0      # s gets an engine-owned sum; a gets three more terms
    gy = rng.standard_normal(5)
    y.backward(gy)
    np.testing.assert_allclose(b.grad.data, 2 * gy, rtol=1e-12)
    np.testing.assert_allclose(a.grad.data, 11 * gy, rtol=1e-12)


def test_caller_gradient_is_left_untouched(rng):
    a = Tensor(rng.standard_normal(4), requires_grad=True)
    gy = rng.standard_normal(4)
    keep = gy.copy()
    (a + a + a).backward(gy)
    np.testing.assert_array_equal(gy, keep)
    np.testing.assert_allclose(a.grad.data, 3 * gy, rtol=1e-12)
