"""Gradient checks (float64 central differences) for every core op, plus engine semantics."""
import numpy as np
import pytest

import minicnn
from minicnn import Tensor, gradcheck, ops


def t(rng, *shape, positive=False):
    a = rng.standard_normal(shape)
    if positive:
        a = np.abs(a) + 0.5
    return Tensor(a, requires_grad=True)


BINARY_SHAPES = [((3, 5), (3, 5)), ((3, 5), (5,)), ((4, 1, 3), (2, 1)), ((), (2, 3)), ((2, 3, 1), (1, 1, 4))]


@pytest.mark.parametrize("op", [ops.add, ops.sub, ops.mul, ops.div, ops.maximum, ops.minimum])
@pytest.mark.parametrize("sa,sb", BINARY_SHAPES)
def test_binary_broadcasting(rng, op, sa, sb):
    a, b = t(rng, *sa), t(rng, *sb, positive=op is ops.div)
    assert gradcheck(op, [a, b])


@pytest.mark.parametrize("fn,positive", [
    (ops.exp, False), (ops.log, True), (ops.sqrt, True), (ops.abs, False), (ops.neg, False),
    (lambda x: ops.pow(x, 3), False), (lambda x: ops.pow(x, -1.5), True), (lambda x: ops.clip(x, -0.5, 0.7), False),
    (ops.relu, False), (lambda x: ops.leaky_relu(x, 0.1), False), (ops.sigmoid, False), (ops.tanh, False),
    (lambda x: ops.softmax(x, 1), False), (lambda x: ops.log_softmax(x, 0), False),
])
def test_unary(rng, fn, positive):
    x = t(rng, 3, 4, 5, positive=positive)
    if not positive:  # keep clip/relu/abs away from their kinks, where differences are meaningless
        x.data[np.abs(x.data) < 1e-3] += 0.01
        x.data[np.abs(np.abs(x.data) - 0.5) < 1e-3] += 0.01
        x.data[np.abs(x.data - 0.7) < 1e-3] += 0.01
    assert gradcheck(fn, [x])


@pytest.mark.parametrize("red", ["sum", "mean", "max", "min", "var"])
@pytest.mark.parametrize("axis,keepdims", [(None, False), (0, False), (1, True), ((0, 2), False), (-1, True)])
def test_reductions(rng, red, axis, keepdims):
    x = t(rng, 3, 4, 5)
    f = getattr(ops, red)
    assert gradcheck(lambda x: f(x, axis=axis, keepdims=keepdims), [x])


def test_max_ties_share_gradient():
    x = Tensor(np.array([1.0, 3.0, 3.0]), requires_grad=True)
    ops.max(x).backward()
    np.testing.assert_allclose(x.grad.data, [0, 0.5, 0.5])


def test_var_matches_numpy(rng):
    x = rng.standard_normal((4, 6))
    np.testing.assert_allclose(ops.var(Tensor(x), axis=1, ddof=1).data, x.var(axis=1, ddof=1))


@pytest.mark.parametrize("sa,sb", [((3, 4), (4, 5)), ((4,), (4, 2)), ((3, 4), (4,)), ((2, 3, 4), (4, 5)),
                                   ((2, 1, 3, 4), (5, 4, 2)), ((4,), (4,))])
def test_matmul(rng, sa, sb):
    assert gradcheck(ops.matmul, [t(rng, *sa), t(rng, *sb)])


def test_shape_ops(rng):
    x = t(rng, 2, 3, 4)
    assert gradcheck(lambda x: x.reshape(4, 6) * Tensor(np.arange(24.0).reshape(4, 6)), [x])
    assert gradcheck(lambda x: x.permute(2, 0, 1), [x])
    assert gradcheck(lambda x: x.transpose(0, 2), [x])
    assert gradcheck(lambda x: x.T, [x])
    assert gradcheck(lambda x: ops.flatten(x, 1), [x])
    assert gradcheck(lambda x: x[1, :, ::2], [x])
    assert gradcheck(lambda x: x[[0, 0, 1], 1], [x])  # repeated index accumulates
    assert gradcheck(lambda x: x[x.data > 0], [x])
    assert gradcheck(lambda x: ops.np_pad(x, [(0, 0), (1, 2), (3, 0)], value=1.5), [x])
    assert gradcheck(lambda x: ops.pad(x, (3, 0, 1, 2), value=1.5), [x])


def test_concat_stack_where(rng):
    a, b, c = t(rng, 2, 3, 4), t(rng, 2, 1, 4), t(rng, 2, 3, 4)
    assert gradcheck(lambda a, b: ops.concatenate([a, b, a], axis=1), [a, b])
    assert gradcheck(lambda a, c: ops.stack([a, c], axis=2), [a, c])
    cond = rng.random((2, 3, 4)) > 0.5
    assert gradcheck(lambda a, b: ops.where(cond, a, b), [a, b])


def test_tensor_used_twice_accumulates():
    x = Tensor(np.array([2.0, -1.0]), requires_grad=True)
    y = x * x + x * 3  # dy/dx = 2x + 3
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, [7.0, 1.0])
    (x * 2).sum().backward()  # leaves accumulate across backward calls, like PyTorch
    np.testing.assert_allclose(x.grad.data, [9.0, 3.0])


def test_diamond_graph(rng):
    x = t(rng, 3)
    assert gradcheck(lambda x: ops.exp(x) * ops.tanh(x) + ops.exp(x), [x])


def test_deep_chain_no_recursion_error():
    x = Tensor(np.ones(3), requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, 1.0)


def test_backward_errors():
    x = Tensor(np.ones((2, 2)), requires_grad=True)
    with pytest.raises(RuntimeError, match="scalar output.*shape \\(2, 2\\)"):
        (x * 2).backward()
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()
    z = (x * x).sum()
    z.backward(retain_graph=True)
    z.backward()
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor([1.0]).sum().backward()
    with pytest.raises(ValueError, match="shape"):
        (x * 2).backward(grad=np.ones(3))


def test_int_data_cannot_require_grad():
    with pytest.raises(TypeError, match="floating-point.*int64"):
        minicnn.tensor([1, 2, 3], requires_grad=True)


def test_dtypes_and_scalars():
    x = minicnn.tensor([1.0, 2.0])
    assert x.dtype == np.float32
    assert (x * 2).dtype == np.float32 and (2 / x).dtype == np.float32
    assert minicnn.tensor([1, 2]).dtype == np.int64
    assert minicnn.tensor(np.zeros(2)).dtype == np.float64
    assert minicnn.tensor([1.0], dtype=np.float64).dtype == np.float64
    assert x.sum().item() == 3.0 and x.shape == (2,) and x.ndim == 1
    assert isinstance(x.numpy(), np.ndarray)


def test_no_grad_and_detach():
    x = Tensor(np.ones(2), requires_grad=True)
    with minicnn.no_grad():
        y = x * 2
    assert not y.requires_grad and y.creator is None
    z = (x * 2).detach()
    assert not z.requires_grad and z.is_leaf


def test_non_leaf_grad_only_when_retained():
    x = Tensor(np.ones(2), requires_grad=True)
    h = x * 3
    h.retain_grad()
    k = x * 4
    (h * k).sum().backward()
    np.testing.assert_allclose(h.grad.data, 4.0)
    assert k.grad is None


def test_manual_seed_repeats():
    minicnn.manual_seed(3)
    a = minicnn.nn.Linear(4, 3).weight.numpy()
    minicnn.manual_seed(3)
    b = minicnn.nn.Linear(4, 3).weight.numpy()
    np.testing.assert_array_equal(a, b)


def test_gradcheck_catches_a_wrong_backward(rng):
    class BadSquare(minicnn.Function):
        def forward(self, x):
            self.x = x
            return x * x

        def backward(self, gy):
            return gy * self.x  # should be 2x

    x = t(rng, 2, 3)
    with pytest.raises(minicnn.GradcheckError, match="index"):
        gradcheck(lambda x: BadSquare()(x), [x])


def test_gradcheck_requires_float64():
    with pytest.raises(TypeError, match="float64"):
        gradcheck(lambda x: x * 2, [minicnn.tensor([1.0], requires_grad=True)])
