"""Command-line flags -> TrainConfig: every knob of a training run, saved in the model card.

TrainConfig is the one definition of every option: `python -m training.run` gets one flag per field,
with the field's default and its description as the help (training/cli.py). A run is reproducible from
its card: the same config, data and seed give the same model up to the non-determinism of the
backend's kernels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from training.cli import Flag, ModelArgumentParser

DEFAULT_CACHE_DIR = Path.home() / ".cache" / "digitserve"
# Beyond this a source would be memorized rather than learned from; a typo (cvl=30) is refused.
MAX_SOURCE_REPEATS = 10


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
    # Style transforms for real scans and photos (CVL's European hands): marker or pencil strokes,
    # low-resolution binarized scans, slanted writing.
    enable_stroke_width: bool = Field(
        True, description="the stroke width augmentation (thicker marker or thinner pencil strokes)"
    )
    stroke_width_probability: float = Field(
        0.3, ge=0.0, le=1.0, description="probability that a copy's strokes are thickened or thinned"
    )
    stroke_width_max_kernel_pixels: int = Field(
        3,
        ge=2,
        le=4,
        description="largest side of the square kernel that thickens strokes (thinning takes one pixel)",
    )
    enable_low_resolution_scan: bool = Field(
        True, description="the low-resolution binarized scan augmentation"
    )
    low_resolution_scan_probability: float = Field(
        0.2, ge=0.0, le=1.0, description="probability that a copy becomes a low-resolution binarized scan"
    )
    low_resolution_scan_min_side_pixels: int = Field(
        10, ge=6, le=27, description="smallest side the image is shrunk to before it is binarized"
    )
    low_resolution_scan_max_side_pixels: int = Field(
        16, ge=6, le=27, description="largest side the image is shrunk to before it is binarized"
    )
    enable_slant: bool = Field(True, description="the slant (horizontal shear) augmentation")
    slant_probability: float = Field(0.3, ge=0.0, le=1.0, description="probability that a copy is slanted")
    # At 20 degrees the top and bottom rows of a centered 20-pixel digit move by tan(20) * 10 = 3.6
    # pixels, still inside the 4-pixel margin of the 28x28 field.
    slant_degrees: float = Field(15.0, ge=0.0, le=20.0, description="largest slant either way")

    @model_validator(mode="after")
    def _low_resolution_sides_ordered(self) -> StaticAugmentConfig:
        if self.low_resolution_scan_min_side_pixels > self.low_resolution_scan_max_side_pixels:
            raise ValueError(
                "--low-resolution-scan-min-side-pixels is above --low-resolution-scan-max-side-pixels"
            )
        return self


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
    # A small source of the hands that matter most (CVL's 67 writers next to MNIST's 60,000 digits) is
    # seen more often without being distorted more; validation and test images are never repeated.
    source_repeats: Annotated[tuple[str, ...], Flag("--repeat", metavar="NAME=TIMES")] = Field(
        (),
        description="a dataset's training images TIMES times in each epoch (e.g. cvl=3); others: once",
    )
    cache_dir: Annotated[Path, Flag("--data-dir", "--cache-dir")] = Field(
        DEFAULT_CACHE_DIR,
        description="download cache, and where datasets given without PATH are looked for",
    )
    # A run never writes where the service reads unless told to: its model stays in its run folder
    # until promoted (this flag, or `python -m training.promote RUN`).
    output_dir: Path | None = Field(
        None,
        description="served model folder to promote the exported model into as its next version (e.g. "
        "models/digits); none: it stays in the run folder (python -m training.promote RUN promotes it)",
    )
    # Checkpoints, plots and the exported model of each run; never committed.
    runs_dir: Path = Field(Path("runs"), description="folder of the run folders")
    run_name: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="the run's folder name in --runs-dir; none: the UTC start time (with -quick for --quick)",
    )
    version: int | None = Field(None, ge=1, description="version to promote to; none: one above the highest")
    allow_smoke_test: Annotated[bool, Flag("--allow-smoke-test")] = Field(
        False, description="let --quick promote into --output-dir (the service refuses such a model)"
    )
    allow_download: bool = Field(
        True, description="downloads of dataset files not found in the given paths or the cache"
    )

    epochs: int = Field(40, ge=1, le=1000, description="most epochs; early stopping may end sooner")
    batch_size: int = Field(384, ge=1, le=65536, description="images per step")
    learning_rate: float = Field(1e-3, gt=0.0, le=1.0, description="Adam learning rate")
    gradient_clip_norm: float = Field(1.0, gt=0.0, description="largest gradient norm, above it scaled down")
    # bfloat16 has float32's range, so no loss scaling is needed (float16 would need it). Only the
    # training steps run mixed: the weights are copied into a float32 model before they are chosen,
    # checkpointed, calibrated and exported, so the served model computes as one trained in float32.
    mixed_precision: bool = Field(
        False,
        description="train in bfloat16 mixed precision (~20 % less time a step on a CPU with AVX512-BF16, "
        "or a GPU); the exported model computes in float32",
    )
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
    min_learning_rate: float = Field(
        1e-5, gt=0.0, description="lowest learning rate of the drops; the cosine schedule's last epoch"
    )
    # "plateau" drops the rate only when the validation loss stalls: model 7's base run kept 1e-3 for 22
    # of its 28 epochs, its loss noisy around 0.045-0.05, and fell to 0.036 in the 6 after the first drop.
    # "cosine" anneals it every epoch from --learning-rate down to --min-learning-rate along half a
    # cosine over --epochs (Loshchilov & Hutter 2017), whatever the validation loss does.
    learning_rate_schedule: Literal["plateau", "cosine"] = Field(
        "plateau",
        description="plateau: drop by --reduce-lr-factor after --reduce-lr-patience-epochs without a lower "
        "validation loss; cosine: from --learning-rate to --min-learning-rate over --epochs",
    )

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
    # Outlier exposure (Hendrycks et al. 2019, `training.outliers`): letters, numbers, scribbles and
    # other non-digits trained towards the uniform distribution, so that the model learns what is not
    # one digit. Past half as many as the digits, their targets would crowd out the digits' own.
    outlier_fraction: float = Field(
        0.0,
        ge=0.0,
        le=0.5,
        description="non-digit images with a uniform target, as a fraction of the training images "
        "(augmented copies included); 0: off",
    )
    # The share of wrong answers allowed among those the service accepts on the validation data: sets
    # the card's minimum confidence, below which an answer is "unsure" (training/calibrate.py).
    unsure_max_risk: float = Field(
        0.002,
        ge=0.0,
        lt=1.0,
        description="share of wrong answers allowed among the confident validation answers; sets the "
        "model card's minimum confidence",
    )
    # Fine-tuning: start from a checkpoint's weights (a .keras file of this architecture) instead of
    # random ones, e.g. to continue a finished run with fresh augmented copies and a lower learning rate.
    # Several checkpoints start from the mean of their weights (a "uniform model soup", Wortsman et al.
    # 2022): fine-tunes of one parent stay in one basin, and their mean usually generalizes better
    # than any of them, at no cost at inference (still one model of the same architecture).
    initial_weights: Annotated[tuple[Path, ...], Flag(metavar="CHECKPOINT")] = Field(
        (),
        description="fine-tune: start from this .keras checkpoint's weights, or an exported model's folder "
        "(models/digits/7; needs TensorFlow) (none: random ones); given several times, from the mean of "
        "the checkpoints' weights",
    )
    # A fine-tune that refines (fresh copies, a lower learning rate) must not end worse on validation
    # than its start, so the start competes for the final weights. One that teaches what the start
    # never learned (outlier exposure) cannot be judged by the digits' validation loss alone: the start
    # wins it by not sharing the model with non-digits (model 7: 0.0254 against 0.0265), and would undo
    # the fine-tune. Then the start is scored and logged, and left out of the choice.
    keep_start_if_best: bool = Field(
        True,
        description="a fine-tune's start weights as a candidate for the final weights (on the validation "
        "loss); off: only the fine-tune's own weights are, for a new objective such as --outlier-fraction",
    )
    # Knowledge distillation (training/distill.py): each training image's target blends its one-hot
    # label with the mean probabilities that models trained before give it, so that a warped copy that
    # no longer reads as its label is not taught as a sure one. Validation stays against the labels.
    teachers: Annotated[tuple[Path, ...], Flag("--teacher", metavar="CHECKPOINT")] = Field(
        (),
        description="distil: train towards this model's probabilities as well as the labels (a .keras "
        "checkpoint or an exported model's folder); given several times, their mean (none: labels only)",
    )
    teacher_weight: float = Field(
        0.5, ge=0.0, le=1.0, description="with --teacher: the teachers' share of each training target"
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

    @model_validator(mode="after")
    def _start_choice_needs_a_start(self) -> TrainConfig:
        if not self.keep_start_if_best and not self.initial_weights:
            raise ValueError("--no-keep-start-if-best is about a fine-tune's start: give --initial-weights")
        return self

    @model_validator(mode="after")
    def _smoke_tests_stay_in_their_run_folder(self) -> TrainConfig:
        if self.version is not None and self.output_dir is None:
            raise ValueError("--version is the version promoted into --output-dir; give --output-dir too")
        if self.quick and self.output_dir is not None and not self.allow_smoke_test:
            raise ValueError(
                "--quick trains a smoke test, never promoted to a served folder: drop --output-dir, "
                "or add --allow-smoke-test"
            )
        return self

    @property
    def repeats_by_source(self) -> dict[str, int]:
        """`--repeat` as {dataset name: times}, e.g. {"cvl": 3}."""
        return {name: int(times) for name, times in (spec.split("=", 1) for spec in self.source_repeats)}

    @model_validator(mode="after")
    def _repeats_name_given_datasets(self) -> TrainConfig:
        names = {spec.split("=", 1)[0] for spec in self.datasets}
        seen: set[str] = set()
        for spec in self.source_repeats:
            name, _, times = spec.partition("=")
            if name not in names:
                raise ValueError(f"--repeat {spec}: {name!r} is not one of the --dataset names")
            if name in seen:
                raise ValueError(f"--repeat given more than once for {name}")
            if not times.isdigit() or not 1 <= int(times) <= MAX_SOURCE_REPEATS:
                raise ValueError(
                    f"--repeat {spec}: TIMES must be a whole number from 1 to {MAX_SOURCE_REPEATS}"
                )
            seen.add(name)
        return self

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
