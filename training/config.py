"""Command-line flags -> TrainConfig: every knob of a training run, saved in the model card.

A run is reproducible from its card: the same config, data and seed give the same model up to the
non-determinism of the backend's kernels.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_CACHE_DIR = Path.home() / ".cache" / "digitserve"
AUGMENTATION_FLAGS = (
    "elastic",
    "noise",
    "coarse-dropout",
    "brightness-contrast",
    "inversion",
    "rotation",
    "shift",
    "zoom",
)


class StaticAugmentConfig(BaseModel):
    """Offline augmentation (albumentations), applied once to make `copies_per_image` extra copies."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    copies_per_image: int = Field(2, ge=0, le=10)
    enable_elastic: bool = True
    enable_noise: bool = True
    enable_coarse_dropout: bool = True
    enable_brightness_contrast: bool = True
    enable_inversion: bool = True
    # Serving fixes polarity before the model, so inverted digits are rare at inference; a few
    # teach robustness to a polarity mistake without spending much capacity on them.
    inversion_probability: float = Field(0.05, ge=0.0, le=1.0)


class RealtimeAugmentConfig(BaseModel):
    """Online augmentation (Keras preprocessing layers), re-drawn for every batch."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enable_rotation: bool = True
    rotation_degrees: float = Field(10.0, ge=0.0, le=45.0)
    enable_shift: bool = True
    shift_fraction: float = Field(0.1, ge=0.0, le=0.3)
    enable_zoom: bool = True
    zoom_fraction: float = Field(0.1, ge=0.0, le=0.3)


class TrainConfig(BaseModel):
    """Everything `python -m training.run` needs; defaults are the shipped model's recipe."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    datasets: tuple[str, ...] = Field(("mnist", "usps"), min_length=1)
    cache_dir: Path = DEFAULT_CACHE_DIR
    output_dir: Path = Path("models/digits")
    # Checkpoints and plots of each run; large, never committed (models/ holds only exported versions).
    runs_dir: Path = Path("runs")
    version: int | None = Field(None, ge=1, description="model version; None = one above the highest")
    allow_download: bool = True

    epochs: int = Field(40, ge=1, le=1000)
    batch_size: int = Field(384, ge=1, le=65536)
    learning_rate: float = Field(1e-3, gt=0.0, le=1.0)
    gradient_clip_norm: float = Field(1.0, gt=0.0)
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    dense_l2: float = Field(1e-4, ge=0.0)
    seed: int = Field(42, ge=0)
    # Seeds the augmentation and batch order separately from the split, so that a fine-tuning run
    # keeps the same validation images but does not replay the augmented stream its start
    # checkpoint was trained on. None: the same as `seed`.
    augment_seed: int | None = Field(None, ge=0)
    validation_fraction: float = Field(0.1, gt=0.0, lt=1.0)
    early_stopping_patience_epochs: int = Field(8, ge=1)
    reduce_lr_patience_epochs: int = Field(3, ge=1)
    reduce_lr_factor: float = Field(0.5, gt=0.0, lt=1.0)
    min_learning_rate: float = Field(1e-5, gt=0.0)

    # Stochastic weight averaging over the last N epochs (0 = off), adopted only if it lowers the
    # validation loss; run it with early stopping patience above N so those epochs happen.
    average_last_epochs: int = Field(0, ge=0)
    static_augment: StaticAugmentConfig = StaticAugmentConfig()
    realtime_augment: RealtimeAugmentConfig = RealtimeAugmentConfig()
    # Fine-tuning: start from a checkpoint's weights (a .keras file of this architecture) instead of
    # random ones, e.g. to continue a finished run with fresh augmented copies and a lower learning rate.
    # Several checkpoints start from the mean of their weights (a "uniform model soup", Wortsman et al.
    # 2022): fine-tunes of one parent stay in one basin, and their mean usually generalizes better
    # than any of them, at no cost at inference (still one model of the same architecture).
    initial_weights: tuple[Path, ...] = ()
    quick: bool = False
    # With quick, each source is cut to this many images per split: enough to exercise every step.
    quick_samples_per_split: int = Field(600, ge=20)

    @property
    def effective_augment_seed(self) -> int:
        """The seed of augmentation, batch order and weight initialization."""
        return self.seed if self.augment_seed is None else self.augment_seed

    @field_validator("datasets")
    @classmethod
    def _datasets_unique(cls, datasets: tuple[str, ...]) -> tuple[str, ...]:
        names = [spec.split("=", 1)[0] for spec in datasets]
        duplicates = sorted({name for name in names if names.count(name) > 1 and name != "folder"})
        if duplicates:
            raise ValueError(f"dataset given more than once: {', '.join(duplicates)}")
        return datasets


def parse_args(argv: list[str] | None) -> TrainConfig:
    """Command-line flags -> a validated TrainConfig (argparse exits with status 2 on bad flags)."""
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(
        prog="python -m training.run", description="Train, export and evaluate a digit model version."
    )
    add = parser.add_argument
    add(
        "--dataset",
        action="append",
        dest="datasets",
        metavar="NAME[=PATH[:PATH...]]",
        help="mnist, emnist-digits, usps or folder; repeatable; PATH: local files (default: mnist, usps)",
    )
    add(
        "--data-dir",
        "--cache-dir",
        dest="cache_dir",
        type=Path,
        default=DEFAULT_CACHE_DIR,
        help="download cache, and where datasets given without PATH are looked for (default: %(default)s)",
    )
    add("--output-dir", type=Path, default=defaults.output_dir, help="model folder (default: %(default)s)")
    add(
        "--runs-dir",
        type=Path,
        default=defaults.runs_dir,
        help="checkpoints and plots (default: %(default)s)",
    )
    add("--version", type=int, default=None, help="version to write (default: one above the highest)")
    add(
        "--epochs",
        type=int,
        default=defaults.epochs,
        help="most epochs; early stopping may end sooner (default: %(default)s)",
    )
    add("--batch-size", type=int, default=defaults.batch_size, help="images per step (default: %(default)s)")
    add(
        "--learning-rate",
        type=float,
        default=defaults.learning_rate,
        help="Adam learning rate (default: %(default)s)",
    )
    add(
        "--label-smoothing",
        type=float,
        default=defaults.label_smoothing,
        help="0 turns it off (default: %(default)s)",
    )
    add(
        "--seed",
        type=int,
        default=defaults.seed,
        help="seeds the split, augmentation and weights (default: %(default)s)",
    )
    add(
        "--static-copies",
        type=int,
        default=StaticAugmentConfig().copies_per_image,
        help="augmented copies of each training image made before training (default: %(default)s)",
    )
    add(
        "--average-last-epochs",
        type=int,
        default=0,
        help="average the weights of the last N epochs if that validates better (default: off)",
    )
    add(
        "--initial-weights",
        type=Path,
        action="append",
        metavar="CHECKPOINT",
        help="fine-tune: start from this .keras checkpoint's weights; repeated, from the mean of the "
        "checkpoints' weights (default: random initialization)",
    )
    add(
        "--augment-seed",
        type=int,
        default=None,
        help="seed of augmentation and batch order (default: --seed)",
    )
    add("--no-download", action="store_true", help="never download; fail if files are missing")
    add("--quick", action="store_true", help="a few hundred images and one epoch: a smoke test of every step")
    for flag in AUGMENTATION_FLAGS:
        add(f"--no-{flag}", action="store_true", help=f"turn off the {flag.replace('-', ' ')} augmentation")
    args = parser.parse_args(argv)
    try:
        return _config_from_args(args)
    except ValueError as error:  # pydantic's ValidationError is a ValueError
        parser.error(str(error))


def _config_from_args(args: argparse.Namespace) -> TrainConfig:
    static = StaticAugmentConfig(
        copies_per_image=min(args.static_copies, 1) if args.quick else args.static_copies,
        enable_elastic=not args.no_elastic,
        enable_noise=not args.no_noise,
        enable_coarse_dropout=not args.no_coarse_dropout,
        enable_brightness_contrast=not args.no_brightness_contrast,
        enable_inversion=not args.no_inversion,
    )
    realtime = RealtimeAugmentConfig(
        enable_rotation=not args.no_rotation, enable_shift=not args.no_shift, enable_zoom=not args.no_zoom
    )
    overrides = {
        key: getattr(args, key)
        for key in (
            "cache_dir",
            "output_dir",
            "runs_dir",
            "version",
            "batch_size",
            "learning_rate",
            "label_smoothing",
            "seed",
            "average_last_epochs",
            "augment_seed",
        )
    }
    return TrainConfig(
        datasets=tuple(args.datasets or TrainConfig().datasets),
        allow_download=not args.no_download,
        epochs=1 if args.quick else args.epochs,
        static_augment=static,
        realtime_augment=realtime,
        quick=args.quick,
        initial_weights=tuple(args.initial_weights or ()),
        **overrides,
    )
