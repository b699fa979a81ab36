"""Command-line flags -> TrainConfig: every knob of a training run, saved in the model card.

A run is reproducible from its card: the same config, data and seed give the same model up to the
non-determinism of the backend's kernels.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_CACHE_DIR = Path.home() / ".cache" / "digitserve"


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
    validation_fraction: float = Field(0.1, gt=0.0, lt=1.0)
    early_stopping_patience_epochs: int = Field(8, ge=1)
    reduce_lr_patience_epochs: int = Field(3, ge=1)
    reduce_lr_factor: float = Field(0.5, gt=0.0, lt=1.0)
    min_learning_rate: float = Field(1e-5, gt=0.0)

    static_augment: StaticAugmentConfig = StaticAugmentConfig()
    realtime_augment: RealtimeAugmentConfig = RealtimeAugmentConfig()
    quick: bool = False
    # With quick, each source is cut to this many images per split: enough to exercise every step.
    quick_samples_per_split: int = Field(600, ge=20)

    @field_validator("datasets")
    @classmethod
    def _datasets_unique(cls, datasets: tuple[str, ...]) -> tuple[str, ...]:
        names = [spec.split("=", 1)[0] for spec in datasets]
        duplicates = sorted({name for name in names if names.count(name) > 1 and name != "folder"})
        if duplicates:
            raise ValueError(f"dataset given more than once: {', '.join(duplicates)}")
        return datasets
