"""`python -m training.run --quick` trains, exports a SavedModel into its own run folder (never into a
served folder) that loads and predicts deterministically, writes the card and plots; the evaluate, export
and promote CLIs work on its output; a smoke test is promoted only when asked; bad input exits 2.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest

from tests.integration.training.cli import run_cli
from training.lineage import list_run_histories

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def shared_specs(shared_data_dir: Path) -> list[str]:
    return [
        "--dataset",
        f"mnist={shared_data_dir / 'mnist-train-10k'}{os.pathsep}{shared_data_dir / 'mnist'}",
        "--dataset",
        f"usps={shared_data_dir / 'usps' / 'usps.h5'}",
    ]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory, shared_specs) -> tuple[Path, Path, subprocess.CompletedProcess]:
    """(the run's exported model folder, its runs folder, the finished process); cwd is the repository."""
    runs_dir = tmp_path_factory.mktemp("quick") / "runs"
    result = run_cli(
        "training.run", "--quick", "--no-download", "--average-last-epochs", "1", *shared_specs,
        "--runs-dir", str(runs_dir), "--run-name", "smoke", "--outlier-fraction", "0.1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return runs_dir / "smoke" / "model", runs_dir, result


def test_quick_run_exports_into_its_run_folder_with_card_and_plots_and_nowhere_else(quick_run):
    version_dir, runs_dir, result = quick_run
    assert (version_dir / "saved_model.pb").is_file()
    assert sorted(path.name for path in runs_dir.iterdir()) == ["smoke"]  # no models/ beside it
    for plot in (
        "confusion_matrix.png",
        "misclassified.png",
        "training_curves.png",
        "augmentation_samples.png",
        "outlier_samples.png",
        "calibration.png",
        "reliability.png",
        "risk_coverage.png",
    ):
        assert (version_dir / plot).stat().st_size > 1000, plot
    card = json.loads((version_dir / "model_card.json").read_text())
    assert card["version"] is None and card["smoke_test"] is True
    assert {d["name"] for d in card["datasets"]} == {"mnist", "usps"}
    assert set(card["test_results"]) == {"mnist/test", "usps/test"}
    assert card["config"]["batch_size"] == 384 and card["config"]["seed"] == 42
    assert card["training"]["epochs_run"] == 1 and card["training"]["hardware"].startswith("CPU")
    choice = card["training"]["weight_choice"]
    assert choice["epochs_averaged"] == 1 and set(choice["candidates"]) == {"best_epoch", "averaged"}
    # The kept weights are the lowest validation loss of every candidate with either statistics.
    assert choice["val_loss"] == min(
        value
        for figures in choice["candidates"].values()
        for name, value in figures.items()
        if name.startswith("val_loss")
    )
    statistics = "clean" if choice["adopted_clean_statistics"] else "own"
    assert choice["candidates"][choice["adopted"]][f"val_loss_{statistics}_statistics"] == choice["val_loss"]
    assert card["environment"]["libraries"]["keras"]
    # Non-digits trained with uniform targets; calibration fitted on the validation digits, not a test set.
    assert card["outliers"]["images"] == round(0.1 * card["splits"]["train_augmented"])
    calibration = card["calibration"]
    assert calibration["method"] == "temperature" and calibration["temperature"] > 0
    assert 0.0 <= calibration["min_confidence"] <= 1.0
    assert calibration["fitted_on"] == f"combined/validation ({card['splits']['validation']} images)"
    assert calibration["after"]["nll"] <= calibration["before"]["nll"]
    for result_of_set in card["test_results"].values():
        assert set(result_of_set["calibrated"]) >= {"before", "after", "unsure_rate", "accepted_accuracy"}
    assert f"model in {version_dir}" in result.stdout


def test_the_card_reports_the_accuracy_of_the_weights_it_kept(quick_run):
    version_dir, _, result = quick_run
    training = json.loads((version_dir / "model_card.json").read_text())["training"]
    choice = training["weight_choice"]
    statistics = "clean" if choice["adopted_clean_statistics"] else "own"
    kept = choice["candidates"][choice["adopted"]]

    assert training["kept_weights"] == choice["adopted"]
    assert training["kept_val_loss"] == choice["val_loss"] == kept[f"val_loss_{statistics}_statistics"]
    assert (
        training["kept_val_accuracy"]
        == choice["val_accuracy"]
        == kept[f"val_accuracy_{statistics}_statistics"]
    )
    assert "best_val_accuracy" not in training and "best_epoch_val_accuracy" in training
    assert f"| validation accuracy | {100 * training['kept_val_accuracy']:.2f} % |" in result.stdout
    assert set(training["history"]) >= {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"}


def test_quick_run_reports_each_epoch_in_one_line_with_the_learning_rate_once(quick_run):
    _, _, result = quick_run
    output_lines = (result.stdout + result.stderr).splitlines()

    # Ours, "epoch 1/1: loss=...", or Keras's: "Epoch 1/1", "7/7 - 4s - 606ms/step - accuracy: ...".
    per_epoch = re.compile(r"\bepoch \d+(/\d+)?(:|$)|\d+/\d+ .*step|━", re.IGNORECASE)
    epoch_lines = [line for line in output_lines if per_epoch.search(line)]
    assert len(epoch_lines) == 1, epoch_lines  # --quick trains one epoch
    (line,) = epoch_lines
    assert "epoch 1/1: loss=" in line and "val_loss=" in line and "time=" in line
    assert line.count("learning_rate=") == 1 and "lr=" not in line.replace("learning_rate=", "")
    assert sum(line.count("learning_rate") for line in output_lines) == 1
    assert "training on CPU" in result.stderr


def test_quick_run_ends_with_a_summary_table_not_a_dict(quick_run):
    version_dir, _, result = quick_run
    summary = result.stdout.splitlines()

    assert summary[0] == f"model in {version_dir}"
    assert (
        "| training | |" in summary
        and "| test set | images | accuracy | loss | unsure | accepted answers right |" in summary
    )
    assert any(line.startswith("| mnist/test | 600 | ") for line in summary)
    assert "{" not in result.stdout


def test_exported_model_predicts_probabilities_deterministically(quick_run, mnist_test_samples):
    import tensorflow as tf

    version_dir, _, _ = quick_run
    loaded = tf.saved_model.load(str(version_dir))
    images = (mnist_test_samples[0][:16].astype("float32") / 255.0)[..., np.newaxis]
    first = loaded.serve(tf.constant(images)).numpy()
    second = loaded.serve(tf.constant(images)).numpy()
    assert first.shape == (16, 10) and first.dtype == np.float32
    assert np.allclose(first.sum(axis=1), 1.0, atol=1e-5)
    assert np.array_equal(first, second)
    signature = loaded.signatures["serving_default"]
    assert signature.structured_input_signature[1]["image"].shape.as_list() == [None, 28, 28, 1]


def test_evaluate_cli_prints_a_table_per_test_set(quick_run, shared_specs, tmp_path):
    version_dir, _, _ = quick_run
    result = run_cli(
        "training.evaluate", str(version_dir), "--no-download", *shared_specs, "--output-dir", str(tmp_path)
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "mnist_test.csv").is_file() and (tmp_path / "usps_test.csv").is_file()
    assert "| mnist/test | 10000 |" in result.stdout and "| usps/test | 2007 |" in result.stdout


def test_export_cli_exports_a_checkpoint_and_promotes_it_only_if_told_to(quick_run, tmp_path):
    _, runs_dir, _ = quick_run
    checkpoint, served = str(runs_dir / "smoke" / "best.keras"), tmp_path / "digits"
    (served / "1").mkdir(parents=True)  # an older version stays as it is
    refused = run_cli(
        "training.export", checkpoint, "--export-dir", str(tmp_path / "a"), "--output-dir", str(served)
    )
    assert refused.returncode == 2 and "is a smoke-test model" in refused.stderr
    assert (tmp_path / "a" / "saved_model.pb").is_file() and sorted(served.iterdir()) == [served / "1"]
    result = run_cli(
        "training.export", checkpoint, "--export-dir", str(tmp_path / "b"), "--output-dir", str(served),
        "--allow-smoke-test",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    card = json.loads((served / "2" / "model_card.json").read_text())
    assert card["version"] == 2 and card["smoke_test"] and (served / "2" / "saved_model.pb").is_file()


def test_promote_cli_copies_a_run_into_the_next_version_and_refuses_smoke_tests_unless_asked(
    quick_run, tmp_path
):
    _, runs_dir, _ = quick_run
    served = tmp_path / "digits"
    refused = run_cli("training.promote", str(runs_dir / "smoke"), "--models-dir", str(served))
    assert refused.returncode == 2 and "is a smoke-test model" in refused.stderr and not served.exists()
    promoted = run_cli(
        "training.promote", str(runs_dir / "smoke"), "--models-dir", str(served), "--allow-smoke-test"
    )
    assert promoted.returncode == 0, promoted.stderr[-2000:]
    card = json.loads((served / "1" / "model_card.json").read_text())
    assert card["version"] == 1 and card["promoted_from"] == str(runs_dir / "smoke" / "model")
    assert [path.name for path in served.iterdir()] == ["1"]  # no staging folder left
    again = run_cli(
        "training.promote", str(runs_dir / "smoke"), "--models-dir", str(served), "--version", "1",
        "--allow-smoke-test",
    )  # fmt: skip
    assert again.returncode == 2 and "already exists; model versions are never overwritten" in again.stderr
    nothing = run_cli("training.promote", str(tmp_path), "--models-dir", str(served))
    assert nothing.returncode == 2 and "holds no exported model" in nothing.stderr


def test_a_fine_tune_for_a_new_objective_leaves_its_start_out_of_the_choice(
    quick_run, shared_specs, tmp_path
):
    _, runs_dir, _ = quick_run
    teachers = [runs_dir / "smoke" / "best.keras", runs_dir / "smoke" / "model"]  # a checkpoint, an export
    result = run_cli(
        "training.run", "--quick", "--no-download", *shared_specs, "--runs-dir", str(tmp_path / "runs"),
        "--run-name", "outliers", "--initial-weights", str(runs_dir / "smoke" / "best.keras"),
        "--no-keep-start-if-best", "--outlier-fraction", "0.1",
        "--teacher", str(teachers[0]), "--teacher", str(teachers[1]), "--teacher-weight", "0.3",
    )  # fmt: skip

    assert result.returncode == 0, result.stderr[-3000:]
    # The start is still scored (the log says where the fine-tune began), but cannot win.
    assert "fine-tuning starts at val_loss" in result.stderr
    assert "the start weights are left out of the final choice" in result.stderr
    card = json.loads((tmp_path / "runs" / "outliers" / "model_card.json").read_text())
    assert card["config"]["keep_start_if_best"] is False
    assert set(card["training"]["weight_choice"]["candidates"]) == {"best_epoch"}
    # Distilled from both teachers, whose targets the log describes.
    assert card["config"]["teachers"] == [str(teacher) for teacher in teachers]
    assert card["config"]["teacher_weight"] == 0.3
    assert re.search(r"teachers' targets: the label's mean probability 0\.\d+", result.stderr)


def test_fine_tuning_from_several_checkpoints_records_them_and_checkpoints_what_it_exports(
    quick_run, shared_specs, mnist_test_samples, tmp_path
):
    import keras
    import tensorflow as tf

    _, runs_dir, _ = quick_run
    parent = runs_dir / "smoke" / "best.keras"
    exported_parent = runs_dir / "smoke" / "model"  # the same weights, as the run exported them
    output_dir = tmp_path / "digits"
    result = run_cli(
        "training.run", "--quick", "--no-download", *shared_specs, "--output-dir", str(output_dir),
        "--allow-smoke-test", "--runs-dir", str(tmp_path / "runs"), "--run-name", "tune",
        "--learning-rate", "1e-5",
        "--initial-weights", str(parent), "--initial-weights", str(exported_parent),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert (
        "mean weights of 2 checkpoints" in result.stderr and "fine-tuning starts at val_loss" in result.stderr
    )
    card = json.loads((output_dir / "1" / "model_card.json").read_text())
    assert card["config"]["initial_weights"] == [str(parent), str(exported_parent)]
    choice = card["training"]["weight_choice"]
    assert set(choice["candidates"]) == {"best_epoch", "start"}
    start, end = (
        min(value for key, value in choice["candidates"][name].items() if key.startswith("val_loss"))
        for name in ("start", "best_epoch")
    )
    # The start is kept exactly when the fine-tune ended worse (ties, at 5 decimals, say nothing).
    assert choice["val_loss"] == min(start, end)
    assert start == end or choice["adopted"] == ("start" if start < end else "best_epoch")
    assert [parent_card["smoke_test"] for parent_card in card["fine_tuned_from"]] == [True, True]
    # The curves show the whole lineage: the parent's epoch, from its card, then this run's.
    parent_history = card["fine_tuned_from"][0]["training"]["history"]
    runs = list_run_histories(card, "tune")
    assert [(run.name, run.first_epoch, run.epochs) for run in runs] == [("smoke", 1, 1), ("tune", 2, 1)]
    assert runs[0].history == parent_history and runs[1].history == card["training"]["history"]
    assert (output_dir / "1" / "training_curves.png").stat().st_size > 1000
    assert card["version"] == 1 and f"model in {output_dir / '1'}" in result.stdout
    # The run's checkpoint holds the exported weights: a later fine-tune starts from what was shipped.
    images = (mnist_test_samples[0][:16].astype("float32") / 255.0)[..., np.newaxis]
    checkpointed = keras.saving.load_model(tmp_path / "runs" / "tune" / "best.keras").predict(
        images, verbose=0
    )
    loaded = tf.saved_model.load(str(output_dir / "1"))  # owns the variables: keep it referenced
    exported = loaded.serve(tf.constant(images)).numpy()
    np.testing.assert_allclose(checkpointed, exported, atol=1e-5)


def test_a_mixed_precision_run_trains_in_bfloat16_and_checkpoints_and_exports_float32(
    shared_specs, mnist_test_samples, tmp_path
):
    import keras
    import tensorflow as tf

    result = run_cli(
        "training.run", "--quick", "--no-download", *shared_specs, "--runs-dir", str(tmp_path / "runs"),
        "--run-name", "mixed", "--mixed-precision",
    )  # fmt: skip

    assert result.returncode == 0, result.stderr[-3000:]
    assert "bfloat16 mixed precision" in result.stderr
    run_dir = tmp_path / "runs" / "mixed"
    card = json.loads((run_dir / "model" / "model_card.json").read_text())
    assert card["config"]["mixed_precision"] is True
    # What is checkpointed and exported computes in float32, like a model trained in float32, and the
    # checkpoint holds the trained optimizer's state as a float32 run's does...
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        checkpoint = keras.saving.load_model(run_dir / "best.keras")
    assert not [warning for warning in caught if "Skipping variable loading" in str(warning.message)]
    assert {layer.compute_dtype for layer in checkpoint.layers[1:]} == {"float32"}
    images = (mnist_test_samples[0][:16].astype("float32") / 255.0)[..., np.newaxis]
    loaded = tf.saved_model.load(str(run_dir / "model"))  # owns the variables: keep it referenced
    exported = loaded.serve(tf.constant(images)).numpy()
    np.testing.assert_allclose(checkpoint.predict(images, verbose=0), exported, atol=1e-5)
    # ...and holds the weights the bfloat16 steps trained: they read the digits as its card says.
    assert card["test_results"]["mnist/test"]["accuracy"] > 0.3  # chance: 0.1
    # A checkpoint the trainee wrote mid-run (bfloat16) is exported in float32 all the same.
    from training.model import MIXED_BFLOAT16, build_model

    interrupted = tmp_path / "interrupted"
    interrupted.mkdir()
    shutil.copy(run_dir / "model_card.json", interrupted / "model_card.json")
    mixed = build_model(dtype_policy=MIXED_BFLOAT16)
    mixed.set_weights(checkpoint.get_weights())
    mixed.save(interrupted / "best.keras")
    exported_run = run_cli("training.export", str(interrupted / "best.keras"))
    assert exported_run.returncode == 0, exported_run.stderr[-3000:]
    reloaded = tf.saved_model.load(str(interrupted / "model"))
    np.testing.assert_allclose(reloaded.serve(tf.constant(images)).numpy(), exported, atol=1e-5)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--dataset", "kmnist"], "unknown dataset 'kmnist'"),
        (["--dataset", "usps=/nonexistent/usps.h5"], "/nonexistent/usps.h5 does not exist"),
        (["--dataset", "folder"], "needs a path"),
        (["--epochs", "0"], "--epochs: Input should be greater than or equal to 1"),
        (["--teacher-weight", "1.5"], "--teacher-weight: Input should be less than or equal to 1"),
        (["--dataset", "usps", "--dataset", "usps"], "--dataset: dataset given more than once: usps"),
    ],
)
def test_training_cli_rejects_bad_input_with_a_message_and_status_2(tmp_path, arguments, message):
    result = run_cli("training.run", "--no-download", "--data-dir", str(tmp_path), *arguments)
    assert result.returncode == 2
    assert message in result.stderr
    assert "errors.pydantic.dev" not in result.stderr
    assert "Traceback" not in result.stderr


def test_training_cli_refuses_a_missing_checkpoint_before_loading_data(tmp_path):
    missing = tmp_path / "runs" / "best.keras"
    # --data-dir is empty: the checkpoint must be reported before the datasets are looked for.
    result = run_cli(
        "training.run", "--no-download", "--data-dir", str(tmp_path), "--initial-weights", str(missing)
    )
    assert result.returncode == 2
    assert f"--initial-weights {missing} does not exist" in result.stderr
    teacher = run_cli(
        "training.run", "--no-download", "--data-dir", str(tmp_path), "--teacher", str(missing)
    )  # fmt: skip
    assert teacher.returncode == 2 and f"--teacher {missing} does not exist" in teacher.stderr
    assert "Traceback" not in result.stderr


def test_training_cli_refuses_a_checkpoint_of_another_model(tmp_path, shared_specs):
    not_a_checkpoint = tmp_path / "best.keras"
    not_a_checkpoint.write_bytes(b"PK\x03\x04 truncated zip")
    result = run_cli(
        "training.run", "--quick", "--no-download", *shared_specs, "--output-dir", str(tmp_path / "digits"),
        "--allow-smoke-test",
        "--runs-dir", str(tmp_path / "runs"), "--initial-weights", str(not_a_checkpoint),
    )  # fmt: skip
    assert result.returncode == 2
    assert f"--initial-weights {not_a_checkpoint}: not a checkpoint of this model" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "digits").exists()


def test_training_cli_names_the_corrupt_file(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    for split in ("train", "t10k"):
        for name in (f"{split}-images-idx3-ubyte.gz", f"{split}-labels-idx1-ubyte.gz"):
            (folder / name).write_bytes(b"\x1f\x8b\x08\x00 this is not really gzip")
    runs_dir = tmp_path / "runs"
    result = run_cli(
        "training.run", "--no-download", "--dataset", f"mnist={folder}", "--runs-dir", str(runs_dir)
    )
    assert result.returncode == 2
    assert f"{folder}/" in result.stderr and "ubyte.gz: corrupt gzip stream" in result.stderr
    assert "Traceback" not in result.stderr
    assert not runs_dir.exists() or not any(runs_dir.iterdir())  # no empty run folder left behind


def test_training_cli_refuses_a_run_name_in_use_before_loading_data(tmp_path):
    (tmp_path / "runs" / "taken").mkdir(parents=True)
    # --data-dir is empty: the taken name must be reported before the datasets are looked for.
    result = run_cli(
        "training.run", "--no-download", "--data-dir", str(tmp_path / "data"),
        "--runs-dir", str(tmp_path / "runs"), "--run-name", "taken",
    )  # fmt: skip
    assert result.returncode == 2
    assert f"run folder {tmp_path / 'runs' / 'taken'} exists" in result.stderr
    assert "Traceback" not in result.stderr


def test_training_cli_offline_without_files_says_what_to_put_where(tmp_path):
    runs_dir = tmp_path / "runs"
    result = run_cli(
        "training.run",
        "--no-download",
        "--data-dir",
        str(tmp_path),
        "--dataset",
        "mnist",
        "--runs-dir",
        str(runs_dir),
    )
    assert result.returncode == 2
    assert not runs_dir.exists() or not any(runs_dir.iterdir())
    assert "train-images-idx3-ubyte.gz" in result.stderr and str(tmp_path / "mnist") in result.stderr


def test_evaluate_cli_rejects_a_missing_model_folder(tmp_path):
    result = run_cli("training.evaluate", str(tmp_path / "nothing"), "--dataset", "usps")
    assert (
        result.returncode == 2 and f"model directory {tmp_path / 'nothing'} does not exist" in result.stderr
    )
    assert "Traceback" not in result.stderr


def test_calibrate_cli_refits_a_run_on_its_redrawn_validation_split(quick_run, tmp_path):
    version_dir, runs_dir, _ = quick_run
    copy = tmp_path / "smoke"
    shutil.copytree(runs_dir / "smoke", copy)
    fitted = json.loads((copy / "model" / "model_card.json").read_text())["calibration"]

    result = run_cli("training.calibrate", str(copy), "--max-risk", "0.5")

    assert result.returncode == 0, result.stderr[-2000:]
    assert f"temperature {fitted['temperature']}" in result.stdout  # the same validation images
    refitted = json.loads((copy / "model" / "model_card.json").read_text())["calibration"]
    assert refitted["max_risk"] == 0.5 and refitted["min_confidence"] <= fitted["min_confidence"]
    assert json.loads((copy / "model_card.json").read_text())["calibration"] == refitted


def test_calibrate_cli_names_a_folder_without_a_model_and_exits_2(tmp_path):
    result = run_cli("training.calibrate", str(tmp_path))
    assert result.returncode == 2 and "holds no exported model" in result.stderr
