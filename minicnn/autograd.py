"""The autograd core: `Tensor`, `Function` and the reverse-mode engine.

A `Function` computes its output from raw arrays in `forward` and maps the output's
gradient back to one gradient per input in `backward`. Calling a Function on Tensors
records it as the output's `creator`; `Tensor.backward()` walks those records in reverse
topological order and accumulates gradients. That is the whole idea.
"""
from __future__ import annotations

import builtins
import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from .backend import (
    Array,
    BackendError,
    DeviceMismatchError,
    device_of,
    get_array_module,
    gpu_module,
    normalize_device,
    to_device,
)

_grad_enabled = True


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    """Context in which no graph is recorded (inference, optimizer updates)."""
    global _grad_enabled
    old, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = old


@contextlib.contextmanager
def enable_grad() -> Iterator[None]:
    """Re-enable graph recording inside a `no_grad` block."""
    global _grad_enabled
    old, _grad_enabled = _grad_enabled, True
    try:
        yield
    finally:
        _grad_enabled = old


def is_grad_enabled() -> bool:
    return _grad_enabled


# Objects with `leaf_ready(tensor)` (a leaf's .grad is final for this backward) and
# `backward_done()`; minicnn.distributed uses them to all-reduce gradients during backward.
_backward_hooks: list[Any] = []


def add_backward_hook(hook: Any) -> Any:
    """Register `hook` (see `_backward_hooks`); returns a function that removes it."""
    _backward_hooks.append(hook)
    return lambda: _backward_hooks.remove(hook) if hook in _backward_hooks else None


DEFAULT_DTYPE = np.float32


def _to_array(data: Any, dtype: Any = None) -> Any:
    """Turn data into an ndarray; Python floats become float32, arrays keep their dtype."""
    if isinstance(data, Tensor):
        data = data.data
    xp = get_array_module(data)
    if dtype is not None:
        return xp.asarray(data, dtype=dtype)
    if isinstance(data, (np.ndarray, np.generic)) or xp is not np:
        return xp.asarray(data)
    arr = np.asarray(data)
    if arr.dtype == np.float64:  # Python floats and lists of them
        arr = arr.astype(DEFAULT_DTYPE)
    return arr


class Tensor:
    """An array plus what autograd needs: `requires_grad`, `grad` and the `creator` op."""

    __array_priority__ = 1000  # so ndarray + Tensor calls Tensor.__radd__
    __slots__ = ("data", "requires_grad", "grad", "creator", "name", "_retain", "__weakref__")

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None, name: str | None = None):
        self.data = _to_array(data, dtype)
        self.grad: Tensor | None = None
        self.creator: Function | None = None
        self.name = name
        self._retain = False
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    # ---- basic properties -------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def device(self) -> str:
        return device_of(self.data)

    @property
    def is_leaf(self) -> bool:
        return self.creator is None

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        body = np.array2string(np.asarray(to_device(self.data, "cpu")), precision=4, separator=", ", prefix="tensor(")
        extra = ", requires_grad=True" if self.requires_grad else ""
        if self.dtype != DEFAULT_DTYPE:
            extra = f", dtype={self.dtype}" + extra
        return f"tensor({body}{extra})"

    def requires_grad_(self, flag: bool = True) -> Tensor:
        """Turn gradient tracking on or off in place (freezing a parameter sets it False)."""
        if flag and not np.issubdtype(np.dtype(str(self.data.dtype)), np.floating):
            raise TypeError(f"only floating-point tensors can require gradients; got dtype {self.data.dtype}")
        self.requires_grad = bool(flag)
        return self

    def retain_grad(self) -> Tensor:
        """Keep `.grad` on this non-leaf tensor after backward (leaves always keep it)."""
        self._retain = True
        return self

    # ---- conversions ------------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        """The data as a NumPy array (copied from the GPU if needed); refuses if it needs grad."""
        return np.asarray(to_device(self.data, "cpu"))

    def item(self) -> float:
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element; this one has shape {self.shape}")
        return self.data.reshape(()).item()

    def tolist(self) -> Any:
        return self.numpy().tolist()

    def detach(self) -> Tensor:
        """A new leaf sharing this tensor's data, cut from the graph."""
        return Tensor(self.data)

    def to(self, device: Any = None, dtype: Any = None) -> Tensor:
        """Copy to 'cpu'/'cuda' and/or another dtype; returns self when nothing changes.

        Both moves are recorded by autograd (the gradient flows back to the source device and
        dtype), as in PyTorch. 'cuda' without a usable GPU raises minicnn.cuda.CudaUnavailable.
        """
        if isinstance(device, (type, np.dtype)) and dtype is None:
            device, dtype = None, device
        out = self
        if device is not None and normalize_device(device) != self.device:
            out = ToDevice(normalize_device(device))(out)
        if dtype is not None and out.data.dtype != dtype:
            out = Cast(dtype)(out)
        return out

    def cuda(self) -> Tensor:
        """This tensor on the GPU (self if already there)."""
        return self.to("cuda")

    def cpu(self) -> Tensor:
        """This tensor on the CPU as NumPy (self if already there)."""
        return self.to("cpu")

    def float(self) -> Tensor:
        return self.to(dtype=np.float32)

    def double(self) -> Tensor:
        return self.to(dtype=np.float64)

    def astype(self, dtype: Any) -> Tensor:
        return self.to(dtype=dtype)

    # ---- the engine ---------------------------------------------------------------------
    def backward(self, grad: Any = None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's `.grad`, in reverse topological order."""
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad: no input of the "
                               "computation had requires_grad=True (or it ran under no_grad())")
        xp = get_array_module(self.data)
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward() without a gradient needs a scalar output; this output has "
                                   f"shape {self.shape}. Reduce it first (e.g. .sum()) or pass grad=")
            g = xp.ones_like(self.data)
        else:
            g = to_device(_to_array(grad, self.data.dtype), self.device)
            if g.shape != self.shape:
                raise ValueError(f"backward(grad=...) has shape {g.shape}, the output has shape {self.shape}")

        order = _topological_order(self)
        grads: dict[int, Any] = {id(self): g}
        # Sums this loop allocated, by tensor id: no op has seen them yet, so later gradients
        # for the same tensor can be added into them in place (no fresh array per addition).
        # A sum leaves this dict when it is handed to an op's backward or to a .grad.
        owned: dict[int, Any] = {}
        for t in reversed(order):
            gt = grads.pop(id(t), None)
            owned.pop(id(t), None)
            if gt is None:
                continue
            fn = t.creator
            if fn is None or t._retain:
                gt_tensor = Tensor(gt)
                t.grad = gt_tensor if t.grad is None else Tensor(t.grad.data + gt)
            if fn is None:
                for h in _backward_hooks:  # every consumer of t came earlier in the order: its grad is final
                    h.leaf_ready(t)
                continue
            if fn.inputs is None:
                raise RuntimeError(f"trying to backward through the graph a second time: the buffers of "
                                   f"{type(fn).__name__} were freed by the first backward(). Pass "
                                   f"retain_graph=True to the first call if you need to backward twice.")
            gxs = fn.backward(gt)
            if not isinstance(gxs, tuple):
                gxs = (gxs,)
            for x, gx in zip(fn.inputs, gxs):
                if gx is None or not x.requires_grad:
                    continue
                if gx.shape != x.shape:
                    raise RuntimeError(f"{type(fn).__name__}.backward returned a gradient of shape {gx.shape} "
                                       f"for an input of shape {x.shape}")
                prev = grads.get(id(x))
                if prev is None:
                    grads[id(x)] = gx
                elif prev.dtype == gx.dtype and owned.get(id(x)) is prev:
                    prev += gx
                else:
                    grads[id(x)] = owned[id(x)] = prev + gx
            if not retain_graph:
                fn.release()
        for h in _backward_hooks:
            h.backward_done()

    # ---- operators and method forms: installed by minicnn.ops (install_tensor_methods) ------
    # The engine does not import the op library; these declarations tell type checkers what
    # `minicnn.ops` attaches when the package is imported.
    if TYPE_CHECKING:
        def __add__(self, other: Any) -> Tensor: ...
        def __radd__(self, other: Any) -> Tensor: ...
        def __sub__(self, other: Any) -> Tensor: ...
        def __rsub__(self, other: Any) -> Tensor: ...
        def __mul__(self, other: Any) -> Tensor: ...
        def __rmul__(self, other: Any) -> Tensor: ...
        def __truediv__(self, other: Any) -> Tensor: ...
        def __rtruediv__(self, other: Any) -> Tensor: ...
        def __neg__(self) -> Tensor: ...
        def __pow__(self, p: Any) -> Tensor: ...
        def __matmul__(self, other: Any) -> Tensor: ...
        def __rmatmul__(self, other: Any) -> Tensor: ...
        def __getitem__(self, index: Any) -> Tensor: ...
        def __abs__(self) -> Tensor: ...
        def exp(self) -> Tensor: ...
        def log(self) -> Tensor: ...
        def sqrt(self) -> Tensor: ...
        def abs(self) -> Tensor: ...
        def clip(self, min: Any = None, max: Any = None) -> Tensor: ...
        def clamp(self, min: Any = None, max: Any = None) -> Tensor: ...
        # reductions take PyTorch's dim=/keepdim= or NumPy's axis=/keepdims= (see ops.reductions)
        def sum(self, dim: Any = None, keepdim: Any = None, *, axis: Any = None, keepdims: Any = None) -> Tensor: ...
        def mean(self, dim: Any = None, keepdim: Any = None, *, axis: Any = None, keepdims: Any = None) -> Tensor: ...
        def max(self, dim: Any = None, keepdim: Any = None, *, axis: Any = None, keepdims: Any = None) -> Any: ...
        def min(self, dim: Any = None, keepdim: Any = None, *, axis: Any = None, keepdims: Any = None) -> Any: ...
        def amax(self, dim: Any = None, keepdim: Any = None, *, axis: Any = None, keepdims: Any = None) -> Tensor: ...
        def amin(self, dim: Any = None, keepdim: Any = None, *, axis: Any = None, keepdims: Any = None) -> Tensor: ...
        def argmin(self, dim: Any = None, keepdim: Any = None, *, axis: Any = None, keepdims: Any = None) -> Tensor: ...
        def var(self, dim: Any = None, keepdim: Any = None, *, correction: Any = None, unbiased: Any = None,
                ddof: Any = None, axis: Any = None, keepdims: Any = None) -> Tensor: ...
        def std(self, dim: Any = None, keepdim: Any = None, *, correction: Any = None, unbiased: Any = None,
                ddof: Any = None, axis: Any = None, keepdims: Any = None) -> Tensor: ...
        def softmax(self, dim: Any = None, *, axis: Any = None) -> Tensor: ...
        def log_softmax(self, dim: Any = None, *, axis: Any = None) -> Tensor: ...
        def reshape(self, *shape: Any) -> Tensor: ...
        def view(self, *shape: Any) -> Tensor: ...
        def transpose(self, dim0: int, dim1: int) -> Tensor: ...
        def permute(self, *dims: Any) -> Tensor: ...
        def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor: ...
        def relu(self) -> Tensor: ...
        def sigmoid(self) -> Tensor: ...
        def tanh(self) -> Tensor: ...
        @property
        def T(self) -> Tensor: ...

    # Comparisons give plain (non-differentiable) boolean tensors.
    def __lt__(self, other): return Tensor(self.data < _raw(other))
    def __le__(self, other): return Tensor(self.data <= _raw(other))
    def __gt__(self, other): return Tensor(self.data > _raw(other))
    def __ge__(self, other): return Tensor(self.data >= _raw(other))
    def __eq__(self, other): return Tensor(self.data == _raw(other))
    def __ne__(self, other): return Tensor(self.data != _raw(other))
    __hash__ = object.__hash__

    def __bool__(self) -> bool:
        return bool(self.data)

    def __float__(self) -> builtins.float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def argmax(self, dim: Any = None, keepdim: Any = None, *, axis: Any = None, keepdims: Any = None) -> Tensor:
        """Replaced by minicnn.ops (PyTorch's dim=/keepdim= or NumPy's axis=/keepdims=)."""
        return Tensor(self.data.argmax(axis=axis if dim is None else dim))


def _raw(x: Any) -> Any:
    return x.data if isinstance(x, Tensor) else x


def tensor(data: Any, requires_grad: bool = False, dtype: Any = None) -> Tensor:
    """Make a Tensor (float data defaults to float32; integer and bool data keep their kind)."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def as_tensor(x: Any, like: Tensor | None = None) -> Tensor:
    """Wrap a constant as a Tensor; a Python scalar takes `like`'s dtype (so x * 2 stays float32)."""
    if isinstance(x, Tensor):
        return x
    if like is not None and isinstance(x, (int, float, bool, np.generic)) and not isinstance(x, np.ndarray):
        xp = get_array_module(like.data)
        return Tensor(xp.asarray(x, dtype=like.data.dtype))
    return Tensor(x)


def _topological_order(root: Tensor) -> list[Tensor]:
    """Tensors reachable from root, inputs before outputs (iterative: deep nets overflow recursion)."""
    order: list[Tensor] = []
    seen: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    while stack:
        t, expanded = stack.pop()
        if expanded:
            order.append(t)
            continue
        if id(t) in seen:
            continue
        seen.add(id(t))
        stack.append((t, True))
        fn = t.creator
        if fn is not None and fn.inputs is not None:
            for x in fn.inputs:
                if x.requires_grad and id(x) not in seen:
                    stack.append((x, False))
    return order


class Function:
    """One differentiable operation: `forward` on arrays, `backward` from the output's gradient.

    Subclasses save what backward needs as attributes in `forward`. `self.needs_grad[i]`
    tells backward whether input i wants a gradient, so expensive ones can be skipped.

    The backend seam (Chainer's): an op whose array code is right on NumPy and CuPy alike
    overrides `forward` and `backward` directly. An op with backend-specific bodies leaves
    them alone and implements
        setup(*xs)                 argument checks, output geometry, saved state (shared)
        forward_cpu / forward_gpu  the body for NumPy / CuPy inputs
        backward_cpu / backward_gpu
    `forward` calls `setup` and then the body matching the inputs' array module; `backward`
    picks by the gradient's. A missing GPU body raises `BackendError` naming the op: arrays
    are never copied to the host behind the caller's back.
    """

    inputs: tuple[Tensor, ...] | None = None
    needs_grad: tuple[bool, ...] = ()

    def __call__(self, *inputs: Any) -> Tensor:
        like = next((x for x in inputs if isinstance(x, Tensor)), None)
        xs = tuple(as_tensor(x, like) for x in inputs)
        if len(xs) > 1 and gpu_module() is not None:  # no GPU module loaded: every array is on the CPU
            _check_same_device(self, xs)
        y = self.forward(*(x.data for x in xs))
        if isinstance(y, np.generic):  # NumPy reductions return scalars; keep arrays everywhere
            y = np.asarray(y)
        out = Tensor.__new__(Tensor)
        out.data, out.grad, out.creator, out.name, out._retain = y, None, None, None, False
        out.requires_grad = False
        if _grad_enabled and any(x.requires_grad for x in xs):
            out.requires_grad = True
            out.creator = self
            self.inputs = xs
            self.needs_grad = tuple(x.requires_grad for x in xs)
        return out

    def forward(self, *xs: Array, **kw: Any) -> Array:
        """Shared `setup`, then the CPU or GPU body by the inputs' array module.

        (`**kw` only makes this signature accept any override: calls pass arrays positionally.)
        """
        self.setup(*xs, **kw)
        if get_array_module(*xs) is np:
            return self.forward_cpu(*xs, **kw)
        return self.forward_gpu(*xs, **kw)

    def backward(self, gy: Array) -> Any:
        """The CPU or GPU body by the gradient's array module; returns one gradient per input."""
        if get_array_module(gy) is np:
            return self.backward_cpu(gy)
        return self.backward_gpu(gy)

    def setup(self, *xs: Array, **kw: Any) -> None:
        """Checks and saved state common to both backends (nothing by default)."""

    def forward_cpu(self, *xs: Array, **kw: Any) -> Array:
        raise NotImplementedError(f"{type(self).__name__} implements neither forward nor forward_cpu")

    def backward_cpu(self, gy: Array) -> Any:
        raise NotImplementedError(f"{type(self).__name__} implements neither backward nor backward_cpu")

    def forward_gpu(self, *xs: Array, **kw: Any) -> Array:
        raise BackendError(f"{type(self).__name__}: the GPU path of this op does not exist yet (no forward_gpu); "
                           f"its inputs are on the GPU. Move them with .to('cpu') to run it on the CPU.")

    def backward_gpu(self, gy: Array) -> Any:
        raise BackendError(f"{type(self).__name__}: the GPU path of this op does not exist yet (no backward_gpu); "
                           f"the gradient is on the GPU.")

    def release(self) -> None:
        """Drop saved arrays and inputs after backward so activations can be freed."""
        keep = {"needs_grad"}
        for k in list(vars(self)):
            if k not in keep:
                delattr(self, k)
        self.inputs = None


def _check_same_device(fn: Function, xs: tuple[Tensor, ...]) -> None:
    """Refuse an op whose inputs live on two devices (CuPy would fail later with a vaguer TypeError)."""
    devices = [device_of(x.data) for x in xs]
    if len(set(devices)) > 1:
        where = ", ".join(f"input {i} {tuple(x.shape)} on {d}" for i, (x, d) in enumerate(zip(xs, devices)))
        raise DeviceMismatchError(f"{type(fn).__name__}: inputs are on different devices ({where}); move them to "
                                  f"one device first, e.g. t.to('cuda') or model.to('cuda')")


class ToDevice(Function):
    """Copy to another device; the gradient is copied back to the source device."""

    def __init__(self, device: str):
        self.device = device

    def forward(self, x: Array) -> Array:
        self.src = device_of(x)
        return to_device(x, self.device)

    def backward(self, gy: Array) -> Array:
        return to_device(gy, self.src)


class Cast(Function):
    """Change dtype; the gradient is cast back."""

    def __init__(self, dtype: Any):
        self.dtype = dtype

    def forward(self, x: Array) -> Array:
        self.src = x.dtype
        return x.astype(self.dtype)

    def backward(self, gy: Array) -> Array:
        return gy.astype(self.src)

