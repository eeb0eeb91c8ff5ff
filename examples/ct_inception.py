"""Classify lung CT slices as COVID / non-COVID with three small CNNs, rebuilt on minicnn.

The tutorial this rebuilds (a Keras project on a COVID-19 CT set) enhances each slice with CLAHE
(clip limit 3.0), crops away the empty margins around the lungs, and trains on 150x150 grayscale
slices, rescaled by 1/255 and augmented like Keras' ImageDataGenerator (rotation 40 degrees, width
and height shifts 0.2, shear 0.2, zoom 0.2, horizontal flips, 'nearest' fill), batch 30, three
models compiled with Adam (lr 1e-4) and binary cross-entropy:

  simple_cnn         conv 32 - pool - dropout 0.5 - conv 64 - pool - dropout 0.5 - dense 64 - dense 1
  tiny_cnn           conv 6 - pool - dropout 0.8 - dense 2 - dense 1 (10 epochs, as simple_cnn)
  reduced_inception  one Inception block of single-filter branches on the full slice - dense 1 (3 epochs)

and compares them; the tutorial picks the reduced Inception. Here the three are trained one
after the other and compared in one table (parameters, validation and test accuracy, AUC, time).

    python examples/ct_inception.py                         # CPU default: 100 px, minutes alone
    python examples/ct_inception.py --size 150 --lr 1e-4 --tutorial-epochs   # the tutorial's settings
    python examples/ct_inception.py --models reduced_inception --size 150 --device cuda

CPU default (2-core machine, alone: a few minutes): 100 px slices instead of 150 (the simple CNN's
dense layer shrinks from 5.3M to 2.3M weights), lr 1e-3 and 60 epochs for every model instead of 1e-4
and 10/10/3 epochs (from scratch on 425 heavily augmented slices the models are still near chance
after the tutorial's epochs), the weights of the epoch with the best validation AUC kept. Test
accuracy is given at the tutorial's cut-off P(COVID) >= 0.5 and at a cut-off chosen on validation.
--size 150 --lr 1e-4 --tutorial-epochs is the tutorial's set-up.
Nothing is pretrained: every model trains from scratch. --weights FILE loads a state dict into
the first model given with --models (use it with one model).

Data: the UCSD-AI4H COVID-CT slices with the OFFICIAL train/val/test split (425/118/203) in
covid_ct/{train,val,test}/{CT_COVID,CT_NonCOVID}/ (--data, else $MINICNN_DATA_DIR, ../shared/data or
~/.cache/minicnn); the tutorial used an easier random 50/10/40 split of a Kaggle copy.
COVID is the positive class (label 1). --out gets, per model, best_<model>.npz and its plots; one
state.npz of the model in training (--resume continues it and skips finished models), the
comparison (comparison.md, roc_comparison.png), the preprocessing figure and metrics.json.
"""
from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import minicnn
from minicnn import data as D
from minicnn import models, nn, optim, plots
from minicnn.data import transforms as T
from minicnn.data.locate import find_folder
from minicnn.data.memory import InMemory
from minicnn.jsonio import write_json
from minicnn.metrics import best_threshold, binary_metrics
from minicnn.serialization import CheckpointError
from minicnn.train import ModelCheckpoint, cli, fit, report

DATASET = "covid_ct"
SPLITS = ("train", "val", "test")
CLASSES = ["non-COVID", "COVID"]          # label 1 = COVID (the folders sort the other way round)
SIZES = (32, 48, 64, 80, 96, 100, 112, 128, 150, 192, 224)
WORK_SIZE = 256                          # every slice is squared to this before CLAHE and cropping
CLAHE_CLIP, CLAHE_TILES = 3.0, (8, 8)    # cv2.createCLAHE(clipLimit=3.0), OpenCV's default 8x8 grid
CROP_THRESHOLD, CROP_MIN_AREA = 50, 0.01  # bright tissue above grey 50, regions of at least 1% of the slice
KERAS_AUGMENT: dict[str, Any] = dict(rotation_range=40, width_shift_range=0.2, height_shift_range=0.2,
                                     shear_range=0.2, zoom_range=0.2, horizontal_flip=True, fill_mode="nearest")
TUTORIAL_EPOCHS = {"simple_cnn": 10, "tiny_cnn": 10, "reduced_inception": 3}
MODEL_NAMES = tuple(TUTORIAL_EPOCHS)
ADAM_EPS = 1e-7                          # Keras' Adam epsilon
DEFAULT_EPOCHS = 60
OUTPUTS = ("*.png", "best_*.npz", "comparison.md", "progress.json")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_common_args(p, defaults={"size": 100, "epochs": DEFAULT_EPOCHS, "batch_size": 30, "lr": 1e-3,
                                     "out": "runs/ct_inception"}, sizes=SIZES, outputs=OUTPUTS, min_limit=4)
    p.add_argument("--models", default=",".join(MODEL_NAMES),
                   help="comma-separated models to train, in order (default: %(default)s)")
    p.add_argument("--tutorial-epochs", action="store_true",
                   help="train each model for the tutorial's epochs (10, 10, 3) instead of --epochs")
    args = cli.validate_args(p, p.parse_args(argv))
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    if args.tutorial_epochs:
        args.epochs = None
    unknown = [m for m in args.models if m not in MODEL_NAMES]
    if unknown or not args.models or len(set(args.models)) != len(args.models):
        p.error(f"argument --models: {','.join(unknown) or args.models} not valid; choose distinct names from "
                f"{', '.join(MODEL_NAMES)}")
    return args


# ---- preprocessing: CLAHE, then crop the dark margins, as the tutorial does before training --------
def stretch(img: np.ndarray) -> np.ndarray:
    """uint8 (H, W) -> uint8 (H, W) stretched to the full 0..255 range (the tutorial's min-max step)."""
    lo, hi = int(img.min()), int(img.max())
    if hi <= lo:
        return np.zeros_like(img)
    return ((img.astype(np.float32) - lo) * (255.0 / (hi - lo)) + 0.5).astype(np.uint8)


def preprocess_stages(img: np.ndarray, size: int) -> dict[str, np.ndarray]:
    """One slice (H, W) or (H, W, 1) uint8 -> {'original', 'CLAHE', 'CLAHE + crop'}: the last (size, size)."""
    grey = img[..., 0] if img.ndim == 3 else img
    square = stretch(np.asarray(T.Resize((WORK_SIZE, WORK_SIZE))(grey)))
    enhanced = T.clahe(square, CLAHE_CLIP, CLAHE_TILES)
    # the crop box comes from the slice before enhancement (CLAHE lifts the black margins too)
    box = T.foreground_box(square, threshold=CROP_THRESHOLD, min_area=CROP_MIN_AREA)
    top, left, bottom, right = box if box is not None else (0, 0, WORK_SIZE, WORK_SIZE)
    cropped = np.asarray(T.Resize((size, size))(np.ascontiguousarray(enhanced[top:bottom, left:right])))
    return {"original": square, "CLAHE": enhanced, "CLAHE + crop": cropped}


class Preprocess(T.Transform):
    """The deterministic part of the pipeline: slice -> CLAHE-enhanced, cropped uint8 (size, size)."""

    def __init__(self, size: int):
        self.size = size

    def __call__(self, img, rng=None) -> np.ndarray:
        return preprocess_stages(np.asarray(img), self.size)["CLAHE + crop"]


def load_splits(folder: Path, size: int, limit: int | None, seed: int) -> dict[str, InMemory]:
    """The official splits, preprocessed once and kept in memory; labels 1 = COVID."""
    out = {}
    for split in SPLITS:
        ds = D.ImageFolder(folder / split, transform=Preprocess(size), grayscale=True)
        if ds.classes != ["CT_COVID", "CT_NonCOVID"]:
            raise D.DataError(f"{folder / split}: expected class folders CT_COVID and CT_NonCOVID, found {ds.classes}")
        out[split] = InMemory(D.balanced_subset(ds, limit, seed), desc=f"CLAHE + crop {split}",
                              target_transform=lambda y: 1 - y)  # CT_COVID (0) -> 1
    return out


def make_transforms(train: bool) -> T.Transform:
    """uint8 (S, S) -> float32 (1, S, S) in [0, 1]; ImageDataGenerator's augmentation when training."""
    if train:
        return T.KerasAugment(rescale=1 / 255, **KERAS_AUGMENT)
    return T.ToArray()  # rescale = 1/255


# ---- the three models --------------------------------------------------------------------------
def build_model(name: str, size: int) -> nn.Sequential:
    """(N, 1, size, size) -> (N, 1) P(COVID): one of the tutorial's Keras models (sigmoid output)."""
    builders: dict[str, Callable[..., nn.Sequential]] = {
        "simple_cnn": models.simple_cnn, "tiny_cnn": models.tiny_cnn, "reduced_inception": models.reduced_inception}
    return builders[name](input_size=size, in_channels=1)


def build_training(model: nn.Module, lr: float) -> tuple[nn.Module, optim.Adam]:
    """The tutorial's compile(): binary cross-entropy on the sigmoid output, Adam."""
    return nn.BCELoss(), optim.Adam(model.parameters(), lr=lr, eps=ADAM_EPS)


def model_epochs(name: str, epochs: int | None) -> int:
    """--epochs for every model, or the tutorial's own count for this model when None."""
    return TUTORIAL_EPOCHS[name] if epochs is None else epochs


# ---- main -------------------------------------------------------------------------------------------
def train_one(name: str, args: argparse.Namespace, loaders: dict, resume_ok: bool) -> tuple[nn.Module, dict, dict]:
    """Train `name` (continuing OUT/state.npz when it belongs to this model); returns model, history, info."""
    out = args.out
    epochs = model_epochs(name, args.epochs)

    def setup() -> tuple[nn.Module, nn.Module, optim.Adam, ModelCheckpoint]:
        minicnn.manual_seed(args.seed)
        model = build_model(name, args.size)
        loss_fn, opt = build_training(model, args.lr)
        best = ModelCheckpoint(str(out / f"best_{name}.npz"), monitor="val_auc", mode="max",
                               restore_best_weights=True, verbose=False)
        return model, loss_fn, opt, best

    model, loss_fn, opt, best = setup()
    if args.weights and name == args.models[0]:
        print(report.load_weights(model, args.weights))
    print(f"\n==== {name}: {model.num_parameters():,} parameters, {epochs} epochs ====")
    t0 = time.time()
    kw = dict(loss_fn=loss_fn, epochs=epochs, device=args.device, checkpoint=str(out / "state.npz"), verbose=1)
    try:
        history = fit(model, loaders["train"], loaders["val"], optimizer=opt, callbacks=[best],
                      resume=str(out / "state.npz") if resume_ok else None, **kw)
    except CheckpointError:
        if not resume_ok:
            raise
        # state.npz still holds the previous (finished) model: this one had not saved an epoch yet
        print(f"state.npz belongs to the previous model; starting {name} from its first epoch")
        model, loss_fn, opt, best = setup()
        kw["loss_fn"] = loss_fn
        history = fit(model, loaders["train"], loaders["val"], optimizer=opt, callbacks=[best], **kw)
    info = {"epochs": len(history.get("loss", [])),
            "best_epoch": None if best.best_epoch is None else best.best_epoch + 1,
            "train_seconds": int(round(time.time() - t0))}
    return model, history, info


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    out = args.out
    D.seed_transforms(args.seed)
    t_start = time.time()

    # ---- data: the official split, CLAHE-enhanced and cropped once ----
    folder = find_folder(args.data, DATASET, splits=SPLITS,
                         how_to_get="Get the slices and Data-split lists from github.com/UCSD-AI4H/COVID-CT")
    splits = load_splits(folder, args.size, args.limit, args.seed)
    targets = {k: v.targets for k, v in splits.items()}
    for k, y in targets.items():
        print(f"{k:>5}: {len(y)} slices ({int((y == 1).sum())} COVID, {int((y == 0).sum())} non-COVID)")
    name = f"COVID-CT (official split), {args.size}px"

    # the tutorial's figure: six slices before and after CLAHE and cropping, with their histograms
    raw = D.ImageFolder(folder / "train", grayscale=True)
    pick = np.linspace(0, len(raw) - 1, 6).round().astype(int)
    stages = [preprocess_stages(raw[int(i)][0], args.size) for i in pick]
    report.plot_stages({k: [s[k] for s in stages] for k in stages[0]}, out / "preprocessing.png",
                       hist=("original", "CLAHE"), title="CLAHE and lung crop", dataset=name)
    plots.plot_class_distribution(targets, CLASSES, out / "class_distribution.png", dataset=name)

    loader = dict(batch_size=args.batch_size, num_workers=args.workers, seed=args.seed)
    loaders = {"train": D.DataLoader(D.WithTransform(splits["train"], make_transforms(True)), shuffle=True,
                                     **loader),
               "val": D.DataLoader(D.WithTransform(splits["val"], make_transforms(False)), **loader),
               "test": D.DataLoader(D.WithTransform(splits["test"], make_transforms(False)), **loader)}
    xb, yb = next(iter(loaders["train"]))
    plots.plot_augmented_batch(xb[:16], yb[:16], CLASSES, out / "augmented_batch.png", dataset=name)

    # ---- the three models, one after the other ----
    progress_path = out / "progress.json"
    done: dict[str, dict] = {}
    if args.resume and progress_path.is_file():
        done = json.loads(progress_path.read_text())["done"]
    rows, curves = [], {}
    first_todo = next((m for m in args.models if m not in done), None)  # the model state.npz may belong to
    for model_name in args.models:
        if model_name in done:  # finished before the interruption: its best weights are on disk
            print(f"\n==== {model_name}: finished in the interrupted run; reloading best_{model_name}.npz ====")
            model: nn.Module = build_model(model_name, args.size)
            model.load_state_dict(minicnn.load(str(out / f"best_{model_name}.npz")))
            info, history = done[model_name], None
        else:
            resume_ok = args.resume and model_name == first_todo
            model, history, info = train_one(model_name, args, loaders, resume_ok)
        val = report.evaluate_classifier(model, loaders["val"], CLASSES, device=args.device, split="validation")
        res = report.evaluate_classifier(model, loaders["test"], CLASSES, device=args.device)
        # the tutorial calls P(COVID) >= 0.5 positive; a cut-off chosen on validation is shown beside it
        thr = best_threshold(val["y_true"], val["probs"][:, 1], criterion="accuracy")
        at_thr = binary_metrics(res["y_true"], res["probs"][:, 1], threshold=thr)
        if history is not None:
            report.save_standard_plots(out, res, CLASSES, history=history, dataset=f"{model_name}, {name}",
                                       curves=("loss", "accuracy", "auc"), prefix=f"{model_name}_")
        row = {"model": model_name, "parameters": model.num_parameters(), "epochs": info["epochs"],
               "best epoch": info["best_epoch"], "val accuracy": val["metrics"]["accuracy"],
               "val AUC": val["metrics"]["auc"],
               "test accuracy": res["metrics"]["accuracy"], "test AUC": res["metrics"]["auc"],
               "val threshold": thr, "test accuracy at val threshold": at_thr["accuracy"],
               "test sensitivity": res["metrics"]["recall"], "test specificity": res["metrics"]["specificity"],
               "train seconds": info["train_seconds"]}
        rows.append(row)
        curves[model_name] = res
        done[model_name] = info
        write_json(progress_path, {"done": done})

    # ---- the comparison ----
    table = report.format_table(rows)
    (out / "comparison.md").write_text(f"# {name}: test split ({len(targets['test'])} slices)\n\n{table}\n")
    best_row = max(rows, key=lambda r: (r["val accuracy"], r["val AUC"]))  # chosen without looking at test
    report.plot_roc_comparison({k: (r["y_true"], r["probs"][:, 1]) for k, r in curves.items()},
                               out / "roc_comparison.png", title="Test ROC", dataset=name)
    metrics = {"models": rows, "chosen_by_validation": best_row["model"],
               "best_test_accuracy": max(r["test accuracy"] for r in rows),
               "n": {k: int(len(v)) for k, v in splits.items()}, "seconds": round(time.time() - t_start, 1)}
    cli.write_run_summary(out, hyper=args, metrics=metrics, dataset=name, data_folder=str(folder), classes=CLASSES)
    print(f"\n{table}\n")
    cli.print_results({"model chosen on validation": best_row["model"],
                       "its test accuracy": best_row["test accuracy"],
                       "its test accuracy at the validation cut-off": best_row["test accuracy at val threshold"],
                       "its test AUC": best_row["test AUC"],
                       "best test accuracy": metrics["best_test_accuracy"],
                       "minutes": round((time.time() - t_start) / 60, 1)},
                      title=f"TEST ({len(targets['test'])} slices, official split)", out=out)
    return metrics


if __name__ == "__main__":
    cli.run_main(main)
