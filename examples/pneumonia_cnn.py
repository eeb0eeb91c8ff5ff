"""Train the pneumonia CNN of the Keras chest X-ray tutorial on real X-rays, rebuilt on minicnn.

    python examples/pneumonia_cnn.py                          # PneumoniaMNIST 28 px (official splits)
    python examples/pneumonia_cnn.py --data ../shared/data/kermany_64_splits.npz --size 64
    python examples/pneumonia_cnn.py --data path/to/chest_xray --size 180 --device cuda

Data: --data (a MedMNIST-style .npz, a folder holding pneumoniamnist*.npz, or a Kaggle-style
chest_xray folder with train/ and test/), else $MINICNN_DATA_DIR or ~/.cache/minicnn, else a
download from the official Zenodo record. With no real data at all it falls back to synthetic
"chest phantoms" and says so loudly (--no-fallback makes that an error).

Everything lands in --out: best.npz (weights), state.npz (resumable), metrics.json and plots.
An existing run there is kept: --resume continues it, --overwrite starts it again. A bad option
is one line naming it (exit 2), bad data one line naming the file (exit 1), Ctrl-C prints the
command that resumes (exit 130); see minicnn.train.cli.
"""
from __future__ import annotations

import argparse
import os
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

import minicnn
from minicnn import data as D
from minicnn import nn, optim, plots
from minicnn.data import transforms as T
from minicnn.data.sources import REAL_DATA_HELP
from minicnn.metrics import best_threshold, binary_metrics, confusion_matrix
from minicnn.train import EarlyStopping, ModelCheckpoint, cli, fit, predict_proba
from minicnn.weights import load_pretrained

SIZES = (28, 64, 128, 180, 224)
CLASSES = ["normal", "pneumonia"]
# Keras' batch-norm momentum (0.99) leaves the running variance near its initial 1.0 for
# ~1000 steps while these activations have variance ~1e-4: eval-mode outputs are garbage
# for the first epochs. PyTorch's momentum 0.1 fixes that (see models.pneumonia_cnn).
BN_MOMENTUM = 0.1
BN_EPS = 1e-3  # Keras' BatchNormalization epsilon


def parse_args(argv=None) -> tuple[argparse.Namespace, int]:
    """The common options of every example (minicnn.train.cli) plus this script's own, and this process' rank.

    A bad option exits with status 2 and one line naming it, before anything is written."""
    p = argparse.ArgumentParser(prog="pneumonia_cnn.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_common_args(p, defaults={"epochs": 20, "batch_size": 64, "lr": 1e-3, "out": "runs/pneumonia_cnn"},
                        sizes=SIZES, outputs=("*.png",), min_limit=4)  # --limit 4: two images of each class
    p.add_argument("--synthetic", action="store_true", help="train on synthetic chest phantoms")
    p.add_argument("--no-fallback", action="store_true", help="fail instead of falling back to phantoms")
    p.add_argument("--threshold", type=float, default=None,
                   help="decision threshold in (0, 1) (default: chosen on the validation split by Youden's J)")
    p.add_argument("--distributed", action="store_true",
                   help="data-parallel over the ranks of `mpiexec -n N` (pip install 'minicnn[distributed]')")
    p.add_argument("--val-fraction", type=float, default=0.1,
                   help="validation carved from a folder's train/, in (0, 1) (default: %(default)s)")
    args = p.parse_args(argv)
    # this script's own options, checked before anything is written (argparse-style: exit 2)
    if args.threshold is not None and not 0.0 < args.threshold < 1.0:
        p.error(f"argument --threshold: must be between 0 and 1 (exclusive), got {args.threshold}")
    if not 0.0 < args.val_fraction < 1.0:
        p.error(f"argument --val-fraction: must be between 0 and 1 (exclusive), got {args.val_fraction}")
    if args.data is not None and not Path(args.data).expanduser().exists():
        p.error(f"argument --data: {Path(args.data).expanduser()} does not exist")
    if args.synthetic and args.data:
        p.error("argument --synthetic: not allowed with --data (train on the phantoms, or on your data)")
    rank = 0
    if args.distributed:  # one process per rank: rank 0 alone checks --out (and may delete a run in it)
        from minicnn import distributed
        comm = distributed.init()
        rank = comm.rank
        ok = False
        try:
            if rank == 0:
                args = cli.validate_args(p, args)
                ok = True
        finally:
            ok = comm.bcast_object(ok)
        if not ok:
            raise SystemExit(cli.EXIT_USAGE)  # rank 0 printed why
        args.out = Path(args.out)
    else:
        args = cli.validate_args(p, args)  # the common options, then the guard on --out's previous run
    return args, rank


# ---- the model: the tutorial's conv_block / dense_block, in minicnn layers -----------------
def conv_block(in_channels: int, filters: int, pool: bool = True) -> nn.Sequential:
    """Two separable 3x3 'same' convolutions with ReLU, batch norm, a 2x2 max-pool."""
    layers = [nn.SeparableConv2d(in_channels, filters, 3, padding="same"), nn.ReLU(),
              nn.SeparableConv2d(filters, filters, 3, padding="same"), nn.ReLU(),
              nn.BatchNorm2d(filters, eps=BN_EPS, momentum=BN_MOMENTUM)]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


def dense_block(in_features: int, units: int, dropout: float) -> nn.Sequential:
    """Dense layer with ReLU, batch norm, dropout."""
    return nn.Sequential(nn.Linear(in_features, units), nn.ReLU(),
                         nn.BatchNorm1d(units, eps=BN_EPS, momentum=BN_MOMENTUM), nn.Dropout(dropout))


def build_model(size: int) -> nn.Sequential:
    """(N, 1, size, size) X-rays -> (N, 1) probability of pneumonia."""
    # five 2x2 max-pools divide the side by 32; at 28 px the fifth would leave less than one
    # pixel (28 -> 14 -> 7 -> 3 -> 1), so that block keeps its 1x1 map and skips the pool
    last_pool = size >= 32
    side = size // 32 if last_pool else 1
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding="same"), nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding="same"), nn.ReLU(),
        nn.MaxPool2d(2),
        conv_block(16, 32),
        conv_block(32, 64),
        conv_block(64, 128),
        nn.Dropout(0.2),
        conv_block(128, 256, pool=last_pool),
        nn.Dropout(0.2),
        nn.Flatten(),                                   # (N, 256 * side * side)
        dense_block(256 * side * side, 512, 0.7),
        dense_block(512, 128, 0.5),
        dense_block(128, 64, 0.3),
        nn.Linear(64, 1), nn.Sigmoid(),
    )
    nn.init.keras_init_(model)  # Keras defaults: glorot-uniform kernels, zero biases
    model.input_shape = (1, size, size)
    return model


# ---- data helpers -------------------------------------------------------------------------
def banner(lines: list[str]) -> None:
    width = max(len(s) for s in lines) + 4
    print("\n" + "#" * width)
    for s in lines:
        print(f"# {s:<{width - 4}} #")
    print("#" * width + "\n", flush=True)


def make_transforms(size: int, native: int, train: bool) -> T.Compose:
    """uint8 HWC -> float32 CHW in [0, 1]; light affine augmentation for training."""
    steps = []
    if native != size:
        steps.append(T.Resize((size, size)))
    if train:
        steps.append(T.RandomAffine(degrees=10, translate=(0.08, 0.08), scale=(0.9, 1.1)))
    steps.append(T.ToArray())
    return T.Compose(steps)


# ---- main ---------------------------------------------------------------------------------
def main(argv=None) -> dict:
    args, rank = parse_args(argv)
    if rank:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (rank 0 alone prints, plots and writes)
    out = args.out
    minicnn.manual_seed(args.seed + rank)  # the same initial weights come from rank 0; dropout differs
    D.seed_transforms(args.seed)
    t_start = time.time()

    # ---- data: real X-rays if there are any (see minicnn.data.sources), else loud phantoms ----
    # A file or folder that exists but is wrong (damaged, not images, 3 classes, one class,
    # empty) is a DataError naming it: one line and exit status 1 (cli.run_main), never phantoms.
    found = D.pneumonia_splits(args.data, args.size, synthetic=args.synthetic, fallback=not args.no_fallback,
                               val_fraction=args.val_fraction, seed=args.seed)
    if found.fallback_reason is not None:
        banner(["NO REAL DATA FOUND - training on SYNTHETIC chest phantoms.",
                "Its numbers say NOTHING about real chest X-rays.", ""] + REAL_DATA_HELP.splitlines()
               + ["", "(reason:"] + textwrap.wrap(found.fallback_reason + ")", 96))
    dataset_name = found.name
    for ds in found.datasets.values():  # binary labels, both classes present, not empty
        D.check_labels(ds, num_classes=2, class_names=CLASSES)
    splits = {k: D.balanced_subset(v, args.limit, args.seed) for k, v in found.datasets.items()}
    native = int(np.asarray(splits["train"][0][0]).shape[0])  # the images' own side in pixels
    size = args.size or native
    if size not in SIZES:
        raise D.DataError(f"{found.name}: images are {native}px, which this model does not take; "
                          f"pass --size with one of {', '.join(map(str, SIZES))}")
    targets = {k: D.get_targets(v) for k, v in splits.items()}
    counts = {k: np.bincount(t, minlength=2) for k, t in targets.items()}
    print(f"dataset: {dataset_name}; {size}px; " + ", ".join(
        f"{k} {len(v)} ({counts[k][0]} normal / {counts[k][1]} pneumonia)" for k, v in splits.items()))

    train_ds = D.WithTransform(splits["train"], make_transforms(size, native, train=True))
    eval_tf = make_transforms(size, native, train=False)
    val_ds, test_ds = D.WithTransform(splits["val"], eval_tf), D.WithTransform(splits["test"], eval_tf)
    loader = dict(batch_size=args.batch_size, num_workers=args.workers, seed=args.seed + rank)
    shard = None
    if args.distributed:
        from minicnn import distributed
        shard = distributed.DistributedSampler(train_ds, seed=args.seed)
    train_loader = D.DataLoader(train_ds, shuffle=shard is None, sampler=shard, **loader)
    val_loader = D.DataLoader(val_ds, **loader)
    test_loader = D.DataLoader(test_ds, **loader)

    # a look at the data before training
    if rank == 0:
        plots.plot_class_distribution(targets, CLASSES, out / "class_distribution.png", dataset=dataset_name)
        sample = [splits["train"][i] for i in range(min(16, len(splits["train"])))]
        plots.plot_image_grid(np.stack([np.asarray(s[0]) for s in sample]), [s[1] for s in sample], CLASSES,
                              out / "samples.png", title="training samples", dataset=dataset_name)
        xb, yb = next(iter(train_loader))
        plots.plot_augmented_batch(xb[:16], yb[:16], CLASSES, out / "augmented_batch.png", dataset=dataset_name)

    # ---- the model ----
    model = build_model(size)
    if args.weights:  # start from earlier weights (minicnn .npz, safetensors or a PyTorch .pth)
        print(f"initial weights from {args.weights}: {load_pretrained(model, args.weights)}")
    model.summary()

    # ---- training, as in the tutorial: class weights, Adam, plus a cosine schedule ----
    cw = D.class_weights(targets["train"])
    print("class weights (Keras formula n / (2 n_c)):", {CLASSES[k]: round(v, 3) for k, v in cw.items()})
    opt = optim.Adam(model.parameters(), lr=args.lr, eps=1e-7)  # Keras' Adam epsilon
    # T_max is this run's --epochs: a resumed run given more epochs stretches the cosine over them
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs)
    # Model selection by validation AUC: threshold-free, so it is not fooled by the calibration
    # drift that batch norm after heavy dropout causes between train and eval mode.
    best = ModelCheckpoint(str(out / "best.npz"), monitor="val_auc", restore_best_weights=True)
    early = EarlyStopping(monitor="val_auc", patience=max(5, args.epochs // 3))
    # Ctrl-C: fit keeps the last complete epoch in state.npz and re-raises; cli.run_main then
    # prints the command that resumes and exits 130 (no final metrics or plots below).
    history = fit(model, train_loader, val_loader, loss_fn=nn.BCELoss(), optimizer=opt, epochs=args.epochs,
                  scheduler=sched, class_weight=cw, callbacks=[best, early], device=args.device,
                  checkpoint=str(out / "state.npz"), resume=cli.resume_path(args), distributed=args.distributed)
    train_seconds = time.time() - t_start
    if rank:
        return {}  # rank 0 evaluates, plots and writes metrics.json

    # ---- evaluation on the TEST split (never used for model selection) ----
    prob_val = predict_proba(model, val_loader, device=args.device)
    prob = predict_proba(model, test_loader, device=args.device)
    y = targets["test"]
    # The decision threshold is chosen on VALIDATION (Youden's J), then applied to test as is;
    # every number and every plot below calls "pneumonia" by this one rule: P(pneumonia) >= thr.
    thr = best_threshold(targets["val"], prob_val, criterion="youden") if args.threshold is None else args.threshold
    if np.ptp(prob) < 1e-6:  # every image gets the same answer: AUC 0.5 and a flat Grad-CAM follow
        print(f"warning: the model gives every test image P(pneumonia) = {prob.mean():.4f}; it has not learned "
              f"yet (after a few steps, eval-mode batch norm still uses its initial statistics): train longer")
    m = binary_metrics(y, prob, threshold=thr)
    m05 = binary_metrics(y, prob, threshold=0.5)
    cm = confusion_matrix(y, (prob >= thr).astype(int), num_classes=2)

    # ---- plots of the results ----
    batches = []
    for xb, _ in test_loader:  # the first 16 test images, as the model saw them
        batches.append(xb)
        if sum(len(b) for b in batches) >= 16:
            break
    imgs = np.concatenate(batches)[:16]
    k = min(6, len(imgs))
    plots.plot_history(dict(history), out / "training_curves.png", dataset=dataset_name)
    plots.plot_confusion_matrix(cm, CLASSES, out / "confusion_matrix.png", dataset=dataset_name)
    plots.plot_roc_curve(y, prob, out / "roc_curve.png", auc=m["auc"], threshold=thr, dataset=dataset_name)
    plots.plot_predictions(imgs, y[:len(imgs)], None, CLASSES, out / "predictions.png", probs=prob[:len(imgs)],
                           threshold=thr, dataset=dataset_name, title="Test predictions")
    plots.plot_probability_bars(imgs[:k], prob[:k], CLASSES, out / "probabilities.png", y_true=y[:k],
                                threshold=thr, dataset=dataset_name)
    try:
        from minicnn.gradcam import grad_cam
        few = imgs[:8]
        heat = grad_cam(model, minicnn.tensor(few))  # the last conv layer with a map >= 7x7
        plots.plot_gradcam(few, heat, out / "gradcam.png", titles=[f"{CLASSES[a]} / P(pneumonia)={p:.2f}"
                                                                   for a, p in zip(y[:len(few)], prob[:len(few)])],
                           dataset=dataset_name)
    except Exception as e:  # Grad-CAM is a bonus; never lose the run's results over it
        print(f"warning: Grad-CAM failed: {e}")

    # ---- the run's record: OUT/metrics.json (strict JSON: an undefined metric is null) ----
    keys = ("accuracy", "precision", "recall", "specificity", "f1", "auc")
    result = {
        "dataset": dataset_name,
        "synthetic": found.synthetic,
        "size": size,
        "epochs_run": len(history.get("loss", [])),
        "best_epoch": None if best.best_epoch is None else best.best_epoch + 1,
        "threshold": thr,
        "threshold_source": "validation (Youden's J)" if args.threshold is None else "--threshold",
        "test": {k: m[k] for k in keys},
        "test_at_0.5": {k: m05[k] for k in keys},
        "test_confusion_matrix": cm.tolist(),
        "n": {k: int(len(v)) for k, v in splits.items()},
        "history": {k: list(v) for k, v in dict(history).items()},
        "seconds": round(time.time() - t_start, 1),
        "train_seconds": round(train_seconds, 1),
    }
    cli.write_run_summary(out, hyper=args, metrics=result["test"], **result)
    cli.print_results({"threshold": thr, "threshold from": result["threshold_source"], "test": result["test"],
                       "confusion (true x predicted)": cm},
                      title=f"TEST ({len(y)} images, {dataset_name})", out=out)
    return result


if __name__ == "__main__":
    cli.run_main(main)
