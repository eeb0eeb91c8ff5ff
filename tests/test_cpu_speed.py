"""Issue 14's CPU changes that are not a new algorithm: ReLU against an array of zeros, the
malloc settings, and the bias riding on the wide path's crop copy."""
import os
import subprocess
import sys

import numpy as np
import pytest

from minicnn.autograd import Tensor
from minicnn.cpu import tuning
from minicnn.ops import conv2d
from minicnn.ops.activations import ReLU
from minicnn.ops.naive import conv2d_naive


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_special_values_over_several_blocks(dtype):
    x = np.random.default_rng(0).standard_normal(3 * tuning.BLOCK + 17).astype(dtype)
    special = [np.nan, -np.inf, np.inf, -0.0, 0.0, -1e-38, 1e-38]
    x[:len(special)] = special
    x[-len(special):] = special                    # in the last, short block too
    y = ReLU().forward(x)
    assert y.dtype == dtype
    assert np.array_equal(y, np.maximum(x, 0), equal_nan=True)
    assert y[1] == 0 and np.isnan(y[0])            # -inf -> 0, NaN stays NaN


def test_wide_bias_on_the_crop_copy_matches_naive(rng):
    x = Tensor(rng.standard_normal((2, 5, 13, 11)), requires_grad=True)
    w = Tensor(rng.standard_normal((7, 5, 3, 3)), requires_grad=True)
    b = Tensor(rng.standard_normal(7), requires_grad=True)
    for algorithm in ("wide", "strided", "winograd"):
        y = conv2d(x, w, b, padding=1, algorithm=algorithm)
        np.testing.assert_allclose(y.data, conv2d_naive(x, w, b, padding=1).data, rtol=1e-10, atol=1e-10)


def _keep_freed(env_value):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    if env_value is not None:
        env["MINICNN_KEEP_FREED_MEMORY"] = env_value
    code = "import minicnn.cpu as c; print(c.keep_freed_memory())"
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return run.stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's")
def test_keep_freed_memory_applies_and_can_be_turned_off():
    import platform
    if platform.libc_ver()[0] != "glibc":
        pytest.skip("not glibc")
    assert _keep_freed(None) == "True"
    assert _keep_freed("0") == "False"
