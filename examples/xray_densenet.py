"""Pneumonia or normal? DenseNet161 in two phases: a new head on a frozen backbone, then everything.

Rebuilds, on minicnn, a PyTorch DenseNet tutorial on the Kermany "Chest X-Ray Images
(Pneumonia)" set: the NORMAL class, three times smaller than PNEUMONIA, is balanced with two
extra augmented copies of every NORMAL X-ray; 30% is held out for validation; DenseNet161 gets
a new two-class classifier; phase 1 trains that classifier alone with the backbone frozen (Adam
1e-3, StepLR(step 4, gamma 0.1), cross-entropy), phase 2 fine-tunes every layer at lr 1e-4; the
weights with the best validation accuracy are kept; then test accuracy, a grid of test
predictions and per-image confidence bars.

    python examples/xray_densenet.py                     # CPU default: 64 px, 1 + 2 epochs, from scratch
    python examples/xray_densenet.py --size 224 --head-epochs 10 --epochs 10 --weights densenet161.pth --device cuda

From scratch by default: no pretrained weights can be downloaded here, so the backbone is
random unless --weights names an ImageNet DenseNet161 (.safetensors or a torchvision .pth,
old-style key names included; its RGB first layer is summed to the one grey channel and its
1000-class classifier replaced). Phase 1 then trains a head on random features, which teaches
little; phase 2 does the learning. The tutorial's settings are --size 224 --head-epochs 10
--epochs 10 --weights FILE --device cuda. The CPU default (64 px, 1 head epoch + 2 fine-tuning
epochs, batch 50) takes about 17 minutes on an otherwise idle 2-core machine (74 ms per image
fine-tuning, 18 ms with the backbone frozen); see docs/tutorial_results.md for its results.

Two deliberate differences from the tutorial. It split the balanced set after making the
copies, so augmented copies of one X-ray sat in both training and validation; here the
original images are split 70/30 (stratified) first and each side is balanced with copies of
its own images. And its phase 2 reused the phase-1 scheduler, still bound to the phase-1
optimizer, so its fine-tuning lr never decayed; here StepLR restarts at phase 2.

Data: --data, else chest_xray_224/ (or chest_xray/) under $MINICNN_DATA_DIR, ~/.cache/minicnn
or ../shared/data: train/{NORMAL,PNEUMONIA} and test/{NORMAL,PNEUMONIA} image files, read as
grey. Everything lands in --out: metrics.json, best.npz (the best weights), state.npz
(resumable with --resume, in either phase) and the plots.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import minicnn
from minicnn import data as D
from minicnn import models, nn, optim, plots
from minicnn.data import transforms as T
from minicnn.metrics import binary_metrics, confusion_matrix
from minicnn.train import ModelCheckpoint, cli, fit, predict_proba
from minicnn.train.transfer import FreezeThenFinetune, find_data_folder, with_augmented_copies
from minicnn.weights import load_pretrained

ROOT = Path(__file__).resolve().parents[1]
SIZES = (32, 64, 96, 128, 160, 224)
CLASSES = ["NORMAL", "PNEUMONIA"]
NORMAL = 0
VAL_FRACTION = 0.3
STEP_SIZE, GAMMA = 4, 0.1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_common_args(p, defaults={"size": 64, "epochs": 2, "batch_size": 50, "lr": 1e-4,
                                     "out": "runs/xray_densenet"},
                        sizes=SIZES, outputs=("*.png",), min_limit=4)
    p.add_argument("--head-epochs", type=int, default=1,
                   help="phase 1: epochs training the new head on the frozen backbone (default: %(default)s; "
                        "the tutorial: 10). --epochs then counts phase 2, --lr is phase 2's lr")
    p.add_argument("--head-lr", type=float, default=1e-3, help="phase 1's learning rate (default: %(default)s)")
    args = cli.validate_args(p, p.parse_args(argv))
    if args.head_epochs < 0:
        p.error(f"argument --head-epochs: must be at least 0, got {args.head_epochs}")
    if not (np.isfinite(args.head_lr) and args.head_lr > 0):
        p.error(f"argument --head-lr: must be a finite number > 0, got {args.head_lr}")
    return args


# ---- data: NORMAL balanced with two augmented copies, 70/30 split --------------------------------
def make_transforms(size: int) -> dict[str, T.Compose]:
    """The tutorial's four pipelines, uint8 (H, W, 1) -> float32 (1, size, size) in [0, 1].

    'train' augments every training image; 'copy1' and 'copy2' make the two extra NORMAL copies;
    'eval' only resizes. Each resizes to 255/224 of `size` and centre-crops `size`, as the
    tutorial's Resize(255) + CenterCrop(224). (Its RandomGrayscale does nothing to grey images.)
    """
    def frame(*steps: T.Transform) -> T.Compose:
        return T.Compose([T.Resize(round(size * 255 / 224)), T.CenterCrop(size), *steps, T.ToArray()])

    return {
        "train": frame(T.RandomHorizontalFlip(), T.RandomRotation(10), T.RandomAffine(0, translate=(0.05, 0.05))),
        "copy1": frame(T.RandomHorizontalFlip(p=1.0), T.RandomAffine(10, translate=(0.1, 0.05))),
        "copy2": frame(T.RandomHorizontalFlip(), T.RandomRotation(15), T.RandomAffine(15, translate=(0.08, 0.1))),
        "eval": frame(),
    }


def load_splits(folder: Path, size: int, seed: int, limit: int | None) -> tuple[dict, D.Dataset]:
    """({'train', 'val', 'test'} datasets of (image, label 0 normal / 1 pneumonia), the train/ folder as read)."""
    D.check_split_folder(folder, ("train", "test"))
    tf = make_transforms(size)
    originals = D.ImageFolder(folder / "train", grayscale=True)
    test = D.ImageFolder(folder / "test", grayscale=True, transform=tf["eval"])
    for split in (originals, test):
        if [c.upper() for c in split.classes] != CLASSES:
            raise D.DataError(f"{split.root} has class folders {split.classes}; expected NORMAL and PNEUMONIA")
    train_part, val_part = D.train_test_split(originals, test_size=VAL_FRACTION, stratify=True, seed=seed)
    copies = [tf["copy1"], tf["copy2"]]
    parts = {"train": with_augmented_copies(train_part, NORMAL, tf["train"], copies),
             "val": with_augmented_copies(val_part, NORMAL, tf["eval"], copies),
             "test": test}
    parts = {k: D.balanced_subset(v, limit, seed) for k, v in parts.items()}
    for k, v in parts.items():
        D.check_labels(v, num_classes=2, where=f"the {k} split of {folder}", class_names=CLASSES)
    return parts, originals


# ---- the model: DenseNet161 with a new two-class classifier --------------------------------------
def build_model(weights: str | Path | None = None) -> models.DenseNet:
    """(N, 1, H, W) grey X-rays -> (N, 2) logits (NORMAL, PNEUMONIA); ImageNet weights loaded when given."""
    model = models.densenet161(in_channels=1)
    if weights is not None:
        report = load_pretrained(model, weights, exclude=("classifier.",))  # replaced below anyway
        print(f"loaded {len(report.loaded)} tensors from {weights}" + "".join(f"\n  {n}" for n in report.notes))
    model.classifier = nn.Linear(model.classifier.in_features, len(CLASSES))  # 2208 features -> 2 logits
    return model


def build_training(model: models.DenseNet, head_epochs: int, head_lr: float, finetune_lr: float) -> dict:
    """Cross-entropy, Adam over every parameter (frozen ones get no gradient), StepLR(4, 0.1), two phases."""
    opt = optim.Adam(model.parameters(), lr=head_lr)
    sched = optim.lr_scheduler.StepLR(opt, STEP_SIZE, gamma=GAMMA)
    phases = FreezeThenFinetune(model, head=model.classifier, head_epochs=head_epochs, finetune_lr=finetune_lr,
                                scheduler=sched)
    return {"loss_fn": nn.CrossEntropyLoss(), "optimizer": opt, "scheduler": sched, "phases": phases}


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    out: Path = args.out
    t_start, cpu_start = time.time(), time.process_time()
    minicnn.manual_seed(args.seed)
    D.seed_transforms(args.seed)

    # ---- data ----
    folder = find_data_folder(args.data, "chest_xray_224", roots=[ROOT.parent / "shared" / "data"])
    splits, originals = load_splits(folder, args.size, args.seed, args.limit)
    targets = {k: D.get_targets(v) for k, v in splits.items()}
    name = f"{folder.name} at {args.size}px"
    print(f"data: {folder}; {args.size}px; " + ", ".join(
        f"{k} {len(v)} ({np.sum(targets[k] == 0)} normal / {np.sum(targets[k] == 1)} pneumonia)"
        for k, v in splits.items()))
    plots.plot_class_distribution({"train/ as read": D.get_targets(originals), "train (balanced)": targets["train"],
                                   "validation (balanced)": targets["val"]}, CLASSES,
                                  out / "class_distribution.png", dataset=name)
    loader = dict(batch_size=args.batch_size, num_workers=args.workers, seed=args.seed)
    train_dl = D.DataLoader(splits["train"], shuffle=True, **loader)
    val_dl = D.DataLoader(splits["val"], **{**loader, "batch_size": args.batch_size * 2})
    test_dl = D.DataLoader(splits["test"], **loader)
    xb, yb = next(iter(train_dl))
    plots.plot_augmented_batch(xb[:40], yb[:40], CLASSES, out / "augmented_batch.png", ncols=10, dataset=name)

    # ---- the model ----
    model = build_model(args.weights)
    print(f"DenseNet161, new classifier Linear({model.classifier.in_features}, 2); "
          f"{'from ' + str(args.weights) if args.weights else 'trained FROM SCRATCH (no --weights given)'}")

    # ---- training: phase 1 the head alone, phase 2 everything; keep the best validation accuracy ----
    recipe = build_training(model, args.head_epochs, args.head_lr, args.lr)
    phases = recipe.pop("phases")
    best = ModelCheckpoint(str(out / "best.npz"), monitor="val_accuracy", restore_best_weights=True)
    history = fit(model, train_dl, val_dl, epochs=args.head_epochs + args.epochs, callbacks=[phases, best],
                  device=args.device, checkpoint=str(out / "state.npz"), resume=cli.resume_path(args), **recipe)
    train_seconds = time.time() - t_start

    # ---- test ----
    y = targets["test"]
    prob = predict_proba(model, test_dl, device=args.device)  # (N, 2) softmax
    pred = prob.argmax(axis=1)
    test = binary_metrics(y, prob[:, 1], threshold=0.5)  # argmax of two classes == P(pneumonia) >= 0.5
    test_loss = float(-np.mean(np.log(np.clip(prob[np.arange(len(y)), y], 1e-12, 1.0))))
    cm = confusion_matrix(y, pred, num_classes=2)

    # ---- plots: curves over both phases, the prediction grid, confidence bars ----
    normal, pneumonia = np.flatnonzero(y == 0), np.flatnonzero(y == 1)
    grid = np.concatenate([normal[:5], pneumonia[:5]])
    bars = np.concatenate([normal[:4], pneumonia[:4]])
    images = {int(i): splits["test"][int(i)][0] for i in np.union1d(grid, bars)}
    plots.plot_history(dict(history), out / "training_curves.png", metrics=("loss", "accuracy", "lr"),
                       title=f"Training history (phase 1: epochs 1-{args.head_epochs}, head only)", dataset=name)
    plots.plot_confusion_matrix(cm, CLASSES, out / "confusion_matrix.png", dataset=name)
    plots.plot_predictions(np.stack([images[int(i)] for i in grid]), y[grid], pred[grid], CLASSES,
                           out / "predictions.png", probs=prob[grid], ncols=5, title="Test images", dataset=name)
    plots.plot_probability_bars(np.stack([images[int(i)] for i in bars]), prob[bars], CLASSES,
                                out / "confidence.png", y_true=y[bars], max_images=8,
                                title="Predicted class probabilities", dataset=name)

    phase1, phase2 = ([e for e in range(len(history.get("loss", []))) if phases.phase_of(e) == k] for k in (1, 2))
    metrics = {
        "test": {"loss": test_loss, **{k: test[k] for k in ("accuracy", "precision", "recall", "specificity",
                                                            "f1", "auc")}},
        "test_confusion_matrix": cm.tolist(),
        "best_epoch": None if best.best_epoch is None else best.best_epoch + 1,
        "best_val_accuracy": None if best.best_epoch is None else best.best,
        "best_phase": None if best.best_epoch is None else phases.phase_of(best.best_epoch),
        "val_accuracy": {"phase1": [history["val_accuracy"][e] for e in phase1],
                         "phase2": [history["val_accuracy"][e] for e in phase2]},
        "epochs_run": len(history.get("loss", [])),
        "n": {k: len(v) for k, v in splits.items()},
        "train_seconds": round(train_seconds, 1),
        "seconds": round(time.time() - t_start, 1),
        # CPU time of every thread of this process: on a shared machine, wall time / this share says
        # how much of the time went to other jobs; alone on 2 cores, wall ~ cpu_seconds / 2 .. / 1
        "cpu_seconds": round(time.process_time() - cpu_start, 1),
    }
    hyper = {**vars(args), "arch": "densenet161", "pretrained": args.weights is not None,
             "optimizer": "Adam", "loss": "CrossEntropyLoss", "scheduler": f"StepLR(step_size={STEP_SIZE}, "
             f"gamma={GAMMA}), restarted at phase 2", "val_fraction": VAL_FRACTION,
             "balancing": "two augmented copies of every NORMAL image"}
    cli.write_run_summary(out, hyper=hyper, metrics=metrics, dataset=name, data=folder, device=args.device)
    cli.print_results(metrics, title=f"TEST ({len(y)} images, {name})", out=out)
    return metrics


if __name__ == "__main__":
    cli.run_main(main)
