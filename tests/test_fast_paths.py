"""The blocked/threaded fast paths (big contiguous arrays) give the same results as plain NumPy."""
import numpy as np

from minicnn.conv.parallel import BLOCK, parallel_blocks
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
