"""Every GPU body EXECUTED: on the CPU through the stand-in of CuPy (`fake_device`: NumPy arrays the
engine treats as device arrays, kernels/*.cu run by the CPU fiber harness through the same
`minicnn.cuda.launches` code), and the very same tests on a real GPU through CuPy (the `gpu`
variants, skipped where there is none).

Each op is compared with the NumPy path and the `*_naive` loop references on odd shapes, checked
to have run on our kernels (not a fallback), and gradient-checked in float64 through its GPU body.
"""
from __future__ import annotations

import inspect

import numpy as np
import pytest

import minicnn
import minicnn.cuda as mc
import minicnn.nn.functional as F
from minicnn import nn, ops, optim
from minicnn.autograd import Function, Tensor
from minicnn.backend import BackendError, DeviceMismatchError, get_array_module
from minicnn.cuda.cpu_harness import compiler_available
from minicnn.cuda.cpu_harness.fake_device import FakeDeviceArray, fake_device
from minicnn.gradcheck import gradcheck
from minicnn.ops import avg_pool2d_naive, batch_norm_naive, conv2d_naive, depthwise_conv2d_naive, max_pool2d_naive

F32 = {"rtol": 1e-4, "atol": 1e-4}
F64 = {"rtol": 1e-10, "atol": 1e-10}


class Dev:
    """One device under test: the CPU stand-in ('fake') or CuPy on a GPU ('gpu')."""

    def __init__(self, kind: str, fake=None):
        self.kind, self.fake = kind, fake

    def put(self, a, requires_grad=False) -> Tensor:
        """A leaf on the device."""
        return Tensor(np.asarray(a)).to("cuda").requires_grad_(requires_grad)

    def ran(self, *kernels: str) -> None:
        """Assert the named kernel entry points were launched (only observable on the stand-in)."""
        if self.fake is not None:
            missing = [k for k in kernels if not self.fake.launched[k]]
            assert not missing, f"expected kernels {missing} to run; ran {dict(self.fake.launched)}"
            self.fake.launched.clear()


@pytest.fixture(params=["fake", pytest.param("gpu", marks=pytest.mark.gpu)])
def dev(request):
    if request.param == "gpu":
        try:
            mc.require()
        except mc.CudaUnavailable as e:
            pytest.skip(f"no usable GPU: {e}")
        yield Dev("gpu")
        return
    if not compiler_available():
        pytest.skip("no C++ compiler (g++) to build the CPU harness")
    with fake_device() as fd:
        yield Dev("fake", fd)


def run(dev: Dev, f, arrays, gy_seed=5):
    """y and the input gradients of f on the device (host copies), for a fixed random upstream gradient."""
    ts = [dev.put(a, requires_grad=np.issubdtype(np.asarray(a).dtype, np.floating)) for a in arrays]
    y = f(*ts)
    assert y.device == "cuda" and isinstance(y.data, get_array_module(y.data).ndarray)
    gy = np.random.default_rng(gy_seed).standard_normal(y.shape).astype(y.dtype)
    y.backward(Tensor(gy).to("cuda"))
    return y.numpy(), [t.grad.numpy() if t.requires_grad else None for t in ts]


def run_cpu(f, arrays, gy_seed=5):
    ts = [Tensor(np.asarray(a), requires_grad=np.issubdtype(np.asarray(a).dtype, np.floating)) for a in arrays]
    y = f(*ts)
    gy = np.random.default_rng(gy_seed).standard_normal(y.shape).astype(y.dtype)
    y.backward(gy)
    return y.numpy(), [t.grad.numpy() if t.requires_grad else None for t in ts]


def same(got, want, tol):
    np.testing.assert_allclose(got[0], want[0], **tol)
    for i, (a, b) in enumerate(zip(got[1], want[1])):
        if b is not None:
            np.testing.assert_allclose(a, b, **tol, err_msg=f"gradient of input {i}")


def on_dev_gradcheck(dev: Dev, f, arrays, mode="elementwise"):
    ts = [Tensor(np.asarray(a, dtype=np.float64)).to("cuda").requires_grad_(True) for a in arrays]
    assert gradcheck(f, ts, mode=mode, atol=1e-6, rtol=1e-4)


# ---- convolution -------------------------------------------------------------------------------
CONV_CASES = [  # (x shape, out channels, kwargs, kernel, kernels expected to run)
    ((2, 3, 11, 13), 5, dict(stride=1, padding=1), (3, 3), ["conv3x3_{}", "bias_act_{}", "im2col_{}", "bias_grad_{}"]),
    ((2, 3, 11, 13), 4, dict(stride=2, padding="same"), (3, 3), ["conv3x3_{}", "col2im_{}"]),
    ((1, 3, 10, 9), 4, dict(stride=(1, 2), padding=0), (3, 3), ["conv3x3_{}", "col2im_{}"]),
    ((1, 40, 9, 7), 6, dict(stride=1, padding=1), (3, 3), ["im2col_{}", "col2im_{}"]),      # C*9 > 288: im2col
    ((2, 3, 12, 11), 4, dict(stride=(2, 1), padding=(2, 1), dilation=(1, 2)), (5, 3), ["im2col_{}", "col2im_{}"]),
    ((2, 4, 9, 8), 6, dict(stride=1, padding=1, groups=2), (3, 3), ["im2col_{}", "col2im_{}"]),
    ((2, 5, 7, 6), 3, dict(), (1, 1), ["im2col_{}", "col2im_{}"]),
]


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: str(c[2]) + str(c[3]))
def test_conv_gpu_body(dev, case, rng):
    shape, o, kw, k, expect = case
    g = kw.get("groups", 1)
    x = rng.standard_normal(shape)
    w = rng.standard_normal((o, shape[1] // g, *k))
    b = rng.standard_normal(o)
    bias = "padding" in kw and kw.get("padding") == 1 and g == 1 and shape[1] == 3
    arrays = [x, w, b] if bias or "bias_grad_{}" in expect else [x, w]

    def f(*t):
        return F.conv2d(*t, **kw)
    got = run(dev, f, arrays)
    dev.ran(*[e.format("f64") for e in expect])
    same(got, run_cpu(lambda *t: conv2d_naive(*t, **kw), arrays), F64)
    got32 = run(dev, f, [a.astype(np.float32) for a in arrays])
    same(got32, run_cpu(f, [a.astype(np.float32) for a in arrays]), F32)


def test_conv_algorithm_rule():
    from minicnn.ops.gpu_conv import choose_gpu_conv_algorithm as choose
    assert choose((3, 3), (1, 1), (1, 1), 1, 32) == "direct"
    assert choose((3, 3), (1, 1), (1, 1), 1, 33) == "im2col"
    assert choose((3, 3), (2, 2), (1, 1), 1, 256) == "direct"
    assert choose((3, 3), (1, 1), (2, 2), 1, 3) == "im2col"       # dilation: not the direct kernel's
    assert choose((3, 3), (1, 1), (1, 1), 2, 3) == "im2col"       # groups
    assert choose((5, 5), (1, 1), (1, 1), 1, 3) == "im2col"
    assert choose((3, 3), (3, 3), (1, 1), 1, 3) == "im2col"


def test_conv_gradcheck_on_device(dev, rng):
    x, w, b = rng.standard_normal((1, 2, 5, 6)), rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3)
    on_dev_gradcheck(dev, lambda *t: F.conv2d(*t, padding=1), [x, w, b])                       # direct
    on_dev_gradcheck(dev, lambda *t: F.conv2d(*t, stride=2, padding=(1, 0), dilation=(1, 2)), [x, w, b])  # im2col
    x40 = rng.standard_normal((1, 40, 5, 4))
    on_dev_gradcheck(dev, lambda *t: F.conv2d(*t, padding=1), [x40, rng.standard_normal((2, 40, 3, 3))],
                     mode="directional")


# ---- depthwise ---------------------------------------------------------------------------------
DW_CASES = [((2, 3, 19, 18), 1, dict(stride=1, padding="same"), (3, 3), True),
            ((2, 3, 19, 17), 1, dict(stride=(2, 1), padding=(2, 1), dilation=(1, 2)), (5, 3), True),
            ((2, 3, 9, 8), 2, dict(stride=1, padding=1), (3, 3), False)]                     # multiplier 2: reference


@pytest.mark.parametrize("case", DW_CASES, ids=lambda c: f"m{c[1]}-{c[2]}")
def test_depthwise_gpu_body(dev, case, rng):
    shape, m, kw, k, on_kernels = case
    x, w, b = rng.standard_normal(shape), rng.standard_normal((shape[1] * m, 1, *k)), rng.standard_normal(shape[1] * m)

    def f(*t):
        return F.depthwise_conv2d(*t, **kw)
    got = run(dev, f, [x, w, b])
    if on_kernels:
        dev.ran("depthwise_forward_f64", "depthwise_input_grad_f64", "depthwise_weight_grad_f64", "bias_grad_f64")
    same(got, run_cpu(lambda *t: depthwise_conv2d_naive(*t, **kw), [x, w, b]), F64)
    arrays32 = [a.astype(np.float32) for a in (x, w, b)]
    same(run(dev, f, arrays32), run_cpu(f, arrays32), F32)
    small = [x[:1, :, :7, :6], w, b]
    on_dev_gradcheck(dev, f, small)


# ---- pooling -----------------------------------------------------------------------------------
POOLS = [(2, None, 0), (3, 2, 1), (3, 1, "same"), ((2, 3), (1, 2), "same")]


@pytest.mark.parametrize("case", POOLS)
def test_max_pool_gpu_body(dev, case, rng):
    k, s, p = case
    x = rng.permutation(2 * 3 * 11 * 9).reshape(2, 3, 11, 9) / 7.0
    x[0, 0, :3, :3] = 2.0                                   # ties: the first maximum takes the gradient

    def f(t):
        return F.max_pool2d(t, k, s, p)
    got = run(dev, f, [x])
    dev.ran("maxpool_forward_f64", "maxpool_backward_f64")
    same(got, run_cpu(lambda t: max_pool2d_naive(t, k, s, p), [x]), F64)
    same(run(dev, f, [x.astype(np.float32)]), run_cpu(f, [x.astype(np.float32)]), F32)
    on_dev_gradcheck(dev, f, [rng.permutation(60).reshape(1, 2, 6, 5) / 9.0])


@pytest.mark.parametrize("case", POOLS)
@pytest.mark.parametrize("include", [True, False])
def test_avg_pool_gpu_body(dev, case, include, rng):
    k, s, p = case
    x = rng.standard_normal((2, 3, 11, 9))

    def f(t):
        return F.avg_pool2d(t, k, s, p, count_include_pad=include)
    got = run(dev, f, [x])
    dev.ran("avgpool_forward_f64", "avgpool_backward_f64")
    same(got, run_cpu(lambda t: avg_pool2d_naive(t, k, s, p, count_include_pad=include), [x]), F64)
    same(run(dev, f, [x.astype(np.float32)]), run_cpu(f, [x.astype(np.float32)]), F32)
    on_dev_gradcheck(dev, f, [x[:1, :2, :6, :5]])


# ---- batch norm --------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(4, 3, 5, 7), (6, 5), (3, 4, 9)])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_gpu_body(dev, shape, training, affine, rng):
    c = shape[1]
    x = rng.standard_normal(shape) * 2 + 3
    wb = [rng.standard_normal(c), rng.standard_normal(c)] if affine else []
    stats = {"dev": (np.full(c, 0.5), np.full(c, 2.0)), "ref": (np.full(c, 0.5), np.full(c, 2.0))}
    dev_stats = [Tensor(a).to("cuda") for a in stats["dev"]]

    def f(x, *wb):
        return F.batch_norm(x, dev_stats[0], dev_stats[1], *wb, training=training)
    got = run(dev, f, [x, *wb])
    dev.ran("bn_forward_f64", "bn_backward_reduce_f64", "bn_backward_input_f64", *(["bn_stats_f64"] * training))
    same(got, run_cpu(lambda x, *wb: batch_norm_naive(x, *stats["ref"], *wb, training=training), [x, *wb]), F64)
    for d, r in zip(dev_stats, stats["ref"]):                 # running statistics moved the same way
        np.testing.assert_allclose(d.numpy(), r, **F64)
    x32, wb32 = x.astype(np.float32), [a.astype(np.float32) for a in wb]
    cpu_stats = [np.full(c, 0.5, np.float32), np.full(c, 2.0, np.float32)]
    dev_stats = [Tensor(a).to("cuda") for a in cpu_stats]
    same(run(dev, f, [x32, *wb32]),
         run_cpu(lambda x, *wb: F.batch_norm(x, *cpu_stats, *wb, training=training), [x32, *wb32]), F32)
    if len(shape) == 4 and affine:
        dev_stats = [Tensor(np.zeros(c)).to("cuda"), Tensor(np.ones(c)).to("cuda")]
        on_dev_gradcheck(dev, f, [x[:2, :, :3, :4], *wb])


# ---- ReLU, dropout, the generic ops ---------------------------------------------------------------
def test_relu_gpu_body(dev, rng):
    x = rng.standard_normal((3, 4, 5))
    x[0, 0, :2] = 0.0
    got = run(dev, F.relu, [x])
    dev.ran("bias_act_f64", "relu_backward_f64")
    same(got, run_cpu(F.relu, [x]), {"rtol": 0, "atol": 0})
    on_dev_gradcheck(dev, F.relu, [x + np.where(x >= 0, 0.1, -0.1)])   # away from the kink


def test_dropout_on_device(dev):
    minicnn.manual_seed(3)
    x = dev.put(np.ones((50, 40), np.float32), requires_grad=True)
    y = F.dropout(x, 0.25, training=True)
    assert y.device == "cuda" and y.dtype == np.float32
    vals = np.unique(y.numpy())
    assert set(vals.tolist()) <= {0.0, np.float32(1 / 0.75)} and 0.6 < (y.numpy() > 0).mean() < 0.9
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), y.numpy())


def small_model(c=3):
    return nn.Sequential(
        nn.Conv2d(c, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.DepthwiseConv2d(8, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
        nn.Conv2d(8, 40, 1), nn.ReLU(), nn.Conv2d(40, 6, 3, padding=1),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.0), nn.Linear(6, 4))


def test_every_layer_of_a_model_on_device(dev, rng):
    """A model with every layer kind, float64: output, loss and all parameter gradients match the CPU."""
    minicnn.manual_seed(1)
    cpu = small_model().double()
    gpu = small_model().double()
    gpu.load_state_dict(cpu.state_dict())
    gpu.to("cuda")
    assert all(p.device == "cuda" for p in gpu.parameters()) and all(b.device == "cuda" for _, b in gpu.named_buffers())
    x, y = rng.standard_normal((3, 3, 13, 11)), np.array([0, 3, 1])
    losses = []
    for model, dv in ((cpu, "cpu"), (gpu, "cuda")):
        out = model(Tensor(x).to(dv))
        loss = F.cross_entropy(out, Tensor(y).to(dv))
        loss.backward()
        losses.append(loss.item())
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-10)
    for (name, p), q in zip(cpu.named_parameters(), gpu.parameters()):
        np.testing.assert_allclose(q.grad.numpy(), p.grad.numpy(), rtol=1e-8, atol=1e-10, err_msg=name)
    for (name, b), (_, d) in zip(cpu.named_buffers(), gpu.named_buffers()):
        np.testing.assert_allclose(d.numpy(), b.numpy(), rtol=1e-10, err_msg=name)


# ---- the fused Adam / AdamW kernel -------------------------------------------------------------
@pytest.mark.parametrize("cls,wd", [(optim.Adam, 0.0), (optim.Adam, 0.1), (optim.AdamW, 0.05)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_adam_matches_cpu(dev, cls, wd, dtype, rng):
    p0 = rng.standard_normal((7, 13)).astype(dtype)
    grads = [rng.standard_normal(p0.shape).astype(dtype) for _ in range(4)]
    results = []
    for where in ("cpu", "cuda"):
        p = Tensor(p0.copy()).to(where).requires_grad_(True)
        opt = cls([p], lr=0.01, weight_decay=wd)
        for g in grads:
            p.grad = Tensor(g).to(where)
            opt.step()
        results.append((p.numpy(), opt.state[id(p)]["exp_avg"], opt.state[id(p)]["exp_avg_sq"]))
    dev.ran(f"adam_{'f32' if dtype == np.float32 else 'f64'}")
    tol = F32 if dtype == np.float32 else F64
    for a, b in zip(results[0], results[1]):
        np.testing.assert_allclose(minicnn.backend.to_device(b, "cpu"), a, **tol)


# ---- devices -----------------------------------------------------------------------------------
def test_tensor_moves_and_gradient_flows_back(dev):
    a = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    g = a.cuda()
    assert a.device == "cpu" and g.device == "cuda" and g.cuda() is g and a.cpu() is a
    assert g.to("cuda:0") is g and g.cpu().device == "cpu"
    (g * g).sum().backward()
    assert a.grad.device == "cpu"
    np.testing.assert_allclose(a.grad.numpy(), 2 * np.arange(6.0).reshape(2, 3))
    h = g.to("cpu", np.float32)
    assert h.device == "cpu" and h.dtype == np.float32


def test_ops_on_two_devices_raise_naming_both(dev):
    a, b = Tensor(np.ones(3)), Tensor(np.ones(3)).cuda()
    with pytest.raises(DeviceMismatchError, match=r"Add: inputs are on different devices \(input 0 \(3,\) on cpu, "
                                                   r"input 1 \(3,\) on cuda\)"):
        a + b
    conv = nn.Conv2d(1, 1, 3)
    with pytest.raises(DeviceMismatchError, match="Conv2dFn.*cuda.*cpu"):
        conv(Tensor(np.ones((1, 1, 5, 5), np.float32)).cuda())


def test_optimizer_state_follows_its_parameters(dev, rng):
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    opt = optim.Adam(model.parameters(), lr=0.01)
    x = rng.standard_normal((5, 4)).astype(np.float32)

    def step(where):
        opt.zero_grad()
        model(Tensor(x).to(where)).sum().backward()
        opt.step()
    step("cpu")
    model.to("cuda")
    assert all(b.device == "cuda" for _, b in model.named_buffers())
    step("cuda")
    assert all(get_array_module(v) is not np for s in opt.state.values() for v in s.values() if hasattr(v, "shape"))
    model.to("cpu")
    step("cpu")
    assert all(isinstance(v, np.ndarray) and not isinstance(v, FakeDeviceArray)
               for s in opt.state.values() for v in s.values() if hasattr(v, "shape"))


def test_ops_without_a_gpu_body_are_only_the_loop_references():
    """Every op with a CPU body has a GPU body, except the *_naive loop references (CPU-only by design)."""
    cpu_only = set()
    for mod in (ops.conv, ops.depthwise, ops.pooling, ops.normalization, ops.activations, ops.naive,
                ops.elementwise, ops.reductions, ops.shapes, ops.losses, ops.linear, ops.dropout):
        for _, cls in inspect.getmembers(mod, inspect.isclass):
            if issubclass(cls, Function) and cls.forward_cpu is not Function.forward_cpu \
                    and cls.forward_gpu is Function.forward_gpu:
                cpu_only.add(cls.__name__)
    assert cpu_only == {"Conv2dNaiveFn", "MaxPool2dNaiveFn", "AvgPool2dNaiveFn", "AdaptiveAvgPool2dNaiveFn",
                        "AdaptiveMaxPool2dNaiveFn"}


def test_cpu_only_op_on_device_raises_backend_error(dev):
    with pytest.raises(BackendError, match="MaxPool2dNaiveFn"):
        max_pool2d_naive(Tensor(np.ones((1, 1, 4, 4))).cuda(), 2)


def test_asking_for_cuda_without_a_gpu_is_one_clear_error():
    if minicnn.backend.gpu_module() is not None or mc.is_available():
        pytest.skip("a GPU module is loaded here")
    with pytest.raises(mc.CudaUnavailable, match="device 'cuda'.*(pip install|driver|no GPU)"):
        Tensor(np.ones(2)).to("cuda")
    with pytest.raises(mc.CudaUnavailable):
        nn.Linear(2, 2).to("cuda")


# ---- training on the device --------------------------------------------------------------------
def _train_losses(device: str, workers: int, steps_seen: list | None = None) -> list[float]:
    from minicnn.data import DataLoader
    from minicnn.train import fit
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((24, 3, 12, 12)).astype(np.float32)
    ys = (xs[:, 0].mean(axis=(1, 2)) > 0).astype(np.int64) * 3

    class Data:
        def __len__(self):
            return len(xs)

        def __getitem__(self, i):
            return xs[i], ys[i]
    minicnn.manual_seed(0)
    model = small_model()
    opt = optim.AdamW(model.parameters(), lr=3e-3)
    loader = DataLoader(Data(), batch_size=8, shuffle=True, seed=1, num_workers=workers)
    if steps_seen is not None:
        inner = loader._load_moved

        def spy(*a):
            batch = inner(*a)
            steps_seen.append(type(batch[0]).__name__)
            return batch
        loader._load_moved = spy
    hist = fit(model, loader, loss_fn=F.cross_entropy, optimizer=opt, epochs=3, device=device, verbose=0)
    assert loader.device is None                               # fit put the loader back as it was
    return hist["loss"]


def test_fit_on_device_matches_the_cpu_run(dev):
    """A short training run on the device follows the CPU run's loss curve within float32 tolerance;
    the loader's worker threads deliver the batches already on the device."""
    cpu = _train_losses("cpu", workers=0)
    seen: list = []
    got = _train_losses("cuda", workers=2, steps_seen=seen)
    assert seen and all(s != "ndarray" or dev.kind == "gpu" for s in seen)
    if dev.kind == "fake":
        assert set(seen) == {"FakeDeviceArray"}
    np.testing.assert_allclose(got, cpu, rtol=2e-3, atol=2e-4)
    assert cpu[-1] < cpu[0]


# ---- only a GPU can show these ------------------------------------------------------------------
@pytest.mark.gpu
def test_gpu_results_repeat_bitwise_with_full_grids(rng):
    """Races between blocks (all blocks resident at once, full grids): kernels use no atomics, so
    every output must be bit-identical from run to run."""
    try:
        cp = mc.require()
    except mc.CudaUnavailable as e:
        pytest.skip(f"no usable GPU: {e}")
    x = rng.standard_normal((8, 32, 45, 47)).astype(np.float32)
    model = small_model(32)
    model.to("cuda")
    outs = []
    for _ in range(3):
        for p in model.parameters():
            p.grad = None
        xt = Tensor(x).cuda().requires_grad_(True)
        y = model.eval()(xt)
        y.sum().backward()
        cp.cuda.Device().synchronize()
        outs.append([y.numpy(), xt.grad.numpy()] + [p.grad.numpy() for p in model.parameters()])
    for run_ in outs[1:]:
        for a, b in zip(outs[0], run_):
            np.testing.assert_array_equal(a, b)


def test_import_minicnn_and_train_on_cpu_never_import_cupy(tmp_path):
    """With a `cupy` that raises on import, `import minicnn`, a CPU training step and asking whether CUDA
    is there all work, and nothing imports cupy until 'cuda' is asked for."""
    import subprocess
    import sys
    from pathlib import Path
    (tmp_path / "cupy").mkdir()
    (tmp_path / "cupy" / "__init__.py").write_text("raise RuntimeError('cupy was imported')\n")
    code = """
import sys
import numpy as np
import minicnn
from minicnn import nn, optim
import minicnn.nn.functional as F
model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                      nn.Flatten(), nn.Dropout(0.5), nn.Linear(16, 2))
opt = optim.Adam(model.parameters())
loss = F.cross_entropy(model(minicnn.tensor(np.ones((2, 1, 4, 4), np.float32))), np.array([0, 1]))
loss.backward(); opt.step()
assert 'cupy' not in sys.modules, 'imported by training'
assert minicnn.cuda.is_available() is False
try:
    minicnn.tensor([1.0]).to('cuda')
except minicnn.cuda.CudaUnavailable as e:
    print('refused:', e)
"""
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                          env={"PYTHONPATH": f"{tmp_path}:{root}", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert "refused: device 'cuda': importing CuPy failed (RuntimeError: cupy was imported)" in proc.stdout
