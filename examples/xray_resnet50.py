"""Pneumonia or normal? A ResNet50 with one output, trained with a one-cycle schedule on chest X-rays.

Rebuilds, on minicnn, a PyTorch transfer-learning tutorial on the Kermany "Chest X-Ray Images
(Pneumonia)" set: the train/ and test/ folders read as image folders, 10% of train/ held out
for validation, random horizontal and vertical flips, ResNet50 with its last layer replaced by
a single logit, binary cross-entropy with logits, Adam with weight decay 1e-4, a one-cycle
learning rate (max 1e-2) stepped after every batch, gradient values clipped to +-0.1, progress
bars, then test accuracy, the weights and a JSON of hyper-parameters and metrics.

    python examples/xray_resnet50.py                       # CPU default: 64 px, 4 epochs, from scratch
    python examples/xray_resnet50.py --size 224 --epochs 10 --weights resnet50.safetensors --device cuda

From scratch by default: no pretrained weights can be downloaded here, so the network starts
from random weights unless --weights names an ImageNet ResNet50 (.safetensors or a torchvision
.pth; its RGB first layer is summed to the one grey channel, its 1000-class fc is replaced).
The tutorial's settings (224 px, 10 epochs, pretrained, a GPU) take --size 224 --epochs 10
--weights FILE --device cuda. The CPU default (64 px, 4 epochs, batch 64) takes about 12 minutes
on an otherwise idle 2-core machine (36 ms per training image); at 224 px, 10 epochs would take
about 6 hours there. See docs/tutorial_results.md for what the default run reaches.

Data: --data, else chest_xray_224/ (or chest_xray/) under $MINICNN_DATA_DIR, ~/.cache/minicnn
or ../shared/data: train/{NORMAL,PNEUMONIA} and test/{NORMAL,PNEUMONIA} image files, read as
grey and resized to --size. The test split (624 images in the official set) is used once, at
the end. Everything lands in --out: metrics.json, resnet50_xray.npz (the state dict),
state.npz (resumable with --resume) and the plots.
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
from minicnn.metrics import best_threshold, binary_metrics, confusion_matrix
from minicnn.train import GradientClipping, cli, fit, predict_proba
from minicnn.train.transfer import find_data_folder, parameter_counts
from minicnn.weights import load_pretrained

ROOT = Path(__file__).resolve().parents[1]
SIZES = (32, 64, 96, 128, 160, 224)
CLASSES = ["NORMAL", "PNEUMONIA"]
# The tutorial normalises with per-channel statistics (0.4914, 0.4822, 0.4465) / (0.2023, 0.1994,
# 0.2010); our images have one grey channel, so it gets the mean of the three.
MEAN, STD = 0.4734, 0.2009
WEIGHT_DECAY, GRAD_CLIP = 1e-4, 0.1
WEIGHTS_FILE = "resnet50_xray.npz"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_common_args(p, defaults={"size": 64, "epochs": 4, "batch_size": 64, "lr": 1e-2,
                                     "out": "runs/xray_resnet50"},
                        sizes=SIZES, outputs=("*.png", WEIGHTS_FILE), min_limit=4)
    p.add_argument("--val-fraction", type=float, default=0.1,
                   help="share of train/ held out for validation (default: %(default)s)")
    args = cli.validate_args(p, p.parse_args(argv))
    if not 0 < args.val_fraction < 1:
        p.error(f"argument --val-fraction: must lie strictly between 0 and 1, got {args.val_fraction}")
    return args


# ---- data: an image folder, 10% of train/ for validation, flips for training ---------------------
def make_transforms(size: int, train: bool) -> T.Compose:
    """uint8 (H, W, 1) -> float32 (1, size, size) standardised; random h/v flips when training."""
    steps: list = [T.Resize((size, size))]
    if train:
        steps += [T.RandomHorizontalFlip(), T.RandomVerticalFlip()]
    return T.Compose(steps + [T.ToArray(), T.Normalize(MEAN, STD)])


def load_splits(folder: Path, size: int, val_fraction: float, seed: int, limit: int | None) -> dict:
    """{'train', 'val', 'test'} datasets of (image (1, size, size), label 0 normal / 1 pneumonia)."""
    D.check_split_folder(folder, ("train", "test"))
    dataset = D.ImageFolder(folder / "train", grayscale=True)
    test = D.ImageFolder(folder / "test", grayscale=True)
    for split in (dataset, test):
        if [c.upper() for c in split.classes] != CLASSES:
            raise D.DataError(f"{split.root} has class folders {split.classes}; expected NORMAL and PNEUMONIA")
    n_val = int(val_fraction * len(dataset))  # as the tutorial: a plain random split, not stratified
    train, val = D.random_split(dataset, [len(dataset) - n_val, n_val], seed=seed)
    parts = {"train": train, "val": val, "test": test}
    parts = {k: D.balanced_subset(v, limit, seed) for k, v in parts.items()}
    for k, v in parts.items():
        D.check_labels(v, num_classes=2, where=f"the {k} split of {folder}", class_names=CLASSES)
    return {k: D.WithTransform(v, make_transforms(size, train=k == "train")) for k, v in parts.items()}


# ---- the model: ResNet50 with a one-logit head ---------------------------------------------------
def build_model(weights: str | Path | None = None) -> models.ResNet:
    """(N, 1, H, W) grey X-rays -> (N, 1) logit of pneumonia; ImageNet weights loaded when given."""
    model = models.resnet50(in_channels=1)
    if weights is not None:
        report = load_pretrained(model, weights, exclude=("fc.",))  # the head is replaced below anyway
        print(f"loaded {len(report.loaded)} tensors from {weights}" + "".join(f"\n  {n}" for n in report.notes))
    model.fc = nn.Linear(model.fc.in_features, 1)  # 2048 features -> 1 logit
    return model


def build_training(model: nn.Module, steps_per_epoch: int, epochs: int, max_lr: float) -> dict:
    """The tutorial's recipe: BCE with logits, Adam (wd 1e-4), one cycle up to max_lr, clip values at 0.1."""
    opt = optim.Adam(model.parameters(), lr=max_lr, weight_decay=WEIGHT_DECAY)
    sched = optim.lr_scheduler.OneCycleLR(opt, max_lr, epochs=epochs, steps_per_epoch=steps_per_epoch)
    return {"loss_fn": nn.BCEWithLogitsLoss(), "optimizer": opt, "scheduler": sched,
            "scheduler_interval": "batch", "callbacks": [GradientClipping(clip_value=GRAD_CLIP)]}


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    out: Path = args.out
    t_start, cpu_start = time.time(), time.process_time()
    minicnn.manual_seed(args.seed)
    D.seed_transforms(args.seed)

    # ---- data ----
    folder = find_data_folder(args.data, "chest_xray_224", roots=[ROOT.parent / "shared" / "data"])
    splits = load_splits(folder, args.size, args.val_fraction, args.seed, args.limit)
    targets = {k: D.get_targets(v) for k, v in splits.items()}
    name = f"{folder.name} at {args.size}px"
    print(f"data: {folder}; {args.size}px; " + ", ".join(
        f"{k} {len(v)} ({np.sum(targets[k] == 0)} normal / {np.sum(targets[k] == 1)} pneumonia)"
        for k, v in splits.items()))
    loader = dict(batch_size=args.batch_size, num_workers=args.workers, seed=args.seed)
    train_dl = D.DataLoader(splits["train"], shuffle=True, **loader)
    val_dl = D.DataLoader(splits["val"], **{**loader, "batch_size": args.batch_size * 2})
    test_dl = D.DataLoader(splits["test"], **loader)
    xb, yb = next(iter(train_dl))  # a look at one augmented batch, as the tutorial's show_batch
    plots.plot_augmented_batch(xb[:32], yb[:32], CLASSES, out / "batch.png", dataset=name)

    # ---- the model ----
    model = build_model(args.weights)
    trainable, frozen = parameter_counts(model)
    print(f"ResNet50, one-logit head: {trainable:,} trainable parameters ({frozen:,} frozen); "
          f"{'from ' + str(args.weights) if args.weights else 'trained FROM SCRATCH (no --weights given)'}")

    # ---- training: one cycle over every batch, clipped gradients ----
    recipe = build_training(model, len(train_dl), args.epochs, args.lr)
    history = fit(model, train_dl, val_dl, epochs=args.epochs, device=args.device,
                  checkpoint=str(out / "state.npz"), resume=cli.resume_path(args), **recipe)
    train_seconds = time.time() - t_start
    minicnn.save(model.state_dict(), out / WEIGHTS_FILE)

    # ---- evaluation on the test split, at the tutorial's rule P(pneumonia) > 0.5 ----
    y = targets["test"]
    prob = predict_proba(model, test_dl, device=args.device)
    test = binary_metrics(y, prob, threshold=0.5)
    cm = confusion_matrix(y, (prob >= 0.5).astype(int), num_classes=2)
    # a second reading: the threshold that best separates the VALIDATION split (Youden's J)
    val_thr = best_threshold(targets["val"], predict_proba(model, val_dl, device=args.device))
    test_val_thr = binary_metrics(y, prob, threshold=val_thr)

    # ---- plots ----
    show = np.concatenate([np.flatnonzero(y == c)[:8] for c in (0, 1)])  # 8 normal, 8 pneumonia
    images = np.stack([splits["test"][int(i)][0] for i in show])
    plots.plot_history(dict(history), out / "training_curves.png", metrics=("loss", "accuracy", "auc", "lr"),
                       dataset=name)
    plots.plot_confusion_matrix(cm, CLASSES, out / "confusion_matrix.png", dataset=name)
    plots.plot_roc_curve(y, prob, out / "roc_curve.png", auc=test["auc"], threshold=0.5, dataset=name)
    plots.plot_predictions(images, y[show], (prob[show] >= 0.5).astype(int), CLASSES, out / "predictions.png",
                           probs=prob[show], ncols=8, title="Test images, threshold 0.5", dataset=name)

    keep = ("accuracy", "precision", "recall", "specificity", "f1", "auc")
    metrics = {
        "test": {k: test[k] for k in keep},
        "test_confusion_matrix": cm.tolist(),
        "test_at_validation_threshold": {"threshold": val_thr, **{k: test_val_thr[k] for k in keep}},
        "final_epoch": {k: history[k][-1] for k in ("loss", "val_loss", "val_accuracy", "val_auc") if k in history},
        "epochs_run": len(history.get("loss", [])),
        "n": {k: len(v) for k, v in splits.items()},
        "train_seconds": round(train_seconds, 1),
        "seconds": round(time.time() - t_start, 1),
        # CPU time of every thread of this process: on a shared machine, wall time / this share says
        # how much of the time went to other jobs; alone on 2 cores, wall ~ cpu_seconds / 2 .. / 1
        "cpu_seconds": round(time.process_time() - cpu_start, 1),
    }
    hyper = {**vars(args), "arch": "resnet50", "pretrained": args.weights is not None, "scheduler": "one-cycle",
             "max_lr": args.lr, "weight_decay": WEIGHT_DECAY, "grad_clip_value": GRAD_CLIP, "optimizer": "Adam",
             "loss": "BCEWithLogitsLoss", "normalize": [MEAN, STD]}
    cli.write_run_summary(out, hyper=hyper, metrics=metrics, dataset=name, data=folder, device=args.device)
    cli.print_results(metrics, title=f"TEST ({len(y)} images, {name}, threshold 0.5)", out=out)
    return metrics


if __name__ == "__main__":
    cli.run_main(main)
