"""Module forward hooks and pre-hooks: order, replacement of inputs/outputs, removal."""
import numpy as np
import pytest

import minicnn
from minicnn import nn


def x_of(*shape):
    return minicnn.tensor(np.arange(np.prod(shape), dtype=np.float32).reshape(shape))


def test_hooks_see_args_and_output_in_order():
    layer = nn.ReLU()
    seen = []
    layer.register_forward_pre_hook(lambda m, args: seen.append(("pre", m, args[0].shape)))
    layer.register_forward_hook(lambda m, args, out: seen.append(("post", m, out.shape)))
    layer.register_forward_hook(lambda m, args, out: seen.append(("post2", m, out.shape)))
    layer(x_of(2, 3))
    assert seen == [("pre", layer, (2, 3)), ("post", layer, (2, 3)), ("post2", layer, (2, 3))]


def test_hooks_can_replace_input_and_output():
    layer = nn.Identity()
    layer.register_forward_pre_hook(lambda m, args: args[0] * 2)        # one value: a 1-tuple
    layer.register_forward_pre_hook(lambda m, args: (args[0] + 1,))     # a tuple: the new args
    layer.register_forward_hook(lambda m, args, out: out * 10)
    seen_args = []
    layer.register_forward_hook(lambda m, args, out: seen_args.append(args[0].numpy().copy()))
    y = layer(x_of(3))
    np.testing.assert_allclose(y.numpy(), (np.arange(3) * 2 + 1) * 10)
    np.testing.assert_allclose(seen_args[0], np.arange(3) * 2 + 1)  # later hooks see the replaced args


def test_remove_and_context_manager():
    layer = nn.Identity()
    calls = []
    h = layer.register_forward_hook(lambda m, a, o: calls.append(1))
    with layer.register_forward_pre_hook(lambda m, a: calls.append(0)):
        layer(x_of(1))
    layer(x_of(1))
    h.remove()
    h.remove()  # twice is harmless
    layer(x_of(1))
    assert calls == [0, 1, 1]
    assert not layer._forward_hooks and not layer._forward_pre_hooks


def test_hook_removing_itself_while_running():
    layer = nn.Identity()
    calls = []

    def once(m, a, o):
        calls.append(1)
        handle.remove()

    handle = layer.register_forward_hook(once)
    layer(x_of(1))
    layer(x_of(1))
    assert calls == [1]


def test_hooks_on_children_run_inside_the_parent_and_gradients_flow():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    order = []
    for name, m in model.named_modules():
        m.register_forward_pre_hook(lambda m, a, name=name: order.append(f"enter {name}"))
        m.register_forward_hook(lambda m, a, o, name=name: order.append(f"exit {name}"))
    # a hook that rewrites the output stays in the graph: d(sum(3 * y))/dy = 3
    model[2].register_forward_hook(lambda m, a, o: o * 3)
    x = minicnn.tensor(np.ones((2, 3), np.float32), requires_grad=True)
    model(x).sum().backward()
    assert order[:3] == ["enter ", "enter 0", "exit 0"] and order[-2:] == ["exit 2", "exit "]
    assert model[2].bias.grad.numpy().item() == pytest.approx(6.0)  # 2 samples * 3


def test_no_hooks_is_plain_forward():
    layer = nn.Linear(2, 2)
    assert not layer._forward_hooks
    y = layer(x_of(1, 2))
    np.testing.assert_allclose(y.numpy(), layer.forward(x_of(1, 2)).numpy())
