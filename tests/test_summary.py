"""summary(): nested names, output shapes, each parameter once, trainable vs frozen, MACs; no side effects."""
import numpy as np
import pytest

import minicnn
from minicnn import nn
from minicnn.models import pneumonia_cnn
from minicnn.nn.summary import layer_macs, summarize, summary


def rows_by_name(s):
    return {r.name: r for r in s.rows}


def test_pneumonia_cnn_table():
    model = pneumonia_cnn(28)
    text = model.summary((1, 28, 28), print_fn=None)
    assert "5.0.depthwise (DepthwiseConv2d)" in text and "5.0.pointwise (Conv2d)" in text  # nested names
    assert "(None, 256, 1, 1)" in text and "(None, 1)" in text
    assert f"Total params: {model.num_parameters():,}" in text
    s = summarize(model)  # the model records its input shape
    assert sum(r.params for r in s.rows) == model.num_parameters()  # every parameter in exactly one row
    assert s.total_params == 348_417 and s.frozen_params == 0
    assert s.buffer_elements == sum(b.size for _, b in model.named_buffers()) > 0


def test_output_shapes_and_macs_hand_computed():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.SeparableConv2d(8, 16, 3), nn.Flatten(), nn.Linear(16 * 2 * 2, 5))
    s = summarize(model, (3, 8, 8))
    r = rows_by_name(s)
    assert r["0"].output_shape == "(None, 8, 8, 8)" and r["2"].output_shape == "(None, 8, 4, 4)"
    assert r["3.depthwise"].output_shape == "(None, 8, 2, 2)" and r["3.pointwise"].output_shape == "(None, 16, 2, 2)"
    assert "3" not in r  # a container that only calls its children is not a row of its own
    assert r["0"].macs == 8 * 8 * 8 * (3 * 3 * 3)   # per output element: in_channels * kh * kw
    assert r["3.depthwise"].macs == 8 * 2 * 2 * 9    # depthwise: kh * kw per output element
    assert r["3.pointwise"].macs == 16 * 2 * 2 * 8
    assert r["5"].macs == 5 * 64
    assert r["1"].macs == r["2"].macs == 0           # activations and pooling are not counted
    assert s.total_macs == 13824 + 288 + 512 + 320
    assert "Total MACs: 14,944 per sample" in str(s)
    # per sample: the batch size does not change the count
    assert summarize(model, (3, 8, 8), batch_size=3).total_macs == s.total_macs


def test_grouped_conv_macs():
    conv = nn.Conv2d(4, 6, 3, groups=2)
    y = conv(minicnn.tensor(np.zeros((2, 4, 5, 5), np.float32)))
    assert layer_macs(conv, (), y) == 6 * 3 * 3 * (2 * 3 * 3)


def test_frozen_submodule_counts():
    model = pneumonia_cnn(28)
    backbone = [model[i] for i in range(10)]
    for m in backbone:
        m.requires_grad_(False)
    frozen = sum(p.size for m in backbone for p in m.parameters())
    s = summarize(model)
    assert s.frozen_params == frozen > 0 and s.trainable_params == model.num_parameters() - frozen
    r = rows_by_name(s)
    assert r["5.0.depthwise"].trainable == 0 and r["12.0"].trainable == r["12.0"].params
    text = str(s)
    assert f"Frozen params: {frozen:,}" in text and f"Trainable params: {model.num_parameters() - frozen:,}" in text


class OwnWeightPlusChild(nn.Module):
    """Owns a parameter and calls a child: both show up, each parameter once."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(np.ones(4, np.float32))
        self.fc = nn.Linear(4, 4)
        self.unused = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x) * self.scale


def test_own_parameters_shared_modules_and_uncalled():
    inner = OwnWeightPlusChild()
    shared = nn.Linear(4, 4)
    model = nn.Sequential(inner, shared, nn.ReLU(), shared)
    s = summarize(model, (4,))
    names = [r.name for r in s.rows]
    assert names == ["0", "0.fc", "1", "2", "1"]   # the shared layer is listed at each call
    assert [r.params for r in s.rows] == [4, 20, 20, 0, 0]  # ... its parameters counted once
    assert s.uncalled == ["0.unused"]
    assert s.total_params == 4 + 20 + 10 + 20 and "Not called by forward" in str(s)


def test_model_left_as_found_and_errors():
    model = nn.Sequential(nn.Linear(2, 3), nn.Dropout(0.5), nn.BatchNorm1d(3))
    model.train()
    model[1].eval()
    before = {k: v.copy() for k, v in model.state_dict().items()}
    summary(model, (2,), batch_size=4, print_fn=None)
    assert model.training and not model[1].training and model[2].training
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k])  # eval mode: running statistics untouched
    with pytest.raises(ValueError, match="input_shape"):
        summary(nn.Sequential(nn.Linear(2, 2)), print_fn=None)


def test_print_fn():
    out = []
    text = nn.Sequential(nn.Linear(2, 2)).summary((2,), print_fn=out.append)
    assert out == [text]
