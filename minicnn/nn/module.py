"""`Module`: the base class of layers and models (PyTorch's API, NumPy underneath)."""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from ..autograd import Tensor, no_grad
from ..backend import to_device
from .hooks import ForwardHook, ForwardPreHook, RemovableHandle, call_with_hooks
from .parameter import Parameter
from .summary import summary


class StateDictKeyError(KeyError):
    """Missing or unexpected keys in load_state_dict (a KeyError that prints readably)."""

    def __str__(self) -> str:
        return str(self.args[0])


class Module:
    """Holds Parameters, buffers (non-learnable state such as running means) and sub-Modules.

    Assigning a Parameter, Module or buffer as an attribute registers it, so
    `parameters()`, `state_dict()`, `train()/eval()` and `to()` reach the whole tree.
    """

    # set in __init__ through object.__setattr__ (our __setattr__ needs them to exist first)
    _parameters: OrderedDict[str, Parameter | None]
    _buffers: OrderedDict[str, Tensor | None]
    _modules: OrderedDict[str, Module]  # assigning None to a child removes it (__setattr__)
    _forward_pre_hooks: OrderedDict[int, ForwardPreHook]
    _forward_hooks: OrderedDict[int, ForwardHook]
    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())

    # ---- registration -------------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}.__init__ must call super().__init__() "
                                 f"before assigning {name!r}")
        if name in self._buffers and not isinstance(value, (Parameter, Module)):
            value = value if value is None or isinstance(value, Tensor) else Tensor(value)
            self._buffers[name] = value
            object.__setattr__(self, name, value)
            return
        # Replacing a child keeps its slot (OrderedDict assignment), so a swapped layer in a
        # Sequential still runs in its place and state_dict keeps torchvision's key order.
        if isinstance(value, Parameter):
            self._modules.pop(name, None)
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._parameters.pop(name, None)
            self._modules[name] = value
        else:
            for d in (self._parameters, self._modules):
                d.pop(name, None)
        object.__setattr__(self, name, value)

    def register_buffer(self, name: str, value: Any) -> None:
        """Non-learnable state saved in state_dict (e.g. BatchNorm running statistics)."""
        self._buffers[name] = value if isinstance(value, Tensor) else Tensor(value)
        object.__setattr__(self, name, self._buffers[name])

    def add_module(self, name: str, module: Module | None) -> None:
        setattr(self, name, module)

    # ---- calling ------------------------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not (self._forward_pre_hooks or self._forward_hooks):  # the common case: no hooks at all
            return self.forward(*args, **kwargs)
        return call_with_hooks(self, self.forward, self._forward_pre_hooks, self._forward_hooks, args, kwargs)

    def register_forward_pre_hook(self, hook: ForwardPreHook) -> RemovableHandle:
        """Call hook(module, args) before every forward; a non-None result replaces args."""
        handle = RemovableHandle(self._forward_pre_hooks)
        self._forward_pre_hooks[handle.id] = hook
        return handle

    def register_forward_hook(self, hook: ForwardHook) -> RemovableHandle:
        """Call hook(module, args, output) after every forward; a non-None result replaces output."""
        handle = RemovableHandle(self._forward_hooks)
        self._forward_hooks[handle.id] = hook
        return handle

    # ---- traversal ----------------------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        yield prefix, self
        for name, m in self._modules.items():
            if m is not None:
                yield from m.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        for name, m in self._modules.items():
            if m is not None:
                yield name, m

    def children(self) -> Iterator[Module]:
        for _, m in self.named_children():
            yield m

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        seen: set[int] = set()
        for mname, m in self.named_modules(prefix):
            for pname, p in m._parameters.items():
                if p is not None and id(p) not in seen:
                    seen.add(id(p))
                    yield (f"{mname}.{pname}" if mname else pname), p

    def parameters(self) -> Iterator[Parameter]:
        for _, p in self.named_parameters():
            yield p

    def named_buffers(self) -> Iterator[tuple[str, Tensor]]:
        for mname, m in self.named_modules():
            for bname, b in m._buffers.items():
                if b is not None:
                    yield (f"{mname}.{bname}" if mname else bname), b

    # ---- modes and state ----------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    def requires_grad_(self, flag: bool = True) -> Module:
        """Freeze (False) or unfreeze every parameter, e.g. a pretrained backbone."""
        for p in self.parameters():
            p.requires_grad_(flag)
        return self

    def to(self, device: Any = None, dtype: Any = None) -> Module:
        """Move parameters and buffers in place to a device ('cpu'/'cuda') and/or float dtype."""
        if isinstance(device, (type, np.dtype)) and dtype is None:
            device, dtype = None, device
        for t in list(self.parameters()) + [b for _, b in self.named_buffers()]:
            data = t.data
            if device is not None:
                data = to_device(data, device)
            if dtype is not None and np.issubdtype(np.dtype(str(data.dtype)), np.floating):
                data = data.astype(dtype)
            t.data = data
            t.grad = None
        return self

    def double(self) -> Module:
        return self.to(dtype=np.float64)

    def float(self) -> Module:
        return self.to(dtype=np.float32)

    def state_dict(self) -> OrderedDict[str, np.ndarray]:
        """Parameters and buffers by dotted name, as NumPy arrays (copies)."""
        out: OrderedDict[str, np.ndarray] = OrderedDict()
        for name, p in self.named_parameters():
            out[name] = p.numpy().copy()
        for name, b in self.named_buffers():
            out[name] = b.numpy().copy()
        return out

    def load_state_dict(self, state: dict, strict: bool = True) -> tuple[list[str], list[str]]:
        """Copy arrays into parameters and buffers; strict=True refuses missing or extra keys."""
        own: dict[str, Tensor] = dict(self.named_parameters())
        own.update(self.named_buffers())
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        if strict and (missing or unexpected):
            msg = [f"error loading state_dict into {type(self).__name__}:"]
            if missing:
                msg.append(f"  missing keys: {missing}")
            if unexpected:
                msg.append(f"  unexpected keys: {unexpected}")
            raise StateDictKeyError("\n".join(msg))
        bad = []
        for k, t in own.items():
            if k in state:
                v = state[k]
                v = v.numpy() if isinstance(v, Tensor) else np.asarray(v)
                if tuple(v.shape) != tuple(t.shape):
                    bad.append(f"  {k}: checkpoint has shape {tuple(v.shape)}, model has {tuple(t.shape)}")
        if bad:
            raise ValueError(f"size mismatch loading state_dict into {type(self).__name__}:\n" + "\n".join(bad))
        with no_grad():
            for k, t in own.items():
                if k in state:
                    v = state[k]
                    v = v.numpy() if isinstance(v, Tensor) else np.asarray(v)
                    t.data = to_device(v.astype(t.data.dtype, copy=True), t.device)
        return missing, unexpected

    # ---- display ------------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        if not self._modules:
            return lines[0] + ")"
        for name, m in self._modules.items():
            sub = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({name}): {sub}")
        return "\n".join(lines) + "\n)"

    def summary(self, input_shape: Sequence[int] | None = None, batch_size: int = 1,
                print_fn: Callable[[str], Any] | None = print) -> str:
        """Print and return a table of layers: output shapes, parameters (trainable/frozen), MACs."""
        return summary(self, input_shape, batch_size, print_fn)

    def num_parameters(self, trainable_only: bool = False) -> int:
        return int(sum(p.size for p in self.parameters() if p.requires_grad or not trainable_only))
