"""Model zoo (issue 12): torchvision parameter counts and names, small inputs, head swaps,
freezing, Grad-CAM targets, the memory-efficient dense layer, the CT models and InceptionBlock."""
import gc

import numpy as np
import pytest

import minicnn
from minicnn import models, nn, optim
from minicnn.models.densenet import DenseLayer

# torchvision's documented num_params for 3x224x224 input and 1000 classes
TORCHVISION_PARAMS = {
    "resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032, "resnet101": 44_549_160,
    "densenet121": 7_978_856, "densenet161": 28_681_000, "densenet169": 14_149_480, "densenet201": 20_013_928,
    "vgg11": 132_863_336, "vgg11_bn": 132_868_840, "vgg13": 133_047_848, "vgg13_bn": 133_053_736,
    "vgg16": 138_357_544, "vgg16_bn": 138_365_992, "vgg19": 143_667_240, "vgg19_bn": 143_678_248,
}


@pytest.mark.parametrize("name", sorted(TORCHVISION_PARAMS))
def test_parameter_count_equals_torchvision(name):
    model = getattr(models, name)()
    assert model.num_parameters() == TORCHVISION_PARAMS[name]
    del model
    gc.collect()  # the VGGs hold ~0.55 GB each


def test_torchvision_names():
    keys = list(models.resnet50().state_dict())
    assert keys[:2] == ["conv1.weight", "bn1.weight"]
    for k in ["layer1.0.conv3.weight", "layer1.0.downsample.0.weight", "layer1.0.downsample.1.running_var",
              "layer4.2.bn3.num_batches_tracked", "fc.weight", "fc.bias", "bn1.running_mean"]:
        assert k in keys
    assert "layer1.1.downsample.0.weight" not in keys
    keys = list(models.resnet18().state_dict())
    assert "layer2.0.downsample.0.weight" in keys and "layer1.0.downsample.0.weight" not in keys
    keys = set(models.densenet121().state_dict())
    for k in ["features.conv0.weight", "features.norm0.running_mean", "features.denseblock1.denselayer1.norm1.weight",
              "features.denseblock1.denselayer6.conv2.weight", "features.transition3.conv.weight",
              "features.denseblock4.denselayer16.norm2.num_batches_tracked", "features.norm5.bias",
              "classifier.weight"]:
        assert k in keys
    assert "features.denseblock1.denselayer7.conv1.weight" not in keys


def test_vgg_names_and_tutorial_head_swap(rng):
    model = models.vgg11_bn(num_classes=3, in_channels=1)
    keys = list(model.state_dict())
    assert keys[:3] == ["features.0.weight", "features.0.bias", "features.1.weight"]
    assert "features.1.running_mean" in keys and "classifier.6.weight" in keys
    assert model.classifier[6].weight.shape == (3, 4096)
    # the 3-class Covid tutorial: a 1x1 pool and a small head on VGG's features
    model.avgpool = nn.AdaptiveAvgPool2d((1, 1))
    model.classifier = nn.Sequential(nn.Flatten(), nn.Linear(512, 256), nn.ReLU(), nn.Dropout(0.1), nn.Linear(256, 3))
    assert [k for k, _ in model.named_parameters()][-1] == "classifier.4.bias"
    model.features.requires_grad_(False)
    assert model.num_parameters(trainable_only=True) == 512 * 256 + 256 + 256 * 3 + 3
    model.features.requires_grad_(True)
    x = minicnn.tensor(rng.standard_normal((2, 1, 64, 64)).astype(np.float32))
    y = model(x)
    assert y.shape == (2, 3)
    nn.CrossEntropyLoss()(y, minicnn.tensor(np.array([0, 2]))).backward()
    assert all(p.grad is not None and np.isfinite(p.grad.data).all() for p in model.parameters())


def test_shapes_of_key_layers():
    m = models.densenet161(num_classes=2)
    assert m.features.conv0.weight.shape == (96, 3, 7, 7)
    assert m.classifier.in_features == 2208
    assert models.densenet121().classifier.in_features == 1024
    r = models.resnet50(num_classes=1, in_channels=1)
    assert r.conv1.weight.shape == (64, 1, 7, 7) and r.fc.in_features == 2048 and r.fc.out_features == 1
    assert r.layer2[0].conv2.stride == (2, 2) and r.layer2[0].conv1.stride == (1, 1)  # v1.5


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "densenet121"])
def test_small_input_forward_backward(name, rng):
    model = getattr(models, name)(num_classes=3, in_channels=1)
    x = minicnn.tensor(rng.standard_normal((2, 1, 64, 64)).astype(np.float32))
    y = model(x)
    assert y.shape == (2, 3)
    nn.CrossEntropyLoss()(y, minicnn.tensor(np.array([0, 2]))).backward()
    assert all(p.grad is not None and np.isfinite(p.grad.data).all() for p in model.parameters())
    model.eval()
    with minicnn.no_grad():
        assert model(x).shape == (2, 3)


def test_replace_head_freeze_unfreeze_and_optimizer_sees_only_trainable():
    model = models.resnet18()
    old_keys = list(model.state_dict())
    model.fc = nn.Linear(model.fc.in_features, 2)
    assert list(model.state_dict()) == old_keys  # replaced in place: same order of names
    assert model.fc.weight.shape == (2, 512) and list(model.children())[-1] is model.fc
    model.requires_grad_(False)
    model.fc.requires_grad_(True)
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert len(trainable) == 2 and model.num_parameters(trainable_only=True) == 512 * 2 + 2
    opt = optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    assert [id(p) for p in opt.param_groups[0]["params"]] == [id(model.fc.weight), id(model.fc.bias)]
    before = model.conv1.weight.data.copy()
    x = minicnn.tensor(np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32))
    nn.CrossEntropyLoss()(model(x), minicnn.tensor(np.array([0, 1]))).backward()
    assert model.conv1.weight.grad is None and model.fc.weight.grad is not None
    opt.step()
    assert np.array_equal(model.conv1.weight.data, before)
    model.requires_grad_(True)  # unfreeze for fine-tuning
    assert model.num_parameters(trainable_only=True) == model.num_parameters()


def test_replace_whole_classifier_and_a_sequential_slot():
    model = models.densenet121()
    model.classifier = nn.Linear(model.classifier.in_features, 2)
    assert model.eval()(minicnn.tensor(np.zeros((1, 3, 32, 32), np.float32))).shape == (1, 2)
    seq = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 6))
    seq[2] = nn.Linear(5, 3)
    assert [type(m).__name__ for m in seq] == ["Linear", "ReLU", "Linear"] and seq[2].out_features == 3
    seq[0] = nn.Linear(4, 5)  # replacing the first layer must keep it first
    assert seq(minicnn.tensor(np.ones((2, 4), np.float32))).shape == (2, 3)


@pytest.mark.parametrize("name,layer", [("resnet18", "layer4"), ("densenet121", "features")])
def test_grad_cam_targets(name, layer, rng):
    model = getattr(models, name)(num_classes=2)
    x = rng.standard_normal((1, 3, 64, 64)).astype(np.float32)
    cam = minicnn.grad_cam(model, x, getattr(model, layer), class_idx=1)
    assert cam.shape == (1, 64, 64) and np.isfinite(cam).all() and cam.max() <= 1.0


# ---- the memory-efficient dense layer ---------------------------------------------------
def _pair_of_layers(cin: int, growth: int):
    plain = DenseLayer(cin, growth, bn_size=2, memory_efficient=False).double()
    efficient = DenseLayer(cin, growth, bn_size=2, memory_efficient=True).double()
    efficient.load_state_dict(plain.state_dict())
    return plain, efficient


def test_efficient_dense_layer_matches_plain_in_float64(rng):
    plain, efficient = _pair_of_layers(5, 3)
    feats = [rng.standard_normal((3, c, 5, 4)) for c in (2, 3)]  # two inputs, concatenated to 5 channels
    outs, grads = [], []
    for layer in (plain, efficient):
        xs = [minicnn.tensor(f.copy(), requires_grad=True) for f in feats]
        y = layer(xs)
        (y * minicnn.tensor(np.linspace(-1, 1, y.size).reshape(y.shape))).sum().backward()
        outs.append(y.data)
        grads.append([x.grad.data for x in xs] + [p.grad.data for p in layer.parameters()])
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-12, atol=1e-12)
    for a, b in zip(grads[0], grads[1]):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    # running statistics updated once per step, not again by the recompute
    np.testing.assert_allclose(plain.norm1.running_mean.data, efficient.norm1.running_mean.data, rtol=1e-12)
    assert int(efficient.norm1.num_batches_tracked.data) == 1


def test_efficient_dense_layer_gradcheck(rng):
    _, efficient = _pair_of_layers(3, 2)
    xs = [minicnn.tensor(rng.standard_normal((2, c, 3, 3)), requires_grad=True) for c in (1, 2)]
    w = efficient.conv1.weight
    assert minicnn.gradcheck(lambda a, b, _w: efficient([a, b]), [*xs, w])


def test_checkpoint_passes_gradients_to_frozen_input_layers_params(rng):
    # inputs that do not require grad (a frozen stem) must still let the layer's weights learn
    _, efficient = _pair_of_layers(4, 2)
    x = minicnn.tensor(rng.standard_normal((2, 4, 3, 3)))
    efficient([x]).sum().backward()
    assert efficient.conv1.weight.grad is not None and efficient.norm1.weight.grad is not None


def test_summary_runs_on_zoo_models():
    model = models.resnet18(num_classes=2)
    model.layer1.requires_grad_(False)
    text = model.summary((3, 64, 64), print_fn=None)
    assert "layer4.1.conv2" in text and "fc" in text
    frozen = sum(p.size for p in model.layer1.parameters())
    assert f"{frozen:,}" in text  # the frozen count is reported
    text = models.densenet121().summary((3, 64, 64), print_fn=None)
    assert "denseblock4.denselayer16.conv2" in text


# ---- CT models and InceptionBlock ---------------------------------------------------------
def test_ct_models_shapes_and_counts(rng):
    x = minicnn.tensor(rng.random((2, 1, 150, 150)).astype(np.float32))
    for build, params in [(models.simple_cnn, 5_327_361), (models.tiny_cnn, 65_777),
                          (models.reduced_inception, 90_093)]:
        model = build()
        assert model.num_parameters() == params
        y = model.eval()(x)
        assert y.shape == (2, 1) and ((y.data > 0) & (y.data < 1)).all()
    assert models.simple_cnn(64).num_parameters() == 32 * 9 + 32 + 64 * 32 * 9 + 64 + 64 * 14 * 14 * 64 + 64 + 65
    assert not isinstance(list(models.tiny_cnn(sigmoid=False))[-1], nn.Sigmoid)
    with pytest.raises(ValueError, match="simple_cnn"):
        models.simple_cnn(8)


def test_tiny_cnn_layers_as_in_the_tutorial():
    kinds = [type(m).__name__ for m in models.tiny_cnn(150)]
    assert kinds == ["Conv2d", "ReLU", "MaxPool2d", "Dropout", "Flatten", "Linear", "ReLU", "Linear", "Sigmoid"]
    assert [m.p for m in models.tiny_cnn() if isinstance(m, nn.Dropout)] == [0.8]
    assert [m.p for m in models.simple_cnn() if isinstance(m, nn.Dropout)] == [0.5, 0.5]


def test_inception_block_shapes_and_concat_order(rng):
    block = nn.InceptionBlock(3, 4, 2, 5, 2, 3, 6)
    x = minicnn.tensor(rng.standard_normal((2, 3, 9, 7)).astype(np.float32))
    y = block(x)
    assert y.shape == (2, 4 + 5 + 3 + 6, 9, 7) and block.out_channels == 18
    np.testing.assert_allclose(y.data[:, :4], block.branch1(x).data, rtol=1e-6)
    np.testing.assert_allclose(y.data[:, 4:9], block.branch3(x).data, rtol=1e-6)
    np.testing.assert_allclose(y.data[:, 12:], block.branch_pool(x).data, rtol=1e-6)
    assert block.branch5[2].kernel_size == (5, 5) and block.branch_pool[0].kernel_size == (3, 3)
    with pytest.raises(ValueError, match="InceptionBlock"):
        block(minicnn.tensor(np.zeros((1, 4, 5, 5), np.float32)))


def test_inception_block_gradcheck(rng):
    block = nn.InceptionBlock(2, 1, 1, 2, 1, 1, 1, c1_kernel=3, pool_kernel=4).double()
    x = minicnn.tensor(rng.standard_normal((1, 2, 5, 4)), requires_grad=True)
    assert minicnn.gradcheck(lambda a, _w: block(a), [x, block.branch5[0].weight])


def test_reduced_inception_branches():
    block = models.reduced_inception(32)[0]
    assert block.branch1[0].kernel_size == (7, 7) and block.branch_pool[0].kernel_size == (4, 4)
    assert block.branch_pool[0].stride == (1, 1)
