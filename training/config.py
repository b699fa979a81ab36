"""Command-line flags -> TrainConfig: every knob of a training run, saved in the model card.

TrainConfig is the one definition of every option: `python -m training.run` gets one flag per field,
with the field's default and its description as the help (training/cli.py). A run is reproducible from
its card: the same config, data and seed give the same model up to the non-determinism of the
backend's kernels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from training.cli import Flag, ModelArgumentParser

DEFAULT_CACHE_DIR = Path.home() / ".cache" / "digitserve"


class StaticAugmentConfig(BaseModel):
    """Offline augmentation (albumentations), applied once to make `copies_per_image` extra copies."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    copies_per_image: Annotated[int, Flag("--static-copies")] = Field(
        2, ge=0, le=10, description="augmented copies of each training image made before training"
    )
    enable_elastic: bool = Field(True, description="the elastic distortion augmentation")
    enable_noise: bool = Field(True, description="the Gaussian noise augmentation")
    enable_coarse_dropout: bool = Field(True, description="the coarse dropout (cut-out holes) augmentation")
    enable_brightness_contrast: bool = Field(True, description="the brightness and contrast augmentation")
    enable_inversion: bool = Field(True, description="the inversion (black ink on white) augmentation")
    # Serving fixes polarity before the model, so inverted digits are rare at inference; a few
    # teach robustness to a polarity mistake without spending much capacity on them.
    inversion_probability: float = Field(
        0.05, ge=0.0, le=1.0, description="probability that an augmented copy is inverted"
    )


class RealtimeAugmentConfig(BaseModel):
    """Online augmentation (Keras preprocessing layers), re-drawn for every batch."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enable_rotation: bool = Field(True, description="the random rotation augmentation")
    rotation_degrees: float = Field(10.0, ge=0.0, le=45.0, description="largest rotation either way")
    enable_shift: bool = Field(True, description="the random shift augmentation")
    shift_fraction: float = Field(
        0.1, ge=0.0, le=0.3, description="largest shift either way, as a fraction of the image side"
    )
    enable_zoom: bool = Field(True, description="the random zoom augmentation")
    zoom_fraction: float = Field(0.1, ge=0.0, le=0.3, description="largest zoom in or out, as a fraction")


class TrainConfig(BaseModel):
    """Everything `python -m training.run` needs; defaults are the shipped model's recipe."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    datasets: Annotated[tuple[str, ...], Flag("--dataset", metavar="NAME[=PATH[:PATH...]]")] = Field(
        ("mnist", "usps"),
        min_length=1,
        description="mnist, emnist-digits, usps, cvl or folder; PATH: local files",
    )
    cache_dir: Annotated[Path, Flag("--data-dir", "--cache-dir")] = Field(
        DEFAULT_CACHE_DIR,
        description="download cache, and where datasets given without PATH are looked for",
    )
    output_dir: Path = Field(Path("models/digits"), description="model folder")
    # Checkpoints and plots of each run; large, never committed (models/ holds only exported versions).
    runs_dir: Path = Field(Path("runs"), description="checkpoints and plots")
    version: int | None = Field(None, ge=1, description="version to write; none: one above the highest")
    allow_download: bool = Field(
        True, description="downloads of dataset files not found in the given paths or the cache"
    )

    epochs: int = Field(40, ge=1, le=1000, description="most epochs; early stopping may end sooner")
    batch_size: int = Field(384, ge=1, le=65536, description="images per step")
    learning_rate: float = Field(1e-3, gt=0.0, le=1.0, description="Adam learning rate")
    gradient_clip_norm: float = Field(1.0, gt=0.0, description="largest gradient norm, above it scaled down")
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0, description="label smoothing; 0 turns it off")
    dense_l2: float = Field(1e-4, ge=0.0, description="L2 penalty on the dense layer's weights")
    seed: int = Field(42, ge=0, description="seeds the split, augmentation and weights")
    # Seeds the augmentation and batch order separately from the split, so that a fine-tuning run
    # keeps the same validation images but does not replay the augmented stream its start
    # checkpoint was trained on.
    augment_seed: int | None = Field(
        None, ge=0, description="seed of augmentation, batch order and weights; none: --seed"
    )
    validation_fraction: float = Field(
        0.1, gt=0.0, lt=1.0, description="share of the pooled training images held out for validation"
    )
    early_stopping_patience_epochs: int = Field(
        8, ge=1, description="epochs without a lower validation loss before training stops"
    )
    reduce_lr_patience_epochs: int = Field(
        3, ge=1, description="epochs without a lower validation loss before the learning rate drops"
    )
    reduce_lr_factor: float = Field(0.5, gt=0.0, lt=1.0, description="factor of each learning-rate drop")
    min_learning_rate: float = Field(1e-5, gt=0.0, description="lowest learning rate of the drops")

    # Stochastic weight averaging; run it with early stopping patience above N so those epochs happen.
    average_last_epochs: int = Field(
        0, ge=0, description="average the weights of the last N epochs, kept if that validates best; 0: off"
    )
    static_augment: StaticAugmentConfig = Field(
        StaticAugmentConfig(), description="static augmentation (copies made once, before training)"
    )
    realtime_augment: RealtimeAugmentConfig = Field(
        RealtimeAugmentConfig(), description="real-time augmentation (redrawn for every batch)"
    )
    # Fine-tuning: start from a checkpoint's weights (a .keras file of this architecture) instead of
    # random ones, e.g. to continue a finished run with fresh augmented copies and a lower learning rate.
    # Several checkpoints start from the mean of their weights (a "uniform model soup", Wortsman et al.
    # 2022): fine-tunes of one parent stay in one basin, and their mean usually generalizes better
    # than any of them, at no cost at inference (still one model of the same architecture).
    initial_weights: Annotated[tuple[Path, ...], Flag(metavar="CHECKPOINT")] = Field(
        (),
        description="fine-tune: start from this .keras checkpoint's weights (none: random ones); given "
        "several times, from the mean of the checkpoints' weights",
    )
    quick: bool = Field(
        False,
        description="a few hundred images, one epoch and at most one static copy: a smoke test of every step",
    )
    quick_samples_per_split: int = Field(
        600, ge=20, description="with --quick, images kept of each source's train and test split"
    )

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


def build_parser() -> ModelArgumentParser[TrainConfig]:
    """The CLI of `python -m training.run`: one flag per TrainConfig field, nested ones included."""
    return ModelArgumentParser(
        TrainConfig,
        prog="python -m training.run",
        description="Train, export and evaluate a digit model version.",
    )


def parse_args(argv: list[str] | None) -> TrainConfig:
    """Command-line flags -> a validated TrainConfig; a bad flag or value exits with status 2, naming
    the flag."""
    return build_parser().parse_model(argv, adjust=_shrink_for_quick)


def _shrink_for_quick(values: dict[str, Any]) -> dict[str, Any]:
    """--quick overrides --epochs and caps --static-copies, whatever they say (even out of range)."""
    if values["quick"]:
        values["epochs"] = 1
        static = values["static_augment"]
        static["copies_per_image"] = min(static["copies_per_image"], 1)
    return values
