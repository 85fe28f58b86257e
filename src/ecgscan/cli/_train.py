"""``ecgscan train ...``: train the shipped models (needs the ``train`` extra, i.e. PyTorch).

Each model family has one subcommand here that calls its trainer in :mod:`ecgscan.train`.
"""

from __future__ import annotations

from pathlib import Path

import typer

from ._app import app, fail

train_app = typer.Typer(
    help="Train the models (needs `pip install ecgscan[train]`).", no_args_is_help=True
)
app.add_typer(train_app, name="train")


def _require_torch() -> None:
    from ..errors import EcgscanError

    try:
        import torch  # noqa: F401
    except ImportError:
        raise EcgscanError(
            "training needs PyTorch; install it with `pip install ecgscan[train]`"
        ) from None


# ------------------------------------------------------------------------------- classifier
@train_app.command("classifier")
def train_classifier_command(
    model: str = typer.Option("signal", "--model", "-m", help="Registered classifier name."),
    ptbxl: Path = typer.Option(..., "--ptbxl", help="Unpacked PTB-XL folder."),
    ptbxl_plus: Path | None = typer.Option(
        None, "--ptbxl-plus", help="PTB-XL+ folder (needed for the Acute MI label)."
    ),
    output: Path = typer.Option(
        Path("runs/classifier"), "-o", "--output", help="Folder for checkpoint, ONNX and card."
    ),
    epochs: int = typer.Option(11, "--epochs", help="Training epochs (one-cycle schedule)."),
    batch_size: int = typer.Option(64, "--batch-size"),
    lr: float = typer.Option(3e-3, "--lr", help="Peak learning rate (AdamW)."),
    loss: str = typer.Option("bce", "--loss", help="bce, weighted_bce, focal or asl."),
    activation: str | None = typer.Option(
        None, "--activation", help="sigmoid or gev (default: the model's)."
    ),
    thresholds: str = typer.Option(
        "f1", "--thresholds", help="Per-class threshold criterion: f1 or youden."
    ),
    train_folds: str = typer.Option("1-7", "--train-folds", help="e.g. 1-7 or 1,2,3."),
    val_folds: str = typer.Option(
        "8",
        "--val-folds",
        help="Folds for epoch and thresholds; 'none' for a signal model fine-tuned or given "
        "--thresholds-from (the last epoch is kept).",
    ),
    finetune_from: Path | None = typer.Option(
        None,
        "--finetune-from",
        help="Signal models: the output folder of an earlier run of the same model; training "
        "starts from its best weights, input scaling and architecture.",
    ),
    thresholds_from: Path | None = typer.Option(
        None,
        "--thresholds-from",
        help="Signal models without validation folds: keep this model's (.onnx) thresholds; "
        "default with --finetune-from: that run's.",
    ),
    no_augment: bool = typer.Option(False, "--no-augment", help="Train on clean signals only."),
    limit: int | None = typer.Option(
        None, "--limit", help="Use only the first N records of each split (smoke tests)."
    ),
    cache_dir: Path | None = typer.Option(
        Path("runs/cache"), "--cache-dir", help="Where the PTB-XL signal cache (.npy) is kept."
    ),
    threads: int = typer.Option(1, "--threads", help="CPU threads for PyTorch."),
    seed: int = typer.Option(0, "--seed"),
    max_minutes: float | None = typer.Option(
        None, "--max-minutes", help="Stop training after this wall-clock time."
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue from the last checkpoint."),
    member: list[str] = typer.Option(
        [],
        "--member",
        help="Ensemble member NAME or NAME=FILE.onnx (repeat; default: the registry's).",
    ),
    pages_train: int = typer.Option(4500, "--pages-train", help="Image models: training pages."),
    pages_val: int = typer.Option(500, "--pages-val", help="Image models: validation pages."),
    render_minutes: float | None = typer.Option(
        None, "--render-minutes", help="Image models: stop rendering pages after this time."
    ),
    digitized: Path | None = typer.Option(
        None,
        "--digitized",
        help="Signal models: folder of digitized copies of training records "
        "(`ecgscan train copies`).",
    ),
    p_digitized: float = typer.Option(
        0.5, "--p-digitized", help="Probability that a record with a copy is replaced by it."
    ),
    refit_rate: Path | None = typer.Option(
        None,
        "--refit-rate",
        help="Ensemble: refit only the rate rule (BRADY, TACHY) of this ensemble.json on the "
        "validation folds, keeping everything else.",
    ),
    fit_trees: Path | None = typer.Option(
        None,
        "--fit-trees",
        help="Ensemble: fit beat trees on the training folds and stack them onto this "
        "ensemble.json on the validation folds (records its members never saw: --val-folds 9 "
        "for the shipped ones), keeping everything else. Needs scikit-learn (the train extra).",
    ),
) -> None:
    """Train a classifier on PTB-XL and export ONNX + a model card (or fit the ensemble)."""
    _require_torch()
    from ..train.classifier import TrainConfig, train_classifier

    config = TrainConfig(
        model=model,
        ptbxl=str(ptbxl),
        ptbxl_plus=None if ptbxl_plus is None else str(ptbxl_plus),
        output=str(output),
        train_folds=_folds(train_folds, "--train-folds"),
        val_folds=() if val_folds.strip().lower() == "none" else _folds(val_folds, "--val-folds"),
        finetune_from=None if finetune_from is None else str(finetune_from),
        thresholds_from=None if thresholds_from is None else str(thresholds_from),
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        loss=loss,
        activation=activation,
        threshold_method=thresholds,
        augment=not no_augment,
        limit=limit,
        cache_dir=None if cache_dir is None else str(cache_dir),
        threads=threads,
        seed=seed,
        max_minutes=max_minutes,
        members=tuple(member),
        pages_train=pages_train,
        pages_val=pages_val,
        render_minutes=render_minutes,
        digitized=None if digitized is None else str(digitized),
        p_digitized=p_digitized,
        refit_rate=None if refit_rate is None else str(refit_rate),
        fit_trees=None if fit_trees is None else str(fit_trees),
    )
    train_classifier(config, resume=resume, log=typer.echo)


# --------------------------------------------------------------------------- digitized copies
@train_app.command("copies")
def train_copies_command(
    ptbxl: Path = typer.Option(..., "--ptbxl", help="Unpacked PTB-XL folder."),
    output: Path = typer.Option(
        Path("runs/copies"), "-o", "--output", help="Folder of the copies (a resumable cache)."
    ),
    folds: str = typer.Option("1-8", "--folds", help="Folds to draw records from, e.g. 1-8."),
    n: int = typer.Option(8000, "-n", "--records", help="Records drawn (at random, seed 0)."),
    shard: str = typer.Option(
        "0/1", "--shard", help="K/N: this process makes every N-th record from the K-th."
    ),
    minutes: float | None = typer.Option(None, "--minutes", help="Stop after this time."),
) -> None:
    """Render training records in random styles and digitize them back (for --digitized).

    The copies carry the digitizer's real errors; `train classifier --digitized FOLDER` trains
    the signal models on them next to the synthetic distortions. About 1.2 s per record on one
    core; run several shards side by side (--shard 0/2, --shard 1/2) and stop and resume at
    will.
    """
    import numpy as np

    from ..data.ptbxl import PTBXL
    from ..train._common import digitized_copies

    k, _, of = shard.partition("/")
    try:
        k_i, of_i = int(k), int(of)
    except ValueError:
        raise fail(f"--shard must look like 0/2, got {shard!r}") from None
    if not 0 <= k_i < of_i or n < 1:
        raise fail("--shard K/N needs 0 <= K < N, and --records must be positive")
    _require_ptbxl(ptbxl)
    ids = np.asarray(PTBXL(ptbxl).ecg_ids(folds=list(_folds(folds, "--folds")), fs=100))
    ids = np.random.default_rng(0).permutation(ids)[:n][k_i::of_i]
    _, done = digitized_copies(ptbxl, ids, cache_dir=output, max_minutes=minutes, verbose=True)
    typer.echo(f"{done} of {len(ids)} records digitized into {output}")


def _require_ptbxl(ptbxl: Path) -> None:
    if not (ptbxl / "ptbxl_database.csv").is_file():
        raise fail(f"--ptbxl {str(ptbxl)!r} is not a PTB-XL folder (no ptbxl_database.csv)")


def _folds(text: str, option: str) -> tuple[int, ...]:
    from ..errors import EcgscanError

    out: list[int] = []
    try:
        for part in text.split(","):
            lo, _, hi = part.strip().partition("-")
            out.extend(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        raise EcgscanError(f"{option} must look like '1-7' or '1,2,3', got {text!r}") from None
    if not out or any(not 1 <= f <= 10 for f in out):
        raise EcgscanError(f"{option} must name PTB-XL folds 1-10, got {text!r}")
    return tuple(out)


# -------------------------------------------------------------------------------- digitizer
@train_app.command("digitizer")
def train_digitizer_command(
    ptbxl: Path = typer.Option(..., "--ptbxl", help="Unpacked PTB-XL folder."),
    output: Path = typer.Option(
        Path("runs/digitizer"), "-o", "--output", help="Folder for checkpoints and the ONNX model."
    ),
    folds: str = typer.Option("1-8", "--folds", help="Training folds, e.g. 1-8 or 1,2,3."),
    minutes: float = typer.Option(45.0, "--minutes", help="Wall-clock budget of this run."),
    threads: int = typer.Option(1, "--threads", help="CPU threads for PyTorch."),
    width: int = typer.Option(12, "--width", help="U-Net base width (channels)."),
    batch_size: int = typer.Option(12, "--batch-size", help="Crops per batch."),
    seed: int = typer.Option(0, "--seed", help="Seed of the page renderer and the model."),
    resume: bool = typer.Option(
        True, "--resume/--no-resume", help="Continue from the checkpoint in the output folder."
    ),
) -> None:
    """Train the trace-segmentation U-Net on pages rendered on the fly from PTB-XL."""
    _require_torch()
    if minutes <= 0 or threads < 1 or width < 1 or batch_size < 1:
        raise fail("--minutes, --threads, --width and --batch-size must be positive")
    _require_ptbxl(ptbxl)
    from ..train.digitizer import TrainConfig, train

    cfg = TrainConfig(
        ptbxl=str(ptbxl),
        output=str(output),
        folds=_folds(folds, "--folds"),
        minutes=minutes,
        threads=threads,
        width=width,
        batch_size=batch_size,
        seed=seed,
    )
    onnx_path = train(cfg, resume=resume)
    typer.echo(f"wrote {onnx_path}")
