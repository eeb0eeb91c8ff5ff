"""The synthetic chest phantoms: deterministic, well-formed, balanced, and the classes differ."""
import numpy as np
import pytest

from minicnn.data import phantom as P
from minicnn.data.phantom import PhantomDataset, make_phantoms


def test_shape_dtype_range():
    x, y = make_phantoms(40, size=48, seed=3)
    assert x.shape == (40, 48, 48) and x.dtype == np.uint8
    assert y.shape == (40,) and y.dtype == np.int64 and set(np.unique(y)) == {0, 1}
    assert x.min() < 40 and x.max() > 180  # dark background, bright bone/abdomen
    assert np.all(x.reshape(40, -1).std(axis=1) > 20)  # every image has structure


def test_deterministic_under_seed():
    a, la = make_phantoms(12, 32, seed=5)
    b, lb = make_phantoms(12, 32, seed=5)
    c, _ = make_phantoms(12, 32, seed=6)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(la, lb)
    assert np.abs(a.astype(int) - c.astype(int)).mean() > 5


@pytest.mark.parametrize("n, frac", [(101, 0.5), (50, 0.2), (10, 0.0), (10, 1.0)])
def test_exact_class_balance(n, frac):
    _, y = make_phantoms(n, 16, seed=0, pneumonia_fraction=frac)
    assert y.sum() == round(n * frac)


def test_pneumonia_adds_opacity_inside_the_lungs():
    # same anatomy and noise, only the label flipped: pneumonia may only brighten the lungs
    rng = np.random.default_rng(0)
    n, size = 16, 64
    u, noise = rng.random((n, P.N_UNIFORMS)), np.zeros((n, size, size), np.float32)
    normal = P._render(u, noise, np.zeros(n, np.float32))
    sick = P._render(u, noise, np.ones(n, np.float32))
    diff = sick - normal
    assert diff.min() >= -1e-6                          # opacities only add density
    assert np.all(diff.max(axis=(1, 2)) > 0.02)         # and every pneumonia case shows some
    assert diff.max() <= P.MAX_OPACITY
    assert diff[:, :, 30:34].max() < 0.03 and diff[:, 61:].max() < 0.03  # not in mediastinum, abdomen


def test_classes_differ_on_average_in_lung_opacity():
    x, y = make_phantoms(300, 32, seed=1)
    lungs = x[:, 10:24, 4:12].astype(float).mean(axis=(1, 2)) + x[:, 10:24, 20:28].astype(float).mean(axis=(1, 2))
    gap = lungs[y == 1].mean() - lungs[y == 0].mean()
    assert gap > 3 * np.sqrt(lungs[y == 1].var() / (y == 1).sum() + lungs[y == 0].var() / (y == 0).sum())
    # ...but no single image brightness threshold separates them: label-independent variation
    assert np.mean((lungs > np.median(lungs)) == y) < 0.85


def test_dataset_splits_are_distinct_and_reproducible():
    tr = PhantomDataset("train", n=20, size=32, seed=0)
    te = PhantomDataset("test", n=20, size=32, seed=0)
    assert len(tr) == 20 and tr.targets.dtype == np.int64 and tr.classes == ["normal", "pneumonia"]
    assert not np.array_equal(tr.images, te.images)
    np.testing.assert_array_equal(tr.images, PhantomDataset("train", n=20, size=32, seed=0).images)
    image, label = tr[-1]
    assert image.shape == (32, 32) and image.dtype == np.uint8 and label == tr.targets[-1]
    assert isinstance(label, int)


def test_dataset_transform_and_errors():
    ds = PhantomDataset("val", n=4, size=16, transform=lambda im: im.astype(np.float32) / 255)
    image, _ = ds[0]
    assert image.dtype == np.float32 and image.max() <= 1.0
    with pytest.raises(ValueError, match="split"):
        PhantomDataset("holdout", n=4)
    with pytest.raises(IndexError, match="PhantomDataset"):
        ds[4]
    with pytest.raises(ValueError, match="pneumonia_fraction"):
        make_phantoms(4, 16, pneumonia_fraction=1.5)
