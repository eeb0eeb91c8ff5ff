"""examples/pneumonia_cnn.py: clear argument errors and a tiny end-to-end run on phantoms."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from minicnn.data import DataError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("pneumonia_example", ROOT / "examples" / "pneumonia_cnn.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_missing_path(example, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        example.main(["--data", str(tmp_path / "nowhere.npz"), "--out", str(tmp_path / "o")])
    assert e.value.code == 2
    assert f"argument --data: {tmp_path / 'nowhere.npz'} does not exist" in capsys.readouterr().err


def test_wrong_npz_keys(example, tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros((4, 28, 28), np.uint8), y=np.zeros(4, np.int64))
    with pytest.raises(DataError, match="no array 'train_images'.*expected MedMNIST keys"):
        example.main(["--data", str(bad), "--out", str(tmp_path / "o")])


def test_unsupported_size(example, capsys):
    with pytest.raises(SystemExit) as e:
        example.main(["--size", "100"])
    assert e.value.code == 2
    assert "argument --size: 100 is not supported by pneumonia_cnn.py" in capsys.readouterr().err


def test_folder_without_data(example, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="neither train/ and test/ folders nor pneumoniamnist"):
        example.main(["--data", str(tmp_path / "empty"), "--out", str(tmp_path / "o")])


def test_synthetic_end_to_end(example, tmp_path):
    out = tmp_path / "run"
    result = example.main(["--synthetic", "--size", "28", "--limit", "24", "--epochs", "1", "--batch-size", "8",
                           "--workers", "0", "--out", str(out)])
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["synthetic"] is True and "synthetic" in saved["dataset"]
    assert saved["n"] == {"train": 24, "val": 24, "test": 24}
    assert result["size"] == 28 and saved["epochs_run"] == 1 and saved["best_epoch"] == 1
    cm = np.array(saved["test_confusion_matrix"])
    assert cm.shape == (2, 2) and cm.sum() == 24 and cm.sum(axis=1).tolist() == [12, 12]  # balanced --limit
    assert saved["test"]["accuracy"] == pytest.approx(np.trace(cm) / 24)  # the metrics describe that matrix
    pngs = sorted(p.name for p in out.glob("*.png") if p.stat().st_size > 1000)
    assert pngs == sorted(["augmented_batch.png", "class_distribution.png", "confusion_matrix.png", "gradcam.png",
                           "predictions.png", "probabilities.png", "roc_curve.png", "samples.png",
                           "training_curves.png"])
    assert (out / "best.npz").exists() and (out / "state.npz").exists()


@pytest.mark.parametrize("size", [28, 64])
def test_script_model_is_the_library_model(example, size):
    """The tutorial-shaped build_model in the script and models.pneumonia_cnn are the same network."""
    import minicnn
    from minicnn import nn
    from minicnn.models import pneumonia_cnn

    minicnn.manual_seed(3)
    mine = example.build_model(size)
    minicnn.manual_seed(3)
    lib = pneumonia_cnn(size, bn_momentum=example.BN_MOMENTUM)
    assert [(n, type(m)) for n, m in mine.named_modules()] == [(n, type(m)) for n, m in lib.named_modules()]
    assert [(n, p.shape) for n, p in mine.named_parameters()] == [(n, p.shape) for n, p in lib.named_parameters()]
    assert mine.num_parameters() == lib.num_parameters() and mine.input_shape == lib.input_shape
    for a, b in zip(mine.modules(), lib.modules()):
        assert repr(a) == repr(b)  # kernel sizes, padding, eps, momentum, dropout rates
        if isinstance(a, nn.Dropout):
            assert a.p == b.p
    for (k, v), w in zip(mine.state_dict().items(), lib.state_dict().values()):
        np.testing.assert_array_equal(v, w, err_msg=k)  # same seed, same initialisation
    x = minicnn.tensor(np.random.default_rng(0).random((3, 1, size, size), dtype=np.float32))
    with minicnn.no_grad():
        np.testing.assert_array_equal(mine.eval()(x).numpy(), lib.eval()(x).numpy())


def easy_npz(path, n_train=64, n_eval=64, seed=0):
    """A MedMNIST-style .npz any working CNN learns in a few steps: class 1 has a bright square."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in (("train", n_train), ("val", n_eval), ("test", n_eval)):
        y = np.arange(n) % 2
        x = rng.integers(0, 100, (n, 28, 28)).astype(np.uint8)
        for i in np.flatnonzero(y):
            cy, cx = rng.integers(6, 22, 2)
            x[i, cy - 4:cy + 4, cx - 4:cx + 4] = 255
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = x, y[:, None]
    np.savez(path, **arrays)


def test_end_to_end_learns(example, tmp_path):
    """The whole script (data, model, training, evaluation, plots) learns an easy task in two epochs."""
    easy_npz(tmp_path / "easy.npz")
    out = tmp_path / "run"
    result = example.main(["--data", str(tmp_path / "easy.npz"), "--epochs", "2", "--batch-size", "16",
                           "--lr", "3e-3", "--workers", "0", "--out", str(out)])
    assert result["synthetic"] is False and result["n"] == {"train": 64, "val": 64, "test": 64}
    assert result["test"]["auc"] >= 0.95 and result["test"]["accuracy"] >= 0.9, result["test"]
    assert len([p for p in out.glob("*.png") if p.stat().st_size > 1000]) == 9
