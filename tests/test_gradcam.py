"""Grad-CAM against hand-derived maps, on tiny models; the model is left exactly as found."""
import numpy as np
import pytest

import minicnn
from minicnn import nn, optim
from minicnn.autograd import Tensor
from minicnn.data import make_phantoms
from minicnn.gradcam import default_target, grad_cam, resize_bilinear
from minicnn.models import pneumonia_cnn


def set_weights(layer, weight, bias):
    layer.weight.data[...] = np.asarray(weight, dtype=np.float32).reshape(layer.weight.shape)
    layer.bias.data[...] = np.asarray(bias, dtype=np.float32).reshape(layer.bias.shape)


def linear_head_model(k=3, classes=2, seed=0):
    """conv1x1 (target) -> global average -> linear: dscore/dA_k = W[c, k] / (h*w) everywhere."""
    rng = np.random.default_rng(seed)
    conv, fc = nn.Conv2d(1, k, 1), nn.Linear(k, classes)
    set_weights(conv, rng.normal(size=(k,)), rng.normal(size=(k,)))
    set_weights(fc, rng.normal(size=(classes, k)), np.zeros(classes))
    return nn.Sequential(conv, nn.GlobalAvgPool2d(), fc), conv, fc


def expected_cam(acts, w_row):
    cam = np.maximum(np.einsum("k,nkhw->nhw", w_row, acts), 0)
    lo, hi = cam.min(axis=(1, 2), keepdims=True), cam.max(axis=(1, 2), keepdims=True)
    return (cam - lo) / (hi - lo)


def test_resize_bilinear_hand_computed():
    m = np.array([[[0.0, 1.0], [0.0, 1.0]]])
    # output centres map to input x = -0.25, 0.25, 0.75, 1.25 -> clipped -> 0, .25, .75, 1
    np.testing.assert_allclose(resize_bilinear(m, (4, 4))[0], [[0, 0.25, 0.75, 1]] * 4)
    np.testing.assert_allclose(resize_bilinear(np.full((2, 3, 5), 7.0), (9, 4)), 7.0)
    np.testing.assert_allclose(resize_bilinear(m, (2, 2)), m)  # same size is the identity


def test_matches_hand_derived_map_for_each_class():
    model, conv, fc = linear_head_model()
    x = np.random.default_rng(1).normal(size=(2, 1, 6, 6)).astype(np.float32)
    acts = conv(Tensor(x)).numpy()
    w = fc.weight.numpy()
    for c in (0, 1):
        np.testing.assert_allclose(grad_cam(model, x, conv, class_idx=c), expected_cam(acts, w[c]), atol=1e-5)
    # default: each sample's argmax class
    pred = model(Tensor(x)).numpy().argmax(axis=1)
    ref = np.stack([expected_cam(acts[i:i + 1], w[pred[i]])[0] for i in range(2)])
    np.testing.assert_allclose(grad_cam(model, x, conv), ref, atol=1e-5)


def test_localises_a_bright_patch_and_upsamples():
    # conv3x3 of ones, pooled 2x2: the only evidence for the score is the bright patch
    conv, fc = nn.Conv2d(1, 1, 3, padding=1), nn.Linear(1, 1)
    set_weights(conv, np.ones(9), [0.0])
    set_weights(fc, [1.0], [0.0])
    model = nn.Sequential(conv, nn.ReLU(), nn.MaxPool2d(2), nn.GlobalAvgPool2d(), fc, nn.Sigmoid())
    x = np.zeros((1, 1, 16, 16), np.float32)
    x[0, 0, 10:14, 2:6] = 1.0
    cam = grad_cam(model, x, model[2])  # the pooled 8x8 map, resized back to 16x16
    assert cam.shape == (1, 16, 16) and cam.dtype == np.float32
    assert cam.min() == 0.0 and cam.max() == pytest.approx(1.0)
    peak = np.unravel_index(cam[0].argmax(), (16, 16))
    assert 9 <= peak[0] <= 14 and 1 <= peak[1] <= 6
    assert cam[0, :4, 10:].max() < 0.05  # far corner: no evidence


def test_explains_the_logit_not_the_saturated_probability():
    # the sigmoid is exactly 1.0 in float32, so d(prob)/dA = 0; the logit still has a gradient
    model, conv, fc = linear_head_model(classes=1)
    set_weights(fc, [50.0, 40.0, -30.0], [100.0])
    x = np.random.default_rng(2).normal(size=(1, 1, 5, 5)).astype(np.float32)
    with_sigmoid = nn.Sequential(model, nn.Sigmoid())
    assert with_sigmoid(Tensor(x)).numpy().item() == 1.0
    cam = grad_cam(with_sigmoid, x, conv)
    np.testing.assert_allclose(cam, grad_cam(model, x, conv), atol=1e-6)
    assert cam.max() == pytest.approx(1.0)
    # class 0 of a one-output model explains the negated logit
    acts = conv(Tensor(x)).numpy()
    np.testing.assert_allclose(grad_cam(model, x, conv, class_idx=0), expected_cam(acts, -fc.weight.numpy()[0]),
                               atol=1e-5)


def test_model_is_left_as_found():
    model, conv, fc = linear_head_model()
    model.train()
    fc.weight.requires_grad = False
    x = np.ones((1, 1, 4, 4), np.float32)
    grad_cam(model, x, conv)
    assert model.training and conv.training
    assert "forward" not in vars(conv)
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    assert fc.weight.requires_grad is False and conv.weight.requires_grad is True
    assert all(p.grad is None for p in model.parameters())
    assert model(Tensor(x)).shape == (1, 2)  # the layer still works after its forward was restored


def test_errors_name_the_problem():
    model, conv, _ = linear_head_model()
    x = np.ones((1, 1, 4, 4), np.float32)
    with pytest.raises(ValueError, match="was not called"):
        grad_cam(model, x, nn.Conv2d(1, 1, 1))
    assert "forward" not in vars(conv)
    with pytest.raises(ValueError, match=r"feature maps \(N, K, h, w\)"):
        grad_cam(model, x, model[1])  # GlobalAvgPool2d outputs (N, K)
    with pytest.raises(ValueError, match="out of range"):
        grad_cam(model, x, conv, class_idx=5)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        grad_cam(model, x[0], conv)
    with pytest.raises(TypeError, match="floating"):
        grad_cam(model, x.astype(np.uint8), conv)
    with pytest.raises(ValueError, match="no layer named 'features.9'"):
        grad_cam(model, x, "features.9")
    assert all(not m._forward_hooks for m in model.modules())  # hooks removed after errors too


def test_target_by_name_equals_target_by_module():
    model, conv, _ = linear_head_model()
    x = np.random.default_rng(3).normal(size=(2, 1, 6, 6)).astype(np.float32)
    np.testing.assert_array_equal(grad_cam(model, x, "0"), grad_cam(model, x, conv))
    np.testing.assert_array_equal(grad_cam(model, x), grad_cam(model, x, conv))  # the only conv: the default


@pytest.mark.parametrize("size,name,side", [(28, "6.2", 7), (64, "7.2", 8), (180, "9.2", 11)])
def test_default_target_is_the_last_conv_with_a_7x7_map(size, name, side):
    # pneumonia_cnn at 28 px: the last block's map is 1x1 (a constant, blank Grad-CAM);
    # the default is the last SeparableConv2d whose map is still >= 7x7
    model = pneumonia_cnn(size)
    x = np.random.default_rng(5).random((1, 1, size, size), dtype=np.float32)
    assert default_target(model, x) == name
    layer = dict(model.named_modules())[name]
    shapes = []
    with layer.register_forward_hook(lambda m, a, o: shapes.append(o.shape)):
        model.eval()(minicnn.tensor(x))
    assert isinstance(layer, nn.SeparableConv2d) and shapes[0][2:] == (side, side)
    if size == 28:
        np.testing.assert_array_equal(grad_cam(model, x), grad_cam(model, x, name))


def test_small_inputs_fall_back_to_the_largest_map():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.MaxPool2d(2), nn.Conv2d(2, 2, 3, padding=1),
                          nn.GlobalAvgPool2d(), nn.Linear(2, 1))
    x = np.random.default_rng(4).normal(size=(1, 1, 4, 4)).astype(np.float32)  # maps 4x4, then 2x2
    np.testing.assert_array_equal(grad_cam(model, x), grad_cam(model, x, model[0]))


def test_trained_model_maps_are_informative():
    """A few Adam steps on phantoms: each default map varies across the image and between images."""
    minicnn.manual_seed(0)
    images, labels = make_phantoms(64, size=28, seed=1)
    x = images[:, None].astype(np.float32) / 255   # (64, 1, 28, 28)
    y = labels[:, None].astype(np.float32)
    model = pneumonia_cnn(28, bn_momentum=0.1)
    opt, loss_fn = optim.Adam(model.parameters(), lr=1e-3), nn.BCELoss()
    for step in range(8):
        idx = np.arange(step * 8, step * 8 + 16) % 64
        loss = loss_fn(model(Tensor(x[idx])), Tensor(y[idx]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    cam = grad_cam(model, x[:6])
    assert cam.shape == (6, 28, 28)
    assert (cam.reshape(6, -1).std(axis=1) > 0.05).all()        # not constant (a 1x1 map would be)
    assert (cam.reshape(6, -1).max(axis=1) == pytest.approx(1.0))
    diffs = [np.abs(cam[i] - cam[j]).mean() for i in range(6) for j in range(i + 1, 6)]
    assert min(diffs) > 0.01                                     # each image gets its own map
