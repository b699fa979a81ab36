"""How long one training step of the digit CNN takes in float32 and in bfloat16 mixed precision.

The recipe's time (issue 11: at most 90 minutes on this 2-core machine) is nearly all training steps
(`make train`: 40 epochs of ~440 steps of 384 images). This times `train_on_batch` of the real model
(`training.model.build_model`, compiled as `training.train.compile_model` compiles it) on random
batches of the recipe's size, the two precisions alternated in rounds so that the machine's drifting
speed falls on both alike; it prints each round and the medians, and the ratio mixed / float32.
Run it alone on the machine.

    python -m bench.train_step_speed [--rounds 3] [--steps 20] [--batch-size 384]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from training.config import TrainConfig
from training.model import FLOAT32, MIXED_BFLOAT16, build_model
from training.train import compile_model

WARM_UP_STEPS = 3


def build_trainer(dtype_policy: str, config: TrainConfig):
    """A compiled model of the given policy, compiled as `training.run` compiles it."""
    model = build_model(dense_l2=config.dense_l2, dtype_policy=dtype_policy)
    compile_model(model, config)
    return model


def seconds_per_step(model, images: np.ndarray, targets: np.ndarray, steps: int) -> float:
    """Wall seconds of one `train_on_batch`, the mean of `steps`, after WARM_UP_STEPS untimed ones (the
    first call traces the graph; later rounds warm the caches the other precision's steps took over)."""
    for _ in range(WARM_UP_STEPS):
        model.train_on_batch(images, targets)
    started = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(images, targets)
    return (time.perf_counter() - started) / steps


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20, help="timed steps of each precision a round")
    parser.add_argument("--batch-size", type=int, default=TrainConfig().batch_size)
    args = parser.parse_args()
    if min(args.rounds, args.steps, args.batch_size) < 1:
        raise SystemExit("error: --rounds, --steps and --batch-size must all be at least 1")
    config = TrainConfig()
    random = np.random.default_rng(0)
    images = random.random((args.batch_size, 28, 28, 1), dtype=np.float32)
    targets = np.eye(10, dtype=np.float32)[random.integers(0, 10, args.batch_size)]
    models = {policy: build_trainer(policy, config) for policy in (FLOAT32, MIXED_BFLOAT16)}
    times: dict[str, list[float]] = {policy: [] for policy in models}
    for round_number in range(1, args.rounds + 1):
        for policy, model in models.items():
            times[policy].append(seconds_per_step(model, images, targets, args.steps))
        print(
            f"round {round_number}: "
            + ", ".join(f"{policy} {times[policy][-1] * 1000:.1f} ms a step" for policy in models),
            flush=True,
        )
    medians = {policy: statistics.median(values) for policy, values in times.items()}
    print(f"batch {args.batch_size}, medians of {args.rounds} rounds of {args.steps} steps:")
    for policy, median in medians.items():
        per_image_us = median / args.batch_size * 1e6
        print(f"  {policy:>15}: {median * 1000:.1f} ms a step, {per_image_us:.0f} us an image")
    print(f"  mixed / float32: {medians[MIXED_BFLOAT16] / medians[FLOAT32]:.2f}")


if __name__ == "__main__":
    main()
