"""Conv/pool layers: parameter layouts, init, Keras weight mapping, repr and bad-input errors."""
import math

import numpy as np
import pytest

from minicnn.autograd import Tensor
from minicnn.nn.conv import Conv2d, DepthwiseConv2d, SeparableConv2d
from minicnn.nn.pooling import AdaptiveAvgPool2d, AvgPool2d, GlobalAvgPool2d, MaxPool2d
from minicnn.ops import conv2d, conv2d_naive, depthwise_conv2d, max_pool2d


def img(*shape):
    return Tensor(np.random.default_rng(0).standard_normal(shape).astype(np.float32))


def test_conv2d_layer_shapes_init_and_forward():
    m = Conv2d(3, 16, 3, padding=1)
    assert m.weight.shape == (16, 3, 3, 3) and m.bias.shape == (16,)
    bound = 1 / math.sqrt(3 * 9)  # PyTorch default init: U(+-1/sqrt(fan_in)) for this weight
    assert np.abs(m.weight.data).max() <= bound and np.abs(m.weight.data).max() > 0.5 * bound
    assert m.weight.dtype == np.float32
    x = img(2, 3, 9, 7)
    y = m(x)
    assert y.shape == (2, 16, 9, 7) and y.dtype == np.float32
    np.testing.assert_allclose(y.data, conv2d(x, m.weight, m.bias, padding=1).data)
    assert [k for k, _ in m.named_parameters()] == ["weight", "bias"]


def test_conv2d_layer_options():
    m = Conv2d(4, 6, (3, 2), stride=(2, 1), padding="same", dilation=2, groups=2, bias=False)
    assert m.weight.shape == (6, 2, 3, 2) and m.bias is None
    assert m(img(1, 4, 7, 8)).shape == (1, 6, 4, 8)
    assert repr(m) == ("Conv2d(4, 6, kernel_size=(3, 2), stride=(2, 1), padding='same', dilation=(2, 2), "
                       "groups=2, bias=False)")
    assert repr(Conv2d(3, 16, 3)) == "Conv2d(3, 16, kernel_size=(3, 3))"


def test_depthwise_layer_matches_grouped_conv():
    m = DepthwiseConv2d(3, 3, depth_multiplier=2, padding="same")
    assert m.weight.shape == (6, 1, 3, 3)
    x = img(2, 3, 6, 5)
    np.testing.assert_allclose(m(x).data, conv2d(x, m.weight, m.bias, padding=1, groups=3).data, atol=1e-5)


def test_separable_parameter_names_and_composition():
    m = SeparableConv2d(3, 5, 3, padding="same", depth_multiplier=2)
    names = [k for k, _ in m.named_parameters()]
    assert names == ["depthwise.weight", "pointwise.weight", "pointwise.bias"]
    assert m.depthwise.weight.shape == (6, 1, 3, 3) and m.pointwise.weight.shape == (5, 6, 1, 1)
    x = img(2, 3, 7, 6)
    expected = conv2d(depthwise_conv2d(x, m.depthwise.weight, None, padding=1), m.pointwise.weight, m.pointwise.bias)
    np.testing.assert_allclose(m(x).data, expected.data, atol=1e-5)


def test_separable_load_keras_weights_matches_keras_math(rng):
    """Keras: out[c*m+k] = sum_ij x[c] * dk[i, j, c, k]; then a 1x1 conv with pk[0, 0, :, o]."""
    c, mult, out = 3, 2, 4
    dk, pk = rng.standard_normal((3, 3, c, mult)), rng.standard_normal((1, 1, c * mult, out))
    b = rng.standard_normal(out)
    m = SeparableConv2d(c, out, 3, depth_multiplier=mult).double()
    m.load_keras_weights(dk, pk, b)
    x = rng.standard_normal((1, c, 5, 6))
    # the Keras computation in channels-last with plain loops over taps
    xh = x[0].transpose(1, 2, 0)                       # (H, W, C)
    d = np.zeros((3, 4, c, mult))
    for i in range(3):
        for j in range(3):
            d += xh[i:i + 3, j:j + 4, :, None] * dk[i, j]
    keras = d.reshape(3, 4, c * mult) @ pk[0, 0] + b   # (oh, ow, out)
    np.testing.assert_allclose(m(Tensor(x)).data[0].transpose(1, 2, 0), keras, atol=1e-10)


def test_pool_layers():
    x = img(2, 3, 9, 8)
    assert MaxPool2d(2)(x).shape == (2, 3, 4, 4)
    assert MaxPool2d(3, 1, "same")(x).shape == (2, 3, 9, 8)
    assert MaxPool2d(4, 1, "same")(x).shape == (2, 3, 9, 8)
    np.testing.assert_allclose(MaxPool2d(3, 2, 1)(x).data, max_pool2d(x, 3, 2, 1).data)
    assert AvgPool2d(3, 2)(x).shape == (2, 3, 4, 3)
    assert AdaptiveAvgPool2d((2, 3))(x).shape == (2, 3, 2, 3)
    assert GlobalAvgPool2d()(x).shape == (2, 3)
    assert GlobalAvgPool2d(keepdims=True)(x).shape == (2, 3, 1, 1)
    assert repr(MaxPool2d(2)) == "MaxPool2d(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0))"


def test_layers_have_no_hidden_state_between_calls():
    m = Conv2d(2, 3, 3, stride=2, padding=1)
    x1, x2 = img(1, 2, 8, 8), img(3, 2, 5, 11)
    y1 = m(x1).data.copy()
    m(x2)
    np.testing.assert_array_equal(m(x1).data, y1)
    np.testing.assert_allclose(y1, conv2d_naive(x1.data.astype(np.float64), m.weight.data.astype(np.float64),
                                                m.bias.data.astype(np.float64), stride=2, padding=1).data, atol=1e-5)


# ---- bad input: a clear error naming the layer and the shapes ------------------------------------
@pytest.mark.parametrize("layer,shape,pattern", [
    (Conv2d(3, 16, 3), (2, 4, 8, 8),
     r"^Conv2d\(3, 16, kernel_size=\(3, 3\)\): expected input with 3 channels, got shape \(2, 4, 8, 8\)$"),
    (Conv2d(3, 16, 3), (3, 8, 8),
     r"Conv2d\(3, 16, kernel_size=\(3, 3\)\): expected a 4-D input .* got shape \(3, 8, 8\).*x\[None\]"),
    (Conv2d(1, 4, 5), (1, 1, 3, 8),
     r"Conv2d\(1, 4, kernel_size=\(5, 5\)\): kernel \(5, 5\).*larger than the padded input \(3, 8\)"),
    (Conv2d(1, 4, 3, dilation=3), (2, 1, 6, 6), r"dilated extent \(7, 7\).*output size would be \(0, 0\)"),
    (Conv2d(1, 4, (2, 9), padding=1), (2, 1, 6, 6), r"output size would be \(7, 0\)"),
    (DepthwiseConv2d(3, 3), (2, 2, 8, 8),
     r"DepthwiseConv2d\(3, kernel_size=\(3, 3\)\): expected input with 3 channels, got shape \(2, 2, 8, 8\)"),
    (DepthwiseConv2d(3, 3), (2, 3, 8), r"DepthwiseConv2d.*4-D.*\(2, 3, 8\)"),
    (SeparableConv2d(3, 8, 3), (2, 1, 8, 8),
     r"SeparableConv2d\(3, 8, kernel_size=\(3, 3\)\): expected input with 3 channels, got shape \(2, 1, 8, 8\)"),
    (SeparableConv2d(3, 8, 5), (2, 3, 4, 8), r"SeparableConv2d.*larger than the padded input \(4, 8\)"),
    (MaxPool2d(3), (2, 3, 2, 8), r"MaxPool2d\(kernel_size=\(3, 3\).*larger than the padded input \(2, 8\)"),
    (MaxPool2d(2), (8, 8), r"MaxPool2d.*4-D.*\(8, 8\)"),
    (AvgPool2d(3, padding=2), (1, 1, 8, 8), r"AvgPool2d.*at most half the kernel"),
    (AdaptiveAvgPool2d(2), (3, 8, 8), r"AdaptiveAvgPool2d.*4-D.*\(3, 8, 8\)"),
    (GlobalAvgPool2d(), (3, 8), r"GlobalAvgPool2d.*4-D.*\(3, 8\)"),
])
def test_bad_input_error_names_layer_and_shapes(layer, shape, pattern):
    with pytest.raises(ValueError, match=pattern):
        layer(Tensor(np.zeros(shape, dtype=np.float32)))


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="divisible by groups=2"):
        Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="padding must be"):
        Conv2d(3, 4, 3, padding="full")
    with pytest.raises(ValueError, match="kernel_size must be >= 1"):
        Conv2d(3, 4, 0)
    with pytest.raises(ValueError, match="output_size"):
        AdaptiveAvgPool2d(0)


def test_functional_errors(rng):
    with pytest.raises(ValueError, match=r"conv2d: expected input with 6 channels, got shape \(1, 4, 5, 5\)"):
        conv2d(rng.standard_normal((1, 4, 5, 5)), rng.standard_normal((2, 3, 3, 3)), groups=2)
    with pytest.raises(TypeError, match="dtypes differ"):
        conv2d(np.zeros((1, 1, 5, 5), np.float32), np.zeros((1, 1, 3, 3), np.float64))
    with pytest.raises(TypeError, match="floating point"):
        conv2d(np.zeros((1, 1, 5, 5), np.uint8), np.zeros((1, 1, 3, 3), np.uint8))
