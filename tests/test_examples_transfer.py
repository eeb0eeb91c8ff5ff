"""examples/xray_resnet50.py and examples/xray_densenet.py: the tutorials' set-up, the transfer helpers,
and a smoke run of each script on the real chest X-rays (skipped without $MINICNN_DATA_DIR)."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import data_dir

import minicnn
from minicnn import data as D
from minicnn import models, nn, optim
from minicnn.optim.lr_scheduler import OneCycleLR, StepLR
from minicnn.train import Callback, GradientClipping, fit
from minicnn.train.transfer import (
    FreezeThenFinetune,
    find_data_folder,
    freeze_all_but,
    parameter_counts,
    with_augmented_copies,
)
from minicnn.weights import write_safetensors

ROOT = Path(__file__).resolve().parents[1]


def load_example(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", ROOT / "examples" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # defines functions only: main() runs under `if __name__ == "__main__"`
    return mod


@pytest.fixture(scope="module")
def resnet_example():
    return load_example("xray_resnet50")


@pytest.fixture(scope="module")
def densenet_example():
    return load_example("xray_densenet")


class Stub:
    """The part of fit's Trainer a callback reads."""

    def __init__(self, optimizer):
        self.optimizer = optimizer


def kinds(compose) -> list[str]:
    return [type(t).__name__ for t in compose.transforms]


# ---- ResNet50: the tutorial's model and recipe ------------------------------------------------
def test_resnet50_setup_matches_tutorial(resnet_example):
    model = resnet_example.build_model()
    assert isinstance(model.fc, nn.Linear) and (model.fc.in_features, model.fc.out_features) == (2048, 1)
    assert model.conv1.weight.shape == (64, 1, 7, 7)  # one grey channel in
    trainable, frozen = parameter_counts(model)
    assert frozen == 0 and trainable == 23_501_760 + 2049  # ResNet50 without fc, plus the one-logit head
    model.eval()
    with minicnn.no_grad():
        assert model(minicnn.tensor(np.zeros((2, 1, 32, 32), np.float32))).shape == (2, 1)

    recipe = resnet_example.build_training(model, steps_per_epoch=10, epochs=3, max_lr=1e-2)
    opt, sched = recipe["optimizer"], recipe["scheduler"]
    assert type(opt) is optim.Adam and type(recipe["loss_fn"]) is nn.BCEWithLogitsLoss
    assert opt.param_groups[0]["weight_decay"] == 1e-4
    assert len(opt.param_groups[0]["params"]) == len(list(model.parameters()))
    assert isinstance(sched, OneCycleLR) and sched.total_steps == 30 and recipe["scheduler_interval"] == "batch"
    [clip] = recipe["callbacks"]
    assert isinstance(clip, GradientClipping) and clip.clip_value == 0.1 and clip.max_norm is None
    lrs = [opt.param_groups[0]["lr"]]
    for _ in range(30):  # stepped after every batch, the last included, as the tutorial's loop does
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs[0] == pytest.approx(1e-2 / 25) and max(lrs) == pytest.approx(1e-2) and int(np.argmax(lrs)) == 8
    assert lrs[29] == pytest.approx(1e-2 / 25 / 1e4)


def test_resnet50_transforms_flip_only_in_training(resnet_example):
    assert kinds(resnet_example.make_transforms(64, train=True)) == [
        "Resize", "RandomHorizontalFlip", "RandomVerticalFlip", "ToArray", "Normalize"]
    assert kinds(resnet_example.make_transforms(64, train=False)) == ["Resize", "ToArray", "Normalize"]
    x = resnet_example.make_transforms(64, train=False)(np.full((224, 224, 1), 128, np.uint8))
    assert x.shape == (1, 64, 64) and x.dtype == np.float32


# ---- DenseNet161: head, phases, schedule ------------------------------------------------------
def test_densenet161_setup_and_phases_match_tutorial(densenet_example):
    model = densenet_example.build_model()
    head = model.classifier
    assert isinstance(head, nn.Linear) and (head.in_features, head.out_features) == (2208, 2)
    total = sum(p.size for p in model.parameters())
    recipe = densenet_example.build_training(model, head_epochs=2, head_lr=1e-3, finetune_lr=1e-4)
    opt, sched, phases = recipe["optimizer"], recipe["scheduler"], recipe["phases"]
    assert type(opt) is optim.Adam and type(recipe["loss_fn"]) is nn.CrossEntropyLoss
    assert opt.param_groups[0]["weight_decay"] == 0  # the tutorial's Adam has none in either phase
    assert isinstance(sched, StepLR) and (sched.step_size, sched.gamma) == (4, 0.1)

    phases.on_epoch_begin(Stub(opt), 0)  # phase 1: the new head alone
    assert parameter_counts(model) == (2208 * 2 + 2, total - 4418)
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-3)
    phases.on_epoch_begin(Stub(opt), 1)
    assert parameter_counts(model) == (4418, total - 4418)
    sched.step()
    sched.step()
    opt.state[id(head.weight)] = {"step": 2}  # as if phase 1 had run
    phases.on_epoch_begin(Stub(opt), 2)  # phase 2: everything, at 1e-4, the schedule restarted
    assert parameter_counts(model) == (total, 0)
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-4) and opt.state == {}
    lrs = []
    for _ in range(9):
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs[:3] == pytest.approx([1e-4] * 3) and lrs[3:7] == pytest.approx([1e-5] * 4)
    assert lrs[7:] == pytest.approx([1e-6] * 2)


def test_densenet_transforms_and_balancing(densenet_example):
    tf = densenet_example.make_transforms(64)
    assert kinds(tf["eval"]) == ["Resize", "CenterCrop", "ToArray"]
    assert kinds(tf["train"]) == ["Resize", "CenterCrop", "RandomHorizontalFlip", "RandomRotation",
                                  "RandomAffine", "ToArray"]
    assert tf["copy1"].transforms[2].p == 1.0  # the first copy is always mirrored
    assert tf["eval"].transforms[0].size == 73  # 255/224 of 64, then the 64 px centre crop
    x = tf["copy2"](np.full((224, 224, 1), 200, np.uint8), rng=np.random.default_rng(0))
    assert x.shape == (1, 64, 64) and x.dtype == np.float32


# ---- --weights: an ImageNet-shaped file (RGB first layer, 1000-class head) -------------------
@pytest.mark.parametrize("script, arch, head, first", [
    ("xray_resnet50", "resnet50", "fc", "conv1.weight"),
    ("xray_densenet", "densenet161", "classifier", "features.conv0.weight"),
])
def test_weights_file_loads_backbone_and_replaces_head(script, arch, head, first, tmp_path):
    imagenet = getattr(models, arch)(num_classes=1000, in_channels=3)
    state = imagenet.state_dict()  # (name -> NumPy array), torchvision's names
    path = tmp_path / f"{arch}.safetensors"
    write_safetensors(state, path)
    model = load_example(script).build_model(path)
    got = dict(model.state_dict())
    assert np.allclose(got[first], state[first].sum(axis=1, keepdims=True), atol=1e-6)  # RGB summed
    deep = [k for k in state if k.endswith("running_var")][-1]
    assert np.array_equal(got[deep], state[deep])
    assert got[f"{head}.weight"].shape[0] == (1 if arch == "resnet50" else 2)  # the tutorial's new head


# ---- the helpers in minicnn.train.transfer ----------------------------------------------------
class Toy(D.Dataset):
    def __init__(self, labels):
        self.targets = np.asarray(labels, np.int64)

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        return np.full((2, 2, 1), i, np.float32), int(self.targets[i])


def test_with_augmented_copies_counts_and_transforms():
    base = Toy([0, 1, 0, 1, 1, 1, 1])
    ds = with_augmented_copies(base, 0, lambda im: im + 100, [lambda im: im + 200, lambda im: im + 300])
    assert len(ds) == 7 + 2 * 2
    assert np.bincount(D.get_targets(ds)).tolist() == [6, 5]
    values = [int(ds[i][0][0, 0, 0]) for i in range(len(ds))]
    assert values == [100, 101, 102, 103, 104, 105, 106, 200, 202, 300, 302]  # copies of items 0 and 2 only
    with pytest.raises(ValueError, match="no item of class 3"):
        with_augmented_copies(base, 3, None, [lambda im: im])


def tiny_model() -> nn.Sequential:
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(4, 2))
    return model


def toy_loader(seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(16, 1, 6, 6)).astype(np.float32)
    y = (x.mean(axis=(1, 2, 3)) > 0).astype(np.int64)
    return [(x[:8], y[:8]), (x[8:], y[8:])]


def run_phases(epochs: int, checkpoint: Path, resume: bool = False) -> tuple[nn.Sequential, list]:
    minicnn.manual_seed(0)
    model = tiny_model()
    opt = optim.Adam(model.parameters(), lr=1e-2)
    sched = StepLR(opt, 4, 0.1)
    phases = FreezeThenFinetune(model, model[5], head_epochs=2, finetune_lr=1e-3, scheduler=sched, verbose=False)
    seen = []

    class Snap(Callback):
        def on_epoch_end(self, trainer, epoch, logs):
            seen.append({k: v.data.copy() for k, v in model.named_parameters()})

    fit(model, toy_loader(), loss_fn=nn.CrossEntropyLoss(), optimizer=opt, scheduler=sched, epochs=epochs,
        callbacks=[phases, Snap()], checkpoint=str(checkpoint), resume=str(checkpoint) if resume else None,
        verbose=0)
    return model, seen


def test_freeze_then_finetune_trains_head_then_everything(tmp_path):
    minicnn.manual_seed(0)
    start = {k: v.data.copy() for k, v in tiny_model().named_parameters()}
    model, seen = run_phases(4, tmp_path / "a.npz")
    for epoch in (0, 1):  # phase 1: the backbone is exactly as built, the head moves
        assert all(np.array_equal(seen[epoch][k], start[k]) for k in start if not k.startswith("5."))
        assert not np.array_equal(seen[epoch]["5.weight"], start["5.weight"])
    assert not np.array_equal(seen[3]["0.weight"], start["0.weight"])  # phase 2: everything moves
    assert parameter_counts(model) == (sum(p.size for p in model.parameters()), 0)


def test_freeze_then_finetune_resumes_exactly_across_the_switch(tmp_path):
    straight, _ = run_phases(4, tmp_path / "straight.npz")
    run_phases(2, tmp_path / "split.npz")  # stops at the end of phase 1
    resumed, _ = run_phases(4, tmp_path / "split.npz", resume=True)
    for (k, a), (_, b) in zip(straight.named_parameters(), resumed.named_parameters()):
        assert np.array_equal(a.data, b.data), k


def test_freeze_all_but_checks_its_head():
    model = tiny_model()
    assert freeze_all_but(model, model[5]) == (10, sum(p.size for p in model.parameters()) - 10)
    with pytest.raises(ValueError, match="not part of"):
        freeze_all_but(model, nn.Linear(2, 2))


def test_find_data_folder(tmp_path, monkeypatch):
    with pytest.raises(D.DataError, match="does not exist"):
        find_data_folder(tmp_path / "nowhere", "chest_xray_224")
    monkeypatch.setenv("MINICNN_DATA_DIR", str(tmp_path / "env"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with pytest.raises(D.DataError, match=r"no chest_xray_224 folder found \(looked in .*env/chest_xray_224"):
        find_data_folder(None, "chest_xray_224", roots=[tmp_path / "extra"])
    for split in ("train", "test"):
        (tmp_path / "extra" / "chest_xray_224" / split).mkdir(parents=True)
    assert find_data_folder(None, "chest_xray_224", roots=[tmp_path / "extra"]) == \
        tmp_path / "extra" / "chest_xray_224"


# ---- option errors: one line, exit 2 ----------------------------------------------------------
@pytest.mark.parametrize("script, argv, fragment", [
    ("xray_resnet50", ["--val-fraction", "1.5"], "argument --val-fraction: must lie strictly between 0 and 1"),
    ("xray_resnet50", ["--size", "100"], "--size: 100 is not supported"),
    ("xray_densenet", ["--head-epochs", "-1"], "argument --head-epochs: must be at least 0"),
    ("xray_densenet", ["--head-lr", "nan"], "argument --head-lr: must be a finite number > 0"),
])
def test_bad_options_exit_2(script, argv, fragment, tmp_path, capsys):
    mod = load_example(script)
    with pytest.raises(SystemExit) as e:
        mod.parse_args(argv + ["--out", str(tmp_path / "o")])
    assert e.value.code == 2
    assert fragment in capsys.readouterr().err


# ---- smoke runs on the real chest X-rays ------------------------------------------------------
def run_script(name: str, *argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, str(ROOT / "examples" / f"{name}.py"), *argv], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=1800)


def check_run(out: Path, n: int, plots: list[str]) -> dict:
    saved = json.loads((out / "metrics.json").read_text())
    m = saved["metrics"]
    assert saved["hyperparameters"]["size"] == 64 and saved["hyperparameters"]["pretrained"] is False
    assert m["n"] == {"train": n, "val": n, "test": n}
    cm = np.array(m["test_confusion_matrix"])
    assert cm.shape == (2, 2) and cm.sum(axis=1).tolist() == [n // 2, n // 2]  # --limit keeps both classes
    assert m["test"]["accuracy"] == pytest.approx(np.trace(cm) / n)
    assert 0.0 <= m["test"]["auc"] <= 1.0 and m["cpu_seconds"] > 0
    made = sorted(p.name for p in out.glob("*.png") if p.stat().st_size > 2000)
    assert made == sorted(plots)
    return m


@pytest.mark.skipif(data_dir() is None or not (data_dir() / "chest_xray_224").is_dir(),
                    reason="needs $MINICNN_DATA_DIR with chest_xray_224/")
def test_resnet50_smoke_on_real_xrays(resnet_example, tmp_path):
    out = tmp_path / "r50"
    args = ["--size", "64", "--epochs", "1", "--limit", "8", "--batch-size", "8", "--workers", "0",
            "--out", str(out)]
    done = run_script("xray_resnet50", *args)
    assert done.returncode == 0, done.stderr[-3000:]
    m = check_run(out, 8, ["batch.png", "confusion_matrix.png", "predictions.png", "roc_curve.png",
                           "training_curves.png"])
    assert m["epochs_run"] == 1 and "threshold" in m["test_at_validation_threshold"]
    model = resnet_example.build_model()
    model.load_state_dict(minicnn.load(out / "resnet50_xray.npz"))  # the saved state dict fits the model
    again = run_script("xray_resnet50", *args)  # a finished run is never overwritten silently
    assert again.returncode == 2 and "already holds a run" in again.stderr and "Traceback" not in again.stderr


@pytest.mark.skipif(data_dir() is None or not (data_dir() / "chest_xray_224").is_dir(),
                    reason="needs $MINICNN_DATA_DIR with chest_xray_224/")
def test_densenet_smoke_on_real_xrays(tmp_path):
    out = tmp_path / "d161"
    done = run_script("xray_densenet", "--size", "64", "--epochs", "1", "--head-epochs", "1", "--limit", "8",
                      "--batch-size", "8", "--workers", "0", "--out", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    m = check_run(out, 8, ["augmented_batch.png", "class_distribution.png", "confidence.png",
                           "confusion_matrix.png", "predictions.png", "training_curves.png"])
    assert m["epochs_run"] == 2 and len(m["val_accuracy"]["phase1"]) == 1 and len(m["val_accuracy"]["phase2"]) == 1
    assert m["best_phase"] in (1, 2) and (out / "best.npz").is_file() and (out / "state.npz").is_file()
    assert "phase 1 (new head only, backbone frozen): 4,418 trainable" in done.stdout
    assert "phase 2 (everything, lr 0.0001)" in done.stdout
