"""The blocked/threaded fast paths (big contiguous arrays) give the same results as plain NumPy."""
import numpy as np

from minicnn.cpu import parallel_blocks
from minicnn.cpu.tuning import BLOCK, BN_BLOCK_ELEMS
from minicnn.ops import ReLU


def test_parallel_blocks_covers_every_element_once():
    n = 3 * BLOCK + 17  # an uneven tail block, more blocks than threads
    hits = np.zeros(n, dtype=np.int64)

    def mark(a, z):
        hits[a:z] += 1
    parallel_blocks(mark, n)
    assert (hits == 1).all()


def test_relu_big_contiguous_matches_numpy():
    x = np.random.default_rng(0).standard_normal((3, 5, 101, 67)).astype(np.float32)  # > BLOCK, uneven
    x[0, 0, 0, :3] = [np.nan, -0.0, 0.0]
    gy = np.random.default_rng(1).standard_normal(x.shape).astype(np.float32)
    f = ReLU()
    y = f.forward(x)
    assert np.array_equal(y, np.maximum(x, 0), equal_nan=True)
    gx = f.backward(gy)
    assert gx.dtype == np.float32 and np.array_equal(gx, gy * (x > 0))


def test_relu_strided_input_and_gradient():
    x = np.random.default_rng(2).standard_normal((4, 300, 200)).astype(np.float32).transpose(2, 0, 1)
    gy = np.random.default_rng(3).standard_normal((200, 4, 300)).astype(np.float32)[:, :, ::-1]
    f = ReLU()
    assert np.array_equal(f.forward(x), np.maximum(x, 0))
    assert np.array_equal(f.backward(gy), gy * (x > 0))


def test_batch_norm_several_channel_blocks_per_sample_matches_naive():
    from minicnn.autograd import Tensor
    from minicnn.ops import batch_norm, batch_norm_naive

    rng = np.random.default_rng(4)
    shape = (2, 7, 256, 256)  # blocks of 4 channels: two per sample, the second one short
    assert BN_BLOCK_ELEMS // (256 * 256) == 4
    x0 = (rng.standard_normal(shape) * 3 + 5).astype(np.float32)
    w0, b0 = (1 + 0.1 * rng.standard_normal(7)).astype(np.float32), rng.standard_normal(7).astype(np.float32)
    gy = rng.standard_normal(shape).astype(np.float32)
    res = []
    for fn in (batch_norm, batch_norm_naive):
        x, w, b = Tensor(x0, requires_grad=True), Tensor(w0, requires_grad=True), Tensor(b0, requires_grad=True)
        rm, rv = np.zeros(7, np.float32), np.ones(7, np.float32)
        y = fn(x, rm, rv, w, b, training=True)
        y.backward(gy)
        res.append([y.data, x.grad.data, w.grad.data, b.grad.data, rm, rv])
    for fast, ref in zip(*res):
        np.testing.assert_allclose(fast, ref, rtol=2e-4, atol=2e-4)


def _adam_reference(p, grads, lr, b1, b2, eps, amsgrad):
    """Plain full-array Adam in PyTorch's order of operations."""
    m, v, vmax = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    for t, g in enumerate(grads, 1):
        m = m * b1 + (1.0 - b1) * g
        v = v * b2 + (1.0 - b2) * g * g
        vmax = np.maximum(vmax, v)
        denom = np.sqrt(vmax if amsgrad else v) / ((1.0 - b2 ** t) ** 0.5) + eps
        p = p - (lr / (1.0 - b1 ** t)) * m / denom
    return p


def test_adam_blocked_update_is_bitwise_the_plain_formula():
    from minicnn.autograd import Tensor
    from minicnn.optim import Adam

    rng = np.random.default_rng(5)
    for shape, amsgrad in (((3 * BLOCK + 5,), False), ((70, 1000), True), ((), False)):  # many blocks; 0-d
        p0 = rng.standard_normal(shape).astype(np.float32)
        grads = [rng.standard_normal(shape).astype(np.float32) for _ in range(3)]
        p = Tensor(p0.copy(), requires_grad=True)
        opt = Adam([p], lr=1e-2, betas=(0.8, 0.99), eps=1e-6, amsgrad=amsgrad)
        for g in grads:
            p.grad = Tensor(g)
            opt.step()
        assert np.array_equal(p.data, _adam_reference(p0, grads, 1e-2, 0.8, 0.99, 1e-6, amsgrad))
