"""`--mixed-precision`: the bfloat16 twin trains, and the float32 model takes over what it learned (its
weights and Adam's state) before anything is chosen, checkpointed or exported: on one device, and
under `MirroredStrategy` (several GPUs; here two logical CPUs, in a process of its own, since TensorFlow
fixes its devices when it starts)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from testkit.shared_data import REPO_ROOT

pytestmark = pytest.mark.integration

TRAIN_AND_TAKE_OVER = textwrap.dedent(
    """
    import sys
    from unittest import mock

    import numpy as np
    import tensorflow as tf

    if sys.argv[1] == "mirrored":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    import training.train
    from training import run
    from training.config import TrainConfig

    hardware = training.train.describe_hardware()
    if sys.argv[1] == "mirrored":
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        hardware = ("2 logical CPUs, MirroredStrategy", strategy.scope())
    with mock.patch.object(training.train, "describe_hardware", return_value=hardware):
        model, trainee, _ = run._build_model(TrainConfig(mixed_precision=True, batch_size=8))
    assert trainee is not model
    assert trainee.get_layer("block1a_conv").compute_dtype == "bfloat16"
    assert {layer.compute_dtype for layer in model.layers[1:]} == {"float32"}
    images = np.random.default_rng(0).random((16, 28, 28, 1), dtype=np.float32)
    targets = np.eye(10, dtype=np.float32)[np.arange(16) % 10]
    trainee.fit(images, targets, batch_size=8, epochs=1, verbose=0)

    run._take_over_training_state(model, trainee)

    for mine, trained in zip(model.get_weights(), trainee.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, trained)
    assert int(model.optimizer.iterations.numpy()) == 2
    for mine, trained in zip(model.optimizer.variables, trainee.optimizer.variables, strict=True):
        np.testing.assert_array_equal(np.asarray(mine), np.asarray(trained))
    print("taken over")
    """
)


@pytest.mark.parametrize("devices", ["one", "mirrored"])
def test_the_float32_model_takes_over_the_weights_and_optimizer_state_the_bfloat16_twin_trained(devices):
    result = subprocess.run(
        [sys.executable, "-c", TRAIN_AND_TAKE_OVER, devices],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "taken over" in result.stdout
