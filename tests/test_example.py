"""examples/pneumonia_cnn.py: clear argument errors and a tiny end-to-end run on phantoms."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("pneumonia_example", ROOT / "examples" / "pneumonia_cnn.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_missing_path(example, tmp_path, capsys):
    with pytest.raises(SystemExit, match="does not exist"):
        example.main(["--data", str(tmp_path / "nowhere.npz"), "--out", str(tmp_path / "o")])


def test_wrong_npz_keys(example, tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros((4, 28, 28), np.uint8), y=np.zeros(4, np.int64))
    with pytest.raises(SystemExit, match="no array 'train_images'.*expected MedMNIST keys"):
        example.main(["--data", str(bad), "--out", str(tmp_path / "o")])


def test_unsupported_size(example, capsys):
    with pytest.raises(SystemExit) as e:
        example.main(["--size", "100"])
    assert e.value.code == 2
    assert "--size 100 is not supported by pneumonia_cnn" in capsys.readouterr().err


def test_folder_without_data(example, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="neither train/ and test/ folders nor pneumoniamnist"):
        example.main(["--data", str(tmp_path / "empty"), "--out", str(tmp_path / "o")])


def test_synthetic_end_to_end(example, tmp_path):
    out = tmp_path / "run"
    result = example.main(["--synthetic", "--size", "28", "--limit", "24", "--epochs", "1", "--batch-size", "8",
                           "--workers", "0", "--out", str(out)])
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["synthetic"] is True and "synthetic" in saved["dataset"]
    assert saved["n"] == {"train": 24, "val": 24, "test": 24}
    assert 0.0 <= saved["test"]["accuracy"] <= 1.0 and result["size"] == 28
    pngs = sorted(p.name for p in out.glob("*.png") if p.stat().st_size > 1000)
    assert pngs == sorted(["augmented_batch.png", "class_distribution.png", "confusion_matrix.png", "gradcam.png",
                           "predictions.png", "probabilities.png", "roc_curve.png", "samples.png",
                           "training_curves.png"])
    assert (out / "best.npz").exists() and (out / "state.npz").exists()
