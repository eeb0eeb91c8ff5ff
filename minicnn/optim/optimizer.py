"""`Optimizer`: parameter groups, per-parameter state, zero_grad and state_dict (PyTorch's API).

Subclasses implement `_update(p, grad, state, group)`, which changes `p.data` with plain
NumPy/CuPy arithmetic: an optimizer step is not part of any autograd graph.
"""
from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

import numpy as np

from ..autograd import Tensor
from ..backend import device_of, get_array_module, to_device

ParamsT = Iterable[Tensor] | Iterable[dict]


class Optimizer:
    """Holds `param_groups` (dicts of 'params' plus options such as 'lr') and `state` per parameter."""

    def __init__(self, params: ParamsT, defaults: dict) -> None:
        if isinstance(params, Tensor):
            raise TypeError(f"{type(self).__name__} expects an iterable of Parameters or of dicts, got a single "
                            f"Tensor of shape {params.shape}; wrap it in a list: [param]")
        _check_ordered(type(self).__name__, params)
        self.defaults = dict(defaults)
        self.param_groups: list[dict] = []
        # Keyed by id(param): Tensor.__eq__ is elementwise, so Tensors make awkward dict keys.
        self.state: dict[int, dict] = {}
        groups: list[Any] = list(params)  # Tensors, or dicts with a 'params' key
        if not groups:
            raise ValueError(f"{type(self).__name__} got an empty parameter list "
                             f"(did model.parameters() run out? a generator can be consumed only once)")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, group: dict) -> None:
        """Add a dict {'params': [...], option: value}; missing options take the constructor's defaults."""
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError(f"{type(self).__name__}: a parameter group must be a dict with a 'params' key, "
                            f"got {type(group).__name__}")
        params = group["params"]
        _check_ordered(type(self).__name__, params)
        params = [params] if isinstance(params, Tensor) else list(params)
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__}: parameter group {len(self.param_groups)} item {i} "
                                f"is a {type(p).__name__}, not a Parameter/Tensor")
        ids = [id(p) for p in params]
        if len(set(ids)) != len(ids):
            raise ValueError(f"{type(self).__name__}: parameter group {len(self.param_groups)} lists the same "
                             f"parameter more than once")
        taken = {id(p) for g in self.param_groups for p in g["params"]}
        if taken.intersection(ids):
            raise ValueError(f"{type(self).__name__}: some parameters appear in more than one parameter group")
        new = {k: v for k, v in group.items() if k != "params"}
        for k, v in self.defaults.items():
            new.setdefault(k, v)
        self._check_group(new)
        new["params"] = params
        self.param_groups.append(new)

    def _check_group(self, group: dict) -> None:
        """Validate a group's options (subclasses raise ValueError on bad values)."""
        lr = group.get("lr", 0.0)
        if not lr >= 0.0:  # also catches NaN
            raise ValueError(f"{type(self).__name__}: invalid learning rate lr={lr}; it must be >= 0")

    # ---- the update ---------------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget gradients: set `.grad` to None (default) or to fresh zeros."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none or p.grad is None:
                    p.grad = None
                else:
                    # A fresh array, not an in-place fill: backward may share one gradient array
                    # between several parameters.
                    p.grad = Tensor(get_array_module(p.data).zeros_like(p.data))

    def step(self) -> None:
        """Update every parameter that has a gradient, group by group."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad.data
                if grad.shape != p.data.shape:
                    raise ValueError(f"{type(self).__name__}: gradient of shape {grad.shape} for a parameter "
                                     f"of shape {p.data.shape}")
                # Never modify `grad` in place: the array may be shared with other parameters.
                grad = grad.astype(p.data.dtype, copy=False)
                state = self.state.setdefault(id(p), {})
                _follow(state, p)
                self._update(p, grad, state, group)

    def _update(self, p: Tensor, grad: Any, state: dict, group: dict) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement _update()")

    # ---- checkpoints --------------------------------------------------------------------
    def state_dict(self) -> dict:
        """{'state': {index: {name: array|number}}, 'param_groups': [{options, 'params': [index]}],
        'optimizer': class name}.

        Parameters are numbered in group order, so the state fits a rebuilt model with the
        same parameter order. Arrays are host (NumPy) copies.
        """
        groups, state, index = [], {}, 0
        for group in self.param_groups:
            g = {k: copy.deepcopy(v) for k, v in group.items() if k != "params"}
            g["params"] = list(range(index, index + len(group["params"])))
            for p in group["params"]:
                if self.state.get(id(p)):
                    state[index] = {k: _host_copy(v) for k, v in self.state[id(p)].items()}
                index += 1
            groups.append(g)
        return {"state": state, "param_groups": groups, "optimizer": type(self).__name__}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore options and state saved by `state_dict()`; group and parameter counts must match."""
        name = type(self).__name__
        if not isinstance(state_dict, dict) or not {"state", "param_groups"} <= set(state_dict) <= \
                {"state", "param_groups", "optimizer"}:
            keys = sorted(state_dict) if isinstance(state_dict, dict) else type(state_dict).__name__
            raise ValueError(f"{name}.load_state_dict expects a dict with keys 'state' and 'param_groups', got {keys}")
        saved_groups = state_dict["param_groups"]
        saved_name = state_dict.get("optimizer")
        if saved_name is not None and saved_name != name:
            raise ValueError(f"{name}.load_state_dict: the state was saved by {saved_name}, not {name}; build the "
                             f"same optimizer as the saved run (or start without loading its state)")
        for gi, saved in enumerate(saved_groups):  # older states carry no class name: compare the options
            missing = sorted(set(self.defaults) - set(saved))
            if missing:
                raise ValueError(f"{name}.load_state_dict: parameter group {gi} of the state lacks {name}'s options "
                                 f"{missing} (it has {sorted(k for k in saved if k != 'params')}); was it saved by "
                                 f"another optimizer?")
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{name}.load_state_dict: the checkpoint has {len(saved_groups)} parameter groups, "
                             f"this optimizer has {len(self.param_groups)}")
        by_index: dict[int, Tensor] = {}
        for gi, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(f"{name}.load_state_dict: parameter group {gi} has {len(saved['params'])} "
                                 f"parameters in the checkpoint but {len(group['params'])} here")
            by_index.update(zip((int(i) for i in saved["params"]), group["params"]))

        new_state: dict[int, dict] = {}
        for index, pstate in state_dict["state"].items():
            p = by_index.get(int(index))
            if p is None:
                raise ValueError(f"{name}.load_state_dict: the checkpoint has state for parameter {index}, "
                                 f"which is in no parameter group")
            new_state[id(p)] = {k: _to_param(v, p, f"{name}.load_state_dict: state '{k}' of parameter {index}")
                                for k, v in pstate.items()}
        self.state = new_state
        for saved, group in zip(saved_groups, self.param_groups):
            params = group["params"]
            group.clear()
            group.update({k: copy.deepcopy(v) for k, v in saved.items() if k != "params"})
            group["params"] = params

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            opts = ", ".join(f"{k}={v}" for k, v in g.items() if k != "params")
            lines.append(f"  group {i}: {len(g['params'])} params, {opts}")
        return "\n".join(lines) + "\n)"


def _follow(state: dict, p: Tensor) -> None:
    """Move a parameter's state arrays to the parameter's device (after `model.to(device)`)."""
    dev = device_of(p.data)
    for k, v in state.items():
        if hasattr(v, "shape") and hasattr(v, "dtype") and device_of(v) != dev:
            state[k] = to_device(v, dev)


def _check_ordered(name: str, params: Any) -> None:
    if isinstance(params, (set, frozenset)):
        raise TypeError(f"{name}: parameters must be an ordered sequence, not a set "
                        f"(state_dict numbers them by position)")


def _host_copy(v: Any) -> Any:
    """A NumPy copy of an array (device arrays come to the host); other values deep-copied."""
    if hasattr(v, "shape") and hasattr(v, "dtype"):
        return np.array(to_device(v, "cpu"), copy=True)
    return copy.deepcopy(v)


def _to_param(v: Any, p: Tensor, where: str) -> Any:
    """Cast a saved state array to the parameter's dtype and device after checking its shape."""
    if not (hasattr(v, "shape") and hasattr(v, "dtype")) or np.ndim(v) == 0:
        return copy.deepcopy(v)
    if tuple(v.shape) != tuple(p.shape):
        raise ValueError(f"{where} has shape {tuple(v.shape)}, but the parameter has shape {tuple(p.shape)}")
    host = np.asarray(to_device(v, "cpu"), dtype=np.dtype(str(p.data.dtype)))
    return to_device(host.copy(), device_of(p.data))
