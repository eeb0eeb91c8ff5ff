"""The tutorial examples of issue 13 (covid_vgg19, ct_inception): their set-up against the tutorials,
their command line, and a smoke run of each on the real data (skipped without $MINICNN_DATA_DIR)."""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import data_dir

from minicnn import nn, optim
from minicnn.data import transforms as T
from minicnn.train import ModelCheckpoint

ROOT = Path(__file__).resolve().parents[1]


def _load(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", ROOT / "examples" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # defines functions only: main() runs under __name__ == "__main__"
    return mod


@pytest.fixture(scope="module")
def vgg():
    return _load("covid_vgg19")


@pytest.fixture(scope="module")
def ct():
    return _load("ct_inception")


def _layers(module):
    return [m for m in module.modules() if not any(True for _ in m.children())]


# ---- covid_vgg19 against the tutorial ----------------------------------------------------------
# VGG19 (configuration E): 16 convs of 3x3; 2x2 max-pools after conv 2, 4, 8, 12, 16
VGG19_CONVS = [64, 64, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512, 512, 512, 512, 512]
VGG19_FEATURE_PARAMS = 20_024_384  # torchvision vgg19: 143,667,240 minus its 123,642,856 classifier weights
TUTORIAL_HEAD_PARAMS = (512 * 256 + 256) + (256 * 3 + 3)


@pytest.mark.parametrize("batch_norm", [False, True])
def test_vgg_model_is_the_tutorials(vgg, batch_norm):
    model = vgg.build_model(width=1.0, batch_norm=batch_norm, num_classes=3)
    convs = [m for m in model.features.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == VGG19_CONVS
    assert all(c.kernel_size == (3, 3) for c in convs)
    pools = [i for i, m in enumerate(_layers(model.features)) if isinstance(m, nn.MaxPool2d)]
    assert len(pools) == 5
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.features.modules()) == (16 if batch_norm else 0)
    assert isinstance(model.avgpool, nn.AdaptiveAvgPool2d) and model.avgpool.output_size in (1, (1, 1))
    head = list(model.classifier.children())
    assert [type(m).__name__ for m in head] == ["Flatten", "Linear", "ReLU", "Dropout", "Linear"]
    assert (head[1].in_features, head[1].out_features) == (512, 256)
    assert head[3].p == pytest.approx(0.1)
    assert (head[4].in_features, head[4].out_features) == (256, 3)
    bn = 2 * sum(VGG19_CONVS) if batch_norm else 0
    assert model.num_parameters() == VGG19_FEATURE_PARAMS + bn + TUTORIAL_HEAD_PARAMS


def test_vgg_weights_load_the_convolutions_only(vgg, tmp_path):
    """--weights: torchvision's vgg19 file (features.* plus its 1000-class classifier.0/3/6) loads into
    the plain model's convolutions; the tutorial's new head keeps its own initial weights."""
    from minicnn.data import DataError
    from minicnn.train import report
    from minicnn.weights import write_safetensors
    src = vgg.build_model(width=1.0, batch_norm=False)
    state = {k: v for k, v in src.state_dict().items() if k.startswith("features.")}
    state["classifier.0.weight"] = np.zeros((8, 25088), np.float32)  # ImageNet head: excluded, not loaded
    state["classifier.6.bias"] = np.zeros(1000, np.float32)
    path = tmp_path / "vgg19.safetensors"
    write_safetensors(state, path)
    dst = vgg.build_model(width=1.0, batch_norm=False)
    head_before = dst.classifier[1].weight.data.copy()
    text = report.load_weights(dst, path, exclude=("classifier.",))
    assert "loaded 32 tensors" in text
    np.testing.assert_array_equal(dst.features[0].weight.data, src.features[0].weight.data)
    np.testing.assert_array_equal(dst.classifier[1].weight.data, head_before)
    with pytest.raises(DataError, match="vgg19.safetensors"):  # BN model: the file lacks its BN tensors
        report.load_weights(vgg.build_model(width=1.0, batch_norm=True), path, exclude=("classifier.",))


def test_vgg_width_scales_every_conv(vgg):
    model = vgg.build_model(width=0.25)
    convs = [m for m in model.features.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [c // 4 for c in VGG19_CONVS]
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    import minicnn
    model.eval()
    assert model(minicnn.tensor(x)).shape == (2, 3)


def test_vgg_training_setup_is_the_tutorials(vgg, tmp_path):
    model = vgg.build_model(width=0.25)
    loss_fn, opt = vgg.build_training(model, lr=1e-3)
    assert isinstance(loss_fn, nn.CrossEntropyLoss)
    assert isinstance(opt, optim.SGD)
    g = opt.param_groups[0]
    assert g["lr"] == 1e-3 and g["momentum"] == 0.9 and g["weight_decay"] == 0
    best = vgg.best_checkpoint(str(tmp_path / "b.npz"), epochs=10)
    assert (best.monitor, best.mode, best.start_epoch) == ("val_accuracy", "max", 4)  # tutorial: epoch > 3
    assert vgg.best_checkpoint(str(tmp_path / "b.npz"), epochs=2).start_epoch == 1  # short runs: the last epoch
    # Normalize(mean 0.5, std 0.5): black -> -1, white -> +1
    img = np.zeros((8, 8, 3), np.uint8)
    img[:, 4:] = 255
    x = vgg.make_transforms(train=False)(img)
    assert x.shape == (3, 8, 8) and x.min() == -1.0 and x.max() == 1.0


def test_checkpoint_ignores_epochs_before_start(tmp_path):
    class Trainer:
        model = nn.Linear(2, 1)

    cb = ModelCheckpoint(str(tmp_path / "best.npz"), monitor="val_accuracy", start_epoch=2, verbose=False)
    for epoch, acc in enumerate([0.9, 0.8, 0.5, 0.6]):
        cb.on_epoch_end(Trainer(), epoch, {"val_accuracy": acc})
    assert cb.best_epoch == 3 and cb.best == 0.6  # epochs 0 and 1 (0.9, 0.8) did not count


# ---- ct_inception against the tutorial -----------------------------------------------------------
# Keras model.summary() of the tutorial's models at 150x150x1, counted by hand
CT_PARAMS_150 = {
    "simple_cnn": (9 * 32 + 32) + (9 * 32 * 64 + 64) + (64 * 36 * 36 * 64 + 64) + (64 + 1),
    "tiny_cnn": (9 * 6 + 6) + (6 * 74 * 74 * 2 + 2) + (2 + 1),
    # branches 7x7; 1x1 -> 3x3; 1x1 -> 5x5; pool -> 1x1, one filter each; then dense on 4 x 150 x 150
    "reduced_inception": (49 + 1) + (2 + 10) + (2 + 26) + 2 + (4 * 150 * 150 + 1),
}


@pytest.mark.parametrize("name", sorted(CT_PARAMS_150))
def test_ct_models_are_the_tutorials(ct, name):
    model = ct.build_model(name, 150)
    assert model.num_parameters() == CT_PARAMS_150[name]
    assert isinstance(_layers(model)[-1], nn.Sigmoid)  # Dense(1, activation='sigmoid')
    dropouts = [m.p for m in _layers(model) if isinstance(m, nn.Dropout)]
    assert dropouts == {"simple_cnn": [0.5, 0.5], "tiny_cnn": [0.8], "reduced_inception": []}[name]
    import minicnn
    model.eval()
    out = model(minicnn.tensor(np.random.default_rng(0).random((2, 1, 150, 150), dtype=np.float32)))
    assert out.shape == (2, 1) and np.all((out.data > 0) & (out.data < 1))


def test_ct_training_setup_is_the_tutorials(ct):
    model = ct.build_model("tiny_cnn", 64)
    loss_fn, opt = ct.build_training(model, lr=1e-4)
    assert isinstance(loss_fn, nn.BCELoss)
    assert isinstance(opt, optim.Adam)
    g = opt.param_groups[0]
    assert g["lr"] == 1e-4 and g["betas"] == (0.9, 0.999) and g["eps"] == 1e-7
    assert ct.TUTORIAL_EPOCHS == {"simple_cnn": 10, "tiny_cnn": 10, "reduced_inception": 3}
    assert [ct.model_epochs(m, None) for m in ct.MODEL_NAMES] == [10, 10, 3]
    assert ct.model_epochs("reduced_inception", 7) == 7
    aug = ct.make_transforms(train=True)
    assert isinstance(aug, T.KerasAugment)
    assert (aug.rotation_range, aug.width_shift_range, aug.height_shift_range, aug.shear_range) == (40, 0.2, 0.2, 0.2)
    assert aug.zoom_range == pytest.approx((0.8, 1.2)) and aug.horizontal_flip and not aug.vertical_flip
    assert aug.fill_mode == "nearest" and aug.rescale == pytest.approx(1 / 255)
    assert (ct.CLAHE_CLIP, ct.CLAHE_TILES) == (3.0, (8, 8))


def test_ct_preprocessing_enhances_and_crops(ct):
    rng = np.random.default_rng(0)
    img = np.zeros((120, 200), np.uint8)  # a bright "body" in a black frame, low contrast inside
    img[30:90, 40:160] = 120 + rng.integers(0, 20, (60, 120)).astype(np.uint8)
    stages = ct.preprocess_stages(img, 64)
    assert stages["original"].shape == stages["CLAHE"].shape == (ct.WORK_SIZE, ct.WORK_SIZE)
    assert stages["CLAHE + crop"].shape == (64, 64) and stages["CLAHE + crop"].dtype == np.uint8
    inside = (slice(100, 150), slice(80, 170))
    assert stages["CLAHE"][inside].std() > stages["original"][inside].std()  # contrast went up
    # the black frame is cropped away: the crop's border is body, not background
    assert stages["CLAHE + crop"][[0, -1], :].mean() > 40 and stages["CLAHE + crop"][:, [0, -1]].mean() > 40


# ---- command line ----------------------------------------------------------------------------------
@pytest.mark.parametrize("script,args", [
    ("covid_vgg19", ["--width", "0"]),
    ("covid_vgg19", ["--val-fraction", "0.7"]),
    ("covid_vgg19", ["--size", "50"]),
    ("covid_vgg19", ["--epochs", "0"]),
    ("ct_inception", ["--models", "resnet"]),
    ("ct_inception", ["--models", "tiny_cnn,tiny_cnn"]),
    ("ct_inception", ["--batch-size", "0"]),
])
def test_bad_options_exit_2(script, args, tmp_path, capsys, request):
    mod = request.getfixturevalue({"covid_vgg19": "vgg", "ct_inception": "ct"}[script])
    with pytest.raises(SystemExit) as e:
        mod.main(args + ["--out", str(tmp_path / "o")])
    assert e.value.code == 2
    assert "argument --" in capsys.readouterr().err


@pytest.mark.parametrize("fixture", ["vgg", "ct"])
def test_missing_data_is_one_line_exit_1(fixture, tmp_path, capsys, request):
    from minicnn.train import cli
    mod = request.getfixturevalue(fixture)
    with pytest.raises(SystemExit) as e:
        cli.run_main(mod.main, ["--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")])
    assert e.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nowhere" in err[0] and "Traceback" not in err[0]


# ---- smoke runs on the real data (CI) ---------------------------------------------------------------
def _run(script, args, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    out = tmp_path / script
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / f"{script}.py"), *args, "--out", str(out)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out, json.loads((out / "metrics.json").read_text()), proc.stdout


def _pngs(out, names):
    for n in names:
        p = out / n
        assert p.is_file() and p.stat().st_size > 2000, f"{p} missing or empty"


@pytest.mark.skipif(data_dir() is None or not (data_dir() / "covid19_3class").is_dir(),
                    reason="needs $MINICNN_DATA_DIR/covid19_3class")
def test_covid_vgg19_smoke_run(tmp_path):
    out, m, stdout = _run("covid_vgg19", ["--size", "64", "--epochs", "1", "--limit", "12", "--workers", "0"],
                          tmp_path)
    test = m["metrics"]["test"]
    assert test["n"] == 12 and 0 <= test["accuracy"] <= 1
    assert np.array(test["confusion_matrix"]).shape == (3, 3) and np.sum(test["confusion_matrix"]) == 12
    assert set(test["per_class"]) == {"Covid", "Normal", "Viral Pneumonia"}  # the space survives
    assert m["hyperparameters"]["width"] == 0.25 and m["pretrained"] is False
    assert Path(m["data_folder"]).name == "covid19_3class"  # found through $MINICNN_DATA_DIR
    _pngs(out, ["training_curves.png", "confusion_matrix.png", "predictions.png", "probabilities.png",
                "samples.png", "class_distribution.png"])
    assert (out / "best.npz").is_file() and (out / "state.npz").is_file()
    assert "FROM SCRATCH" in stdout
    # a second run into the same folder is refused (exit 2), the first run's files stay
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    again = subprocess.run([sys.executable, str(ROOT / "examples" / "covid_vgg19.py"), "--out", str(out)],
                           env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 2 and "--overwrite" in again.stderr
    assert (out / "metrics.json").is_file()


@pytest.mark.skipif(data_dir() is None or not (data_dir() / "covid_ct").is_dir(),
                    reason="needs $MINICNN_DATA_DIR/covid_ct")
def test_ct_inception_smoke_run(tmp_path):
    out, m, _ = _run("ct_inception", ["--size", "64", "--epochs", "1", "--limit", "8", "--workers", "0"], tmp_path)
    rows = m["metrics"]["models"]
    assert [r["model"] for r in rows] == ["simple_cnn", "tiny_cnn", "reduced_inception"]
    for r in rows:
        assert r["epochs"] == 1 and 0 <= r["test accuracy"] <= 1 and r["parameters"] > 0
    assert m["metrics"]["chosen_by_validation"] in {r["model"] for r in rows}
    assert Path(m["data_folder"]).name == "covid_ct"
    table = (out / "comparison.md").read_text()
    assert all(r["model"] in table for r in rows) and "test AUC" in table
    _pngs(out, ["preprocessing.png", "augmented_batch.png", "roc_comparison.png", "class_distribution.png"]
          + [f"{r['model']}_{p}.png" for r in rows
             for p in ("training_curves", "confusion_matrix", "predictions", "probabilities", "roc_curve")])


@pytest.mark.skipif(data_dir() is None or not (data_dir() / "covid_ct").is_dir(),
                    reason="needs $MINICNN_DATA_DIR/covid_ct")
def test_ct_inception_resume_skips_finished_models(tmp_path):
    """--resume after the first model finished: it is reloaded, not retrained; the next one starts
    fresh although state.npz still holds the finished model's training state."""
    common = ["--size", "32", "--epochs", "2", "--limit", "8", "--workers", "0"]
    out, first, _ = _run("ct_inception", common + ["--models", "tiny_cnn"], tmp_path)
    before = (out / "best_tiny_cnn.npz").read_bytes()
    _, m, stdout = _run("ct_inception", common + ["--models", "tiny_cnn,reduced_inception", "--resume"], tmp_path)
    assert "tiny_cnn: finished in the interrupted run" in stdout
    assert "starting reduced_inception from its first epoch" in stdout
    assert (out / "best_tiny_cnn.npz").read_bytes() == before
    rows = {r["model"]: r for r in m["metrics"]["models"]}
    assert rows["tiny_cnn"]["test accuracy"] == first["metrics"]["models"][0]["test accuracy"]
    assert rows["reduced_inception"]["epochs"] == 2
