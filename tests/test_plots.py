"""Every plot writes a valid, non-trivial PNG; inputs are checked; files are written atomically."""
import os

import matplotlib.image as mpimg
import numpy as np
import pytest

from minicnn import metrics as M
from minicnn import plots as P

NAMES = ["normal", "pneumonia"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    images = (rng.random((6, 16, 16)) * 255).astype(np.uint8)  # (N, H, W) uint8
    y = np.array([0, 1, 1, 0, 1, 0])
    prob = np.array([0.2, 0.9, 0.4, 0.6, 0.7, 0.1])
    return images, y, prob


def assert_png(path, expected):
    """A real PNG at the requested path, readable by matplotlib, at least 100 px each way, not blank."""
    assert str(path) == expected
    with open(path, "rb") as f:
        assert f.read(8) == PNG_SIGNATURE
    img = mpimg.imread(path)
    assert img.shape[0] > 100 and img.shape[1] > 100
    assert img[..., :3].std() > 0.01
    leftovers = [n for n in os.listdir(os.path.dirname(path)) if n.endswith(".tmp")]
    assert not leftovers


def test_class_distribution_all_input_forms(tmp_path, batch):
    _, y, _ = batch
    p = tmp_path / "new" / "sub" / "dist.png"  # parent folders are created
    assert_png(p, P.plot_class_distribution(y, NAMES, p, dataset="Phantom"))
    p2 = tmp_path / "splits.png"
    assert_png(p2, P.plot_class_distribution({"train": y, "test": y[:3]}, NAMES, p2))
    p3 = tmp_path / "counts.png"
    assert_png(p3, P.plot_class_distribution({"normal": 1349, "pneumonia": 3883}, None, p3))
    with pytest.raises(ValueError, match="labels go up to 2"):
        P.plot_class_distribution([0, 2], NAMES, tmp_path / "bad.png")


@pytest.mark.parametrize("layout", ["NHW", "NCHW", "NHWC", "RGB", "standardised"])
def test_image_grid_layouts(tmp_path, batch, layout):
    images, y, _ = batch
    x = images.astype(np.float32) / 255
    arr = {"NHW": images, "NCHW": x[:, None], "NHWC": images[..., None],
           "RGB": np.repeat(images[..., None], 3, axis=3), "standardised": (x[:, None] - 0.5) / 0.2}[layout]
    p = tmp_path / f"grid_{layout}.png"
    assert_png(p, P.plot_image_grid(arr, y, NAMES, p, ncols=4, dataset="Phantom"))


def test_image_grid_rejects_bad_shapes(tmp_path, batch):
    images, y, _ = batch
    with pytest.raises(ValueError, match=r"lengths differ: images=6, labels=5"):
        P.plot_image_grid(images, y[:5], NAMES, tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"shape \(6, 16, 16\)"):
        P.plot_image_grid(np.zeros((2, 6, 16, 16)), None, None, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_augmented_batch_with_and_without_originals(tmp_path, batch):
    images, y, _ = batch
    p = tmp_path / "aug.png"
    assert_png(p, P.plot_augmented_batch(images[:, ::-1], y, NAMES, p, originals=images, ncols=4))
    p2 = tmp_path / "aug2.png"
    assert_png(p2, P.plot_augmented_batch(images, y, NAMES, p2))


def test_history(tmp_path):
    h = {"loss": [0.9, 0.5, 0.4], "val_loss": [1.0, 0.7, 0.8], "accuracy": [0.6, 0.8, 0.9],
         "val_accuracy": [0.5, float("nan"), 0.85], "lr": [1e-3, 5e-4, 2.5e-4]}
    p = tmp_path / "hist.png"
    assert_png(p, P.plot_history(h, p, dataset="PneumoniaMNIST"))
    p2 = tmp_path / "lr.png"
    assert_png(p2, P.plot_history(h, p2, metrics=("loss", "lr", "auc")))  # missing metrics are skipped
    with pytest.raises(ValueError, match="none of"):
        P.plot_history(h, tmp_path / "none.png", metrics=("auc",))


def test_confusion_matrix(tmp_path, batch):
    _, y, prob = batch
    cm = M.confusion_matrix(y, (prob >= 0.5).astype(int), 2)
    for normalize in (False, True):
        p = tmp_path / f"cm_{normalize}.png"
        assert_png(p, P.plot_confusion_matrix(cm, NAMES, p, normalize=normalize, dataset="Phantom"))
    p3 = tmp_path / "cm3.png"
    assert_png(p3, P.plot_confusion_matrix(np.array([[5, 1, 0], [0, 0, 0], [2, 2, 9]]), None, p3, normalize=True))
    with pytest.raises(ValueError, match="square"):
        P.plot_confusion_matrix(np.zeros((2, 3)), None, tmp_path / "bad.png")


def test_predictions_and_probability_bars(tmp_path, batch):
    images, y, prob = batch
    pred = (prob >= 0.5).astype(int)
    p = tmp_path / "pred.png"
    assert_png(p, P.plot_predictions(images, y, pred, NAMES, p, probs=prob, dataset="Phantom"))
    p2 = tmp_path / "bars.png"
    assert_png(p2, P.plot_probability_bars(images[:3], prob[:3], NAMES, p2, y_true=y[:3]))
    probs3 = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    p3 = tmp_path / "bars3.png"
    assert_png(p3, P.plot_probability_bars(images[:2], probs3, ["a", "b", "c"], p3))
    with pytest.raises(ValueError, match="y_pred=5"):
        P.plot_predictions(images, y, pred[:5], NAMES, tmp_path / "bad.png")


def test_predicted_confidence_is_of_the_predicted_class():
    conf = P._class_probs(np.array([0.2, 0.9]), "test")[[0, 1], [0, 1]]
    np.testing.assert_allclose(conf, [0.8, 0.9])


def test_roc_curve_plot(tmp_path, batch):
    _, y, prob = batch
    p = tmp_path / "roc.png"
    assert_png(p, P.plot_roc_curve(y, prob, p, dataset="Phantom"))
    p2 = tmp_path / "roc2.png"
    assert_png(p2, P.plot_roc_curve(y, prob, p2, auc=0.5, threshold=None))


def test_gradcam_overlay(tmp_path, batch):
    images, y, _ = batch
    heat = np.random.default_rng(1).random((6, 4, 4))  # coarser than the images: stretched
    p = tmp_path / "cam.png"
    assert_png(p, P.plot_gradcam(images, heat, p, titles=[NAMES[i] for i in y], dataset="Phantom"))
    with pytest.raises(ValueError, match="heatmaps=2"):
        P.plot_gradcam(images, heat[:2], tmp_path / "bad.png")


def test_save_is_atomic_and_overwrites(tmp_path, batch):
    _, y, _ = batch
    p = tmp_path / "same.png"
    P.plot_class_distribution(y, NAMES, p)
    first = p.read_bytes()
    P.plot_class_distribution(y[:2], NAMES, p)
    assert p.read_bytes() != first and p.read_bytes()[:8] == PNG_SIGNATURE
    assert sorted(os.listdir(tmp_path)) == ["same.png"]
