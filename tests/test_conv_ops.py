"""conv2d / depthwise / separable / im2col: fast ops vs loop references and numeric gradients."""
import itertools

import numpy as np
import pytest

from minicnn.autograd import Tensor
from minicnn.gradcheck import gradcheck
from minicnn.ops import (
    col2im,
    col2im_naive,
    conv2d,
    conv2d_naive,
    depthwise_conv2d,
    depthwise_conv2d_naive,
    im2col,
    im2col_naive,
    same_padding,
    separable_conv2d,
)
from minicnn.ops.geometry import window_geometry


def pairwise(options: dict, valid) -> list:
    """A small set of valid configurations in which every pair of option values appears together
    at least once (where some valid configuration has that pair); greedy, deterministic."""
    names = list(options)
    combos = [dict(zip(names, v)) for v in itertools.product(*options.values())]
    combos = [c for c in combos if valid(c)]
    pairs = [{(a, repr(c[a]), b, repr(c[b])) for a, b in itertools.combinations(names, 2)} for c in combos]
    todo, chosen = set().union(*pairs), []
    while todo:
        best = max(range(len(combos)), key=lambda i: len(pairs[i] & todo))
        chosen.append(combos[best])
        todo -= pairs[best]
    return chosen


def fits(shape, k, s, p, d) -> bool:
    try:
        window_geometry(shape, (k, k), (s, s), p, (d, d), "test")
        return True
    except ValueError:
        return False


def check_vs_reference(fast, ref, arrays, rng, atol=1e-10):
    """Same forward, and the same gradients for a random upstream gradient, in float64."""
    ts = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    rs = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    y, yr = fast(*ts), ref(*rs)
    assert y.shape == yr.shape
    np.testing.assert_allclose(y.data, yr.data, atol=atol, rtol=1e-9)
    gy = rng.standard_normal(y.shape)
    y.backward(gy)
    yr.backward(gy)
    for i, (t, r) in enumerate(zip(ts, rs)):
        np.testing.assert_allclose(t.grad.data, r.grad.data, atol=atol, rtol=1e-9, err_msg=f"gradient of input {i}")


# ---- conv2d grid ---------------------------------------------------------------------------
X_SHAPE = (2, 4, 7, 6)  # N, C, H != W, odd sizes
CONV_GRID = pairwise(
    dict(k=[1, 2, 3, 4, 5, 7], s=[1, 2, 3], p=[0, 1, "same", "valid"], d=[1, 2], g=[1, 2, 4], bias=[True, False]),
    lambda c: fits(X_SHAPE, c["k"], c["s"], c["p"], c["d"]))


def conv_case(c, rng, x_shape=X_SHAPE):
    o = 6 if c["g"] in (1, 2) else 8
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal((o, x_shape[1] // c["g"], c["k"], c["k"]))
    arrays = [x, w] + ([rng.standard_normal(o)] if c["bias"] else [])
    kw = dict(stride=c["s"], padding=c["p"], dilation=c["d"], groups=c["g"])
    return arrays, kw


def conv_id(c):
    return "k{k}-s{s}-p{p}-d{d}-g{g}-{b}".format(b="bias" if c["bias"] else "nobias", **c)


def test_grid_covers_every_value():
    for name, values in dict(k=[1, 2, 3, 4, 5, 7], s=[1, 2, 3], p=[0, 1, "same", "valid"], d=[1, 2],
                             g=[1, 2, 4]).items():
        for v in values:
            assert sum(c[name] == v for c in CONV_GRID) >= 2, (name, v)


def algorithms_for(x_shape, c) -> list:
    """Every conv algorithm that can compute configuration c (the reference always can)."""
    pads, _, _ = window_geometry(x_shape, (c["k"],) * 2, (c["s"],) * 2, c["p"], (c["d"],) * 2, "test")
    return ["reference", "strided"] + (["wide"] if c["s"] == 1 else []) + \
        (["pointwise"] if c["k"] == 1 and c["s"] == 1 and not any(pads) else [])


@pytest.mark.parametrize("c", CONV_GRID, ids=conv_id)
def test_conv2d_matches_naive(c, rng):
    arrays, kw = conv_case(c, rng)

    def ref(*t):
        return conv2d_naive(*t, **kw) if len(t) == 3 else conv2d_naive(*t, None, **kw)

    for algorithm in algorithms_for(X_SHAPE, c):
        def fast(*t, algorithm=algorithm):  # the default binds this iteration's algorithm
            return conv2d(t[0], t[1], t[2] if len(t) == 3 else None, **kw, algorithm=algorithm)

        check_vs_reference(fast, ref, arrays, rng)


def test_conv_algorithm_rule_and_refusal(rng):
    from minicnn.cpu.conv import choose_conv_algorithm
    from minicnn.cpu.tuning import WIDE_MIN_WORK
    assert choose_conv_algorithm((1, 1), (1, 1), (0, 0, 0, 0), 64, (32, 32)) == "pointwise"
    assert choose_conv_algorithm((3, 3), (1, 1), (1, 1, 1, 1), 16, (64, 64)) == "wide"
    assert 1 * 9 * 8 * 8 < WIDE_MIN_WORK  # a small sample: batching samples wins
    assert choose_conv_algorithm((3, 3), (1, 1), (1, 1, 1, 1), 1, (8, 8)) == "strided"
    assert choose_conv_algorithm((3, 3), (2, 2), (1, 1, 1, 1), 64, (64, 64)) == "strided"
    x, w = rng.standard_normal((1, 2, 6, 6)), rng.standard_normal((3, 2, 3, 3))
    with pytest.raises(ValueError, match="algorithm 'wide' cannot compute"):
        conv2d(x, w, stride=2, algorithm="wide")
    with pytest.raises(ValueError, match="algorithm must be one of"):
        conv2d(x, w, algorithm="fast")


@pytest.mark.parametrize("c", CONV_GRID, ids=conv_id)
def test_conv2d_gradcheck(c, rng):
    algorithm = "wide" if c["s"] == 1 else "strided"
    arrays, kw = conv_case(c, rng)
    kw["algorithm"] = algorithm
    if c["k"] >= 5:  # keep the finite-difference count down: fewer channels, same geometry
        arrays, kw = conv_case(c, rng, x_shape=(1, 4, 7, 6))
    ts = [Tensor(a, requires_grad=True) for a in arrays]
    assert gradcheck(lambda *t: conv2d(t[0], t[1], t[2] if len(t) == 3 else None, **kw), ts)


@pytest.mark.parametrize("kw", [dict(stride=1, padding=1), dict(stride=2, padding="same"),
                                dict(stride=(2, 1), padding=(0, 2)), dict(stride=1, padding=((0, 2), (1, 0)))])
@pytest.mark.parametrize("algorithm", ["wide", "strided", "reference"])
def test_conv2d_batch1_grayscale_odd(kw, algorithm, rng):
    if algorithm == "wide" and kw["stride"] != 1:
        algorithm = "strided"
    kw = dict(kw, algorithm=algorithm)
    x, w, b = rng.standard_normal((1, 1, 9, 5)), rng.standard_normal((3, 1, 3, 2)), rng.standard_normal(3)
    ref = dict(kw)
    del ref["algorithm"]
    check_vs_reference(lambda *t: conv2d(*t, **kw), lambda *t: conv2d_naive(*t, **ref), [x, w, b], rng)


def test_conv2d_float32_keeps_dtype_and_matches_float64(rng):
    x, w, b = rng.standard_normal((2, 3, 10, 9)), rng.standard_normal((5, 3, 3, 3)), rng.standard_normal(5)
    y64 = conv2d(x, w, b, padding=1).data
    t = Tensor(x.astype(np.float32), requires_grad=True)
    y32 = conv2d(t, w.astype(np.float32), b.astype(np.float32), padding=1)
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32.data, y64, atol=1e-4)
    y32.sum().backward()
    assert t.grad.dtype == np.float32


def test_conv2d_first_layer_skips_input_gradient(rng):
    x = Tensor(rng.standard_normal((2, 1, 6, 6)))  # an image: no gradient wanted
    w = Tensor(rng.standard_normal((3, 1, 3, 3)), requires_grad=True)
    conv2d(x, w, padding=1).sum().backward()
    assert x.grad is None and w.grad is not None


def test_conv2d_chunked_equals_unchunked(rng, monkeypatch):
    """The batch is processed in cache-sized chunks; chunk boundaries must not change results."""
    from minicnn.cpu import tuning
    x, w, b = rng.standard_normal((5, 3, 8, 7)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    outs = []
    for budget in (1 << 30, 1):  # one chunk, then one sample per chunk
        monkeypatch.setattr(tuning, "CHUNK_BYTES", budget)
        ts = [Tensor(a, requires_grad=True) for a in (x, w, b)]
        y = conv2d(*ts, stride=2, padding="same", algorithm="strided")
        y.backward(np.ones(y.shape))
        outs.append([y.data] + [t.grad.data for t in ts])
    for a, b_ in zip(*outs):
        np.testing.assert_allclose(a, b_, atol=1e-12)


# ---- 'same' padding --------------------------------------------------------------------------
@pytest.mark.parametrize("size,k,s,d,expected", [
    (7, 3, 1, 1, (1, 1)), (6, 2, 1, 1, (0, 1)), (7, 4, 2, 1, (1, 2)), (8, 4, 2, 1, (1, 1)),
    (7, 3, 2, 1, (1, 1)), (8, 3, 2, 1, (0, 1)), (7, 3, 3, 1, (1, 1)), (7, 3, 1, 2, (2, 2)), (5, 1, 2, 1, (0, 0))])
def test_same_padding_tensorflow_rule(size, k, s, d, expected):
    assert same_padding(size, k, s, d) == expected


@pytest.mark.parametrize("k,s", [(2, 1), (4, 2), (3, 2), (4, 3)])
def test_same_conv_pads_extra_bottom_right(k, s, rng):
    """'same' output is ceil(H/s) and equals an explicit pad with the odd pixel after."""
    x, w = rng.standard_normal((1, 2, 7, 8)), rng.standard_normal((3, 2, k, k))
    y = conv2d(x, w, stride=s, padding="same").data
    assert y.shape[2:] == (-(-7 // s), -(-8 // s))
    ph, pw = same_padding(7, k, s, 1), same_padding(8, k, s, 1)
    xpad = np.pad(x, ((0, 0), (0, 0), ph, pw))
    np.testing.assert_allclose(y, conv2d(xpad, w, stride=s).data, atol=1e-12)


# ---- im2col / col2im -----------------------------------------------------------------------
# (kernel, stride, padding, dilation)
IM2COL_CASES = [((3, 3), 1, 0, 1), ((3, 2), 2, 1, 1), ((2, 3), (1, 2), "same", 2), ((1, 1), 3, 0, 1),
                ((3, 3), 1, "same", 1)]


@pytest.mark.parametrize("k,s,p,d", IM2COL_CASES)
def test_im2col_col2im_match_naive(k, s, p, d, rng):
    x = rng.standard_normal((2, 3, 7, 6))
    cols = im2col(x, k, s, p, d)
    np.testing.assert_array_equal(cols, im2col_naive(x, k, s, p, d))
    c = rng.standard_normal(cols.shape)
    np.testing.assert_allclose(col2im(c, x.shape, k, s, p, d), col2im_naive(c, x.shape, k, s, p, d), atol=1e-12)
    # col2im is the adjoint of im2col: <im2col(x), c> == <x, col2im(c)>
    assert np.isclose((cols * c).sum(), (x * col2im(c, x.shape, k, s, p, d)).sum())


def test_col2im_adds_overlapping_windows():
    counts = col2im(np.ones((1, 9, 9)), (1, 1, 5, 5), 3)  # 3x3 windows, stride 1 over 5x5: 3x3 outputs
    expected = np.outer([1, 2, 3, 2, 1], [1, 2, 3, 2, 1])  # how many windows cover each pixel
    np.testing.assert_array_equal(counts[0, 0], expected)


# ---- depthwise and separable ---------------------------------------------------------------
DW_GRID = pairwise(dict(k=[1, 2, 3, 5], s=[1, 2, 3], p=[0, 1, "same", "valid"], d=[1, 2], m=[1, 2], bias=[True, False]),
                   lambda c: fits((2, 3, 7, 6), c["k"], c["s"], c["p"], c["d"]))


def dw_case(c, rng):
    x = rng.standard_normal((2, 3, 7, 6))
    w = rng.standard_normal((3 * c["m"], 1, c["k"], c["k"]))
    arrays = [x, w] + ([rng.standard_normal(3 * c["m"])] if c["bias"] else [])
    return arrays, dict(stride=c["s"], padding=c["p"], dilation=c["d"])


def dw_id(c):
    return "k{k}-s{s}-p{p}-d{d}-m{m}-{b}".format(b="bias" if c["bias"] else "nobias", **c)


@pytest.mark.parametrize("c", DW_GRID, ids=dw_id)
def test_depthwise_matches_naive_and_gradcheck(c, rng):
    arrays, kw = dw_case(c, rng)
    fast = lambda *t: depthwise_conv2d(t[0], t[1], t[2] if len(t) == 3 else None, **kw)  # noqa: E731
    check_vs_reference(fast, lambda *t: depthwise_conv2d_naive(t[0], t[1], t[2] if len(t) == 3 else None, **kw),
                       arrays, rng)
    assert gradcheck(fast, [Tensor(a, requires_grad=True) for a in arrays])


@pytest.mark.parametrize("kw", [dict(), dict(stride=2, padding="same"), dict(padding=1, dilation=2),
                                dict(stride=(1, 2), padding="valid")])
def test_separable_matches_naive_and_gradcheck(kw, rng):
    x, dw = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((6, 1, 3, 3))
    pw, b = rng.standard_normal((5, 6, 1, 1)), rng.standard_normal(5)

    def ref(x, dw, pw, b):
        return conv2d_naive(depthwise_conv2d_naive(x, dw, None, **kw), pw, b)
    check_vs_reference(lambda *t: separable_conv2d(*t, **kw), ref, [x, dw, pw, b], rng)
    assert gradcheck(lambda *t: separable_conv2d(*t, **kw), [Tensor(a, requires_grad=True) for a in (x, dw, pw, b)])


def test_depthwise_equals_grouped_conv(rng):
    x, w, b = rng.standard_normal((2, 4, 9, 8)), rng.standard_normal((8, 1, 3, 3)), rng.standard_normal(8)
    np.testing.assert_allclose(depthwise_conv2d(x, w, b, stride=2, padding=1).data,
                               conv2d(x, w, b, stride=2, padding=1, groups=4).data, atol=1e-12)


# ---- threads ---------------------------------------------------------------------------------
def test_threaded_ops_match_single_thread(rng, monkeypatch):
    """Ops split samples over threads; uneven splits (5 samples, 3 threads) must not change results."""
    from minicnn.cpu import threads, tuning
    from minicnn.ops import batch_norm, max_pool2d
    x = rng.standard_normal((5, 4, 9, 8))
    w, dw, b = rng.standard_normal((6, 4, 3, 3)), rng.standard_normal((8, 1, 3, 3)), rng.standard_normal(6)
    cases = [lambda t: conv2d(t, w, b, padding=1, algorithm="wide"),
             lambda t: conv2d(t, w, b, stride=2, padding=1, algorithm="strided"),
             lambda t: depthwise_conv2d(t, dw, padding="same"), lambda t: depthwise_conv2d(t, dw, stride=2),
             lambda t: max_pool2d(t, 2), lambda t: max_pool2d(t, 3, 1, "same"),
             lambda t: batch_norm(t, np.zeros(4), np.ones(4), np.ones(4), np.zeros(4), training=True)]

    def run_all():
        out = []
        for f in cases:
            t = Tensor(x, requires_grad=True)
            y = f(t)
            y.backward(np.cos(np.arange(y.size)).reshape(y.shape))
            out += [y.data, t.grad.data]
        return out
    single = run_all()
    monkeypatch.setattr(tuning, "MIN_WORK", 0)
    monkeypatch.setattr(tuning, "THREAD_SAMPLES", True)
    threads.set_num_threads(3)
    try:
        threaded = run_all()
    finally:
        threads.set_num_threads(threads._cpu_count())
    for a, b_ in zip(single, threaded):
        np.testing.assert_allclose(a, b_, atol=1e-12)
