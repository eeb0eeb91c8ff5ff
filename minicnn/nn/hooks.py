"""Forward hooks: functions a Module calls around its forward, for inspecting or rewriting data.

    handle = layer.register_forward_hook(lambda module, args, output: print(output.shape))
    model(x)          # prints the layer's output shape
    handle.remove()   # or: with layer.register_forward_hook(...): ...

A pre-hook `hook(module, args)` runs before forward and may return new positional arguments
(a tuple, or one value meaning a 1-tuple); a hook `hook(module, args, output)` runs after it
and may return a replacement output. Returning None keeps what was there. Hooks run in the
order they were registered. `summary()` and Grad-CAM are built on them.
"""
from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

ForwardPreHook = Callable[[Any, tuple], Any]
ForwardHook = Callable[[Any, tuple, Any], Any]

_next_id = itertools.count()


class RemovableHandle:
    """Returned by `register_forward_*hook`; `.remove()` unregisters the hook (twice is harmless)."""

    def __init__(self, hooks: OrderedDict) -> None:
        self.id = next(_next_id)
        self._hooks = hooks

    def remove(self) -> None:
        self._hooks.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()


def call_with_hooks(module: Any, forward: Callable[..., Any], pre_hooks: OrderedDict, hooks: OrderedDict,
                    args: tuple, kwargs: dict) -> Any:
    """Run pre-hooks, forward(*args, **kwargs) and hooks, letting each replace what it was given."""
    for hook in list(pre_hooks.values()):  # a copy: a hook may remove itself while running
        new = hook(module, args)
        if new is not None:
            args = new if isinstance(new, tuple) else (new,)
    output = forward(*args, **kwargs)
    for hook in list(hooks.values()):
        new = hook(module, args, output)
        if new is not None:
            output = new
    return output
