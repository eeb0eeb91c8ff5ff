"""Transforms: shapes, dtypes, seeded reproducibility and exact results where one is known."""
import numpy as np
import pytest
from PIL import Image

from minicnn.data import sample_rng
from minicnn.data import transforms as T


def grey(h=40, w=60, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 1), dtype=np.uint8)


def rgb(h=40, w=60, seed=1):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


RANDOM = [
    T.RandomResizedCrop(32),
    T.RandomHorizontalFlip(),
    T.RandomVerticalFlip(),
    T.RandomRotation(20),
    T.RandomAffine(15, translate=(0.1, 0.2), scale=(0.8, 1.2), shear=(-5, 5, -3, 3)),
    T.RandomGrayscale(0.5),
    T.GaussianNoise(0.1),
    T.KerasAugment(rotation_range=20, width_shift_range=0.1, height_shift_range=3, shear_range=10,
                   zoom_range=0.2, horizontal_flip=True, fill_mode="reflect"),
]


@pytest.mark.parametrize("t", RANDOM, ids=lambda t: type(t).__name__)
@pytest.mark.parametrize("make", [grey, rgb])
def test_random_transforms_keep_kind_and_repeat_under_a_seed(t, make):
    img = make()
    outs = [t(img, rng=np.random.default_rng(s)) for s in (7, 7, 8, 9, 10, 11, 12)]
    expected_shape = (32, 32, img.shape[2]) if isinstance(t, T.RandomResizedCrop) else img.shape
    for o in outs:
        assert o.shape == expected_shape and o.dtype == np.uint8
    assert np.array_equal(outs[0], outs[1])
    if not (isinstance(t, T.RandomGrayscale) and img.shape[2] == 1):  # grey of grey changes nothing
        assert any(not np.array_equal(outs[0], o) for o in outs[2:])  # the seed matters


@pytest.mark.parametrize("t", RANDOM, ids=lambda t: type(t).__name__)
def test_pil_and_array_inputs_agree(t):
    img = rgb()
    from_array = t(img, rng=np.random.default_rng(3))
    from_pil = t(Image.fromarray(img), rng=np.random.default_rng(3))
    assert isinstance(from_pil, Image.Image)
    assert np.array_equal(np.asarray(from_pil), from_array)


def test_transforms_use_the_installed_sample_generator():
    t = T.Compose([T.RandomAffine(30), T.GaussianNoise(0.1)])
    img = grey()
    with sample_rng(np.random.default_rng(5)):
        a = t(img)
    assert np.array_equal(a, t(img, rng=np.random.default_rng(5)))


def test_hw_arrays_stay_hw():
    img = grey()[:, :, 0]
    for t in [T.Resize(20), T.CenterCrop(10), T.RandomAffine(10), T.RandomHorizontalFlip(1.0), T.CLAHE()]:
        assert t(img, rng=np.random.default_rng(0)).ndim == 2


def test_resize_shorter_side_and_exact_size():
    img = grey(40, 60)
    assert T.Resize(20)(img).shape == (20, 30, 1)
    assert T.Resize(20)(grey(60, 40)).shape == (30, 20, 1)
    assert T.Resize((10, 17))(img).shape == (10, 17, 1)
    assert T.Resize(40)(img) is img  # already the right size: no work


def test_center_crop_takes_the_middle_and_pads_small_images():
    img = grey(40, 60)
    assert np.array_equal(T.CenterCrop((10, 20))(img), img[15:25, 20:40])
    padded = T.CenterCrop(50, fill=7)(grey(40, 30))
    assert padded.shape == (50, 50, 1)
    assert padded[0, 0, 0] == 7 and np.array_equal(padded[5:45, 10:40], grey(40, 30))


def test_random_resized_crop_box_stays_inside():
    t = T.RandomResizedCrop(8, scale=(0.05, 1.0))
    rng = np.random.default_rng(0)
    for _ in range(200):
        top, left, h, w = t.box(30, 50, rng)
        assert 0 <= top and top + h <= 30 and 0 <= left and left + w <= 50 and h > 0 and w > 0


def test_flips_are_exact():
    img = rgb()
    assert np.array_equal(T.RandomHorizontalFlip(1.0)(img), img[:, ::-1])
    assert np.array_equal(T.RandomVerticalFlip(1.0)(img), img[::-1])
    assert T.RandomHorizontalFlip(0.0)(img) is img


def test_affine_identity_and_quarter_turn():
    img = grey(32, 32)
    assert np.array_equal(T.RandomAffine(0)(img), img)
    turned = T.RandomRotation((90, 90), interpolation="nearest")(img)
    assert np.array_equal(turned, np.rot90(img))  # positive angle = counter-clockwise


def test_affine_translation_moves_content_and_fills():
    img = np.full((20, 20, 1), 200, np.uint8)
    fwd = T.affine_matrix(0, (5, 0), 1.0, (0, 0), (10, 10))
    out = np.asarray(T.warp(Image.fromarray(img[:, :, 0]), fwd, fill=3))
    assert (out[:, :5] == 3).all() and (out[:, 5:] == 200).all()


def test_keras_fill_modes():
    img = np.tile(np.arange(20, dtype=np.uint8) * 10, (20, 1))  # value grows to the right
    shift = np.array([[1, 0, 6], [0, 1, 0], [0, 0, 1.0]])  # content moves 6 px right
    pil = Image.fromarray(img)
    near = np.asarray(T.warp(pil, shift, fill_mode="nearest", interpolation="nearest"))
    assert (near[:, :6] == 0).all() and np.array_equal(near[:, 6:], img[:, :14])
    wrap = np.asarray(T.warp(pil, shift, fill_mode="wrap", interpolation="nearest"))
    assert np.array_equal(wrap, np.roll(img, 6, axis=1))
    refl = np.asarray(T.warp(pil, shift, fill_mode="reflect", interpolation="nearest"))
    assert np.array_equal(refl[:, :6], img[:, 5::-1])
    const = np.asarray(T.warp(pil, shift, fill=9, interpolation="nearest"))
    assert (const[:, :6] == 9).all()


def test_keras_rescale_gives_chw_floats():
    out = T.KerasAugment(rescale=1 / 255, rotation_range=10)(grey(), rng=np.random.default_rng(0))
    assert out.shape == (1, 40, 60) and out.dtype == np.float32 and 0 <= out.min() and out.max() <= 1


def test_grayscale_and_random_grayscale_channels():
    img = rgb()
    g1, g3 = T.Grayscale(1)(img), T.Grayscale(3)(img)
    assert g1.shape == (40, 60, 1) and g3.shape == (40, 60, 3)
    assert np.array_equal(g3[:, :, 0], g1[:, :, 0]) and np.array_equal(g3[:, :, 2], g1[:, :, 0])
    r = T.RandomGrayscale(1.0)(img)
    assert r.shape == img.shape and np.array_equal(r[:, :, 0], r[:, :, 1])


def test_to_array_and_normalize():
    img = rgb()
    x = T.ToArray()(img)
    assert x.shape == (3, 40, 60) and x.dtype == np.float32 and x.flags.c_contiguous
    np.testing.assert_allclose(x[1], img[:, :, 1] / 255, rtol=1e-6)
    y = T.Normalize([0.5, 0.4, 0.3], [0.2, 0.2, 0.5])(x)
    np.testing.assert_allclose(y[2], (img[:, :, 2] / 255 - 0.3) / 0.5, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="2 mean values for an image with 3 channels"):
        T.Normalize([0.5, 0.5], 1.0)(x)
    with pytest.raises(TypeError, match="ToArray first"):
        T.Normalize(0.5, 0.5)(img)


def test_bad_inputs_name_the_transform():
    with pytest.raises(TypeError, match=r"RandomAffine: .*float64 array of shape \(4, 4\)"):
        T.RandomAffine(10)(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="interpolation"):
        T.Resize(4, interpolation="cubic-ish")


def test_gaussian_noise_statistics():
    x = np.full((1, 100, 100), 0.5, np.float32)
    out = T.GaussianNoise(0.05)(x, rng=np.random.default_rng(0))
    assert abs(float(out.std()) - 0.05) < 0.005 and abs(float(out.mean()) - 0.5) < 0.005


def test_compose_passes_rng_to_transforms_and_calls_plain_functions():
    t = T.Compose([T.RandomHorizontalFlip(), lambda a: a + 1])
    img = grey()
    assert np.array_equal(t(img, rng=np.random.default_rng(1)),
                          T.RandomHorizontalFlip()(img, rng=np.random.default_rng(1)) + 1)
