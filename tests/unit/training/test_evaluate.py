"""training.evaluate scores each set with a serving function (a fake here: no TensorFlow), a test-only
folder on all its images, and writes one CSV row per image (its file, label, prediction, confidence),
the misread digits and the confusion matrices; bad input exits 2 with the culprit named."""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from digits.calibration import Calibration
from digits.model_store import MODEL_CARD_FILE_NAME, SAVED_MODEL_FILE_NAME
from training import evaluate
from training.datasets import DatasetError, DigitSet, DigitSource
from training.datasets.folder import load_folder
from training.selective import score_selective

pytestmark = pytest.mark.unit

CVL_FILES_PER_DIGIT = 2


def serve_returning(probabilities: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """A fake model: hands out the rows of `probabilities` (N, 10) in order, one batch at a time."""
    position = 0

    def serve(inputs: np.ndarray) -> np.ndarray:
        nonlocal position
        assert inputs.shape[1:] == (28, 28, 1) and inputs.dtype == np.float32
        batch = probabilities[position : position + len(inputs)]
        position += len(inputs)
        return batch

    return serve


def one_hot_probabilities(predictions: list[int], confidence: float = 0.91) -> np.ndarray:
    """(N, 10) float32: `confidence` on each predicted digit, the rest spread evenly."""
    probabilities = np.full((len(predictions), 10), (1 - confidence) / 9, dtype=np.float32)
    probabilities[np.arange(len(predictions)), predictions] = confidence
    return probabilities


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as stream:
        return list(csv.DictReader(stream))


@pytest.fixture
def test_only_folder(tmp_path, shared_data_dir) -> Path:
    """root/<digit>/ for digits 0, 1, 7 with two CVL test scans each, and no train/ or test/ folder."""
    root = tmp_path / "my-digits"
    for digit in (0, 1, 7):
        (root / str(digit)).mkdir(parents=True)
        sources = sorted((shared_data_dir / "cvl" / "test" / str(digit)).iterdir())[:CVL_FILES_PER_DIGIT]
        for source in sources:
            shutil.copy(source, root / str(digit) / source.name)
    return root


@pytest.fixture
def model_dir(tmp_path) -> Path:
    """A version folder that `resolve_version_dir` accepts; the model itself is faked."""
    version_dir = tmp_path / "models" / "digits" / "4"
    version_dir.mkdir(parents=True)
    (version_dir / SAVED_MODEL_FILE_NAME).write_bytes(b"")
    return version_dir


def test_score_dataset_takes_the_predicted_digits_probability_as_confidence():
    digits = DigitSet("toy/test", np.zeros((3, 28, 28), np.uint8), np.array([0, 1, 2]))
    score = evaluate.score_dataset(serve_returning(one_hot_probabilities([0, 1, 5], 0.8)), digits)

    assert score.predictions.tolist() == [0, 1, 5] and score.accuracy == pytest.approx(2 / 3)
    np.testing.assert_allclose(score.confidences, [0.8, 0.8, 0.8])
    assert score.confusion[2, 5] == 1 and score.confusion.sum() == 3


def test_a_test_only_folder_is_evaluated_on_all_its_images_with_their_paths(test_only_folder):
    source = load_folder(test_only_folder)
    assert source.test is None

    (digits,) = evaluate.select_evaluation_sets([source], enable_whole_sources=True)

    assert digits.name == "folder/all" and len(digits) == 3 * CVL_FILES_PER_DIGIT
    assert digits.labels.tolist() == [0, 0, 1, 1, 7, 7]
    assert digits.origins.tolist() == [str(path) for path in sorted(test_only_folder.glob("*/*.png"))]
    # Selecting digits keeps each one's origin beside it.
    assert digits.select(np.array([4, 0])).origins.tolist() == [digits.origins[4], digits.origins[0]]


def test_a_source_with_a_test_split_is_evaluated_on_it_alone():
    train, test = (
        DigitSet(f"toy/{split}", np.zeros((2, 28, 28), np.uint8), np.array([3, 4]))
        for split in ("train", "test")
    )
    assert evaluate.select_evaluation_sets([DigitSource("toy", train, test)], enable_whole_sources=True) == [
        test
    ]


def test_training_data_named_by_the_card_is_not_evaluated():
    train = DigitSet("toy/train", np.zeros((2, 28, 28), np.uint8), np.array([3, 4]))
    with pytest.raises(DatasetError, match="none of the datasets has a test split"):
        evaluate.select_evaluation_sets([DigitSource("toy", train, None)], enable_whole_sources=False)


def test_two_sets_of_one_name_are_refused_as_their_files_would_clash(test_only_folder):
    source = load_folder(test_only_folder)
    with pytest.raises(DatasetError, match="more than one set named folder/all"):
        evaluate.select_evaluation_sets([source, source], enable_whole_sources=True)


def test_results_csv_has_a_row_per_image_in_set_order(tmp_path):
    origins = np.array(["a/0/x.png", "a/1/y.png", "a/1/z.png"])
    digits = DigitSet("a/all", np.zeros((3, 28, 28), np.uint8), np.array([0, 1, 1]), origins=origins)
    score = evaluate.score_dataset(serve_returning(one_hot_probabilities([0, 7, 1], 0.91234)), digits)

    evaluate.write_results_csv(tmp_path / "a_all.csv", digits, score)

    assert (tmp_path / "a_all.csv").read_text().splitlines() == [
        "file,label,predicted,confidence",
        "a/0/x.png,0,0,0.9123",
        "a/1/y.png,1,7,0.9123",
        "a/1/z.png,1,1,0.9123",
    ]


def test_results_csv_names_digits_without_a_file_by_set_and_index(tmp_path):
    digits = DigitSet("mnist/test", np.zeros((2, 28, 28), np.uint8), np.array([5, 6]))
    score = evaluate.score_dataset(serve_returning(one_hot_probabilities([5, 6])), digits)

    evaluate.write_results_csv(tmp_path / "mnist_test.csv", digits, score)

    assert [row["file"] for row in read_rows(tmp_path / "mnist_test.csv")] == ["mnist/test#0", "mnist/test#1"]


def test_the_default_output_folder_is_outside_the_shipped_model_folder(model_dir):
    assert evaluate.default_output_dir(model_dir) == Path("reports/digits-4")


def test_cli_writes_results_misread_digits_and_confusions_of_a_test_only_folder(
    test_only_folder, model_dir, tmp_path, monkeypatch, capsys
):
    predictions = [0, 0, 1, 1, 7, 1]  # the last 7 misread as a 1
    monkeypatch.setattr(
        evaluate, "load_serving_function", lambda _: serve_returning(one_hot_probabilities(predictions))
    )
    output_dir = tmp_path / "evaluation"

    status = evaluate.main(
        [str(model_dir), "--dataset", f"folder={test_only_folder}", "--output-dir", str(output_dir)]
    )

    assert status == 0
    rows = read_rows(output_dir / "folder_all.csv")
    assert [row["file"] for row in rows] == [str(path) for path in sorted(test_only_folder.glob("*/*.png"))]
    assert [(row["label"], row["predicted"]) for row in rows][-2:] == [("7", "7"), ("7", "1")]
    for plot in ("folder_all_misclassified.png", "confusion_matrix.png"):
        assert (output_dir / plot).stat().st_size > 1000, plot
    assert sorted(path.name for path in model_dir.iterdir()) == [SAVED_MODEL_FILE_NAME]
    stdout = capsys.readouterr().out
    assert "| folder/all | 6 | 83.33 % |" in stdout and f"wrote {output_dir / 'folder_all.csv'}" in stdout


def test_cli_writes_no_misread_grid_where_every_digit_is_read(
    test_only_folder, model_dir, tmp_path, monkeypatch
):
    output_dir = tmp_path / "evaluation"
    output_dir.mkdir()
    (output_dir / "folder_all_misclassified.png").write_bytes(b"from an earlier, worse model")
    monkeypatch.setattr(
        evaluate,
        "load_serving_function",
        lambda _: serve_returning(one_hot_probabilities([0, 0, 1, 1, 7, 7])),
    )

    assert (
        evaluate.main(
            [str(model_dir), "--dataset", f"folder={test_only_folder}", "--output-dir", str(output_dir)]
        )
        == 0
    )
    assert sorted(path.name for path in output_dir.iterdir()) == [
        "confusion_matrix.png",
        "folder_all.csv",
        "reliability.png",
        "risk_coverage.png",
    ]


def _break_an_image(root: Path) -> str:
    (root / "1" / "scribble.png").write_bytes(b"not a png at all")
    return f"{root / '1' / 'scribble.png'}: "


def _empty_a_digit_folder(root: Path) -> str:
    (root / "5").mkdir()
    return f"digit folder {root / '5'} holds no image"


@pytest.mark.parametrize("spoil", [_break_an_image, _empty_a_digit_folder])
def test_cli_names_a_bad_dataset_folder_and_exits_2(
    test_only_folder, model_dir, tmp_path, monkeypatch, capsys, spoil
):
    message = spoil(test_only_folder)
    monkeypatch.setattr(
        evaluate, "load_serving_function", lambda _: pytest.fail("the model must not be loaded")
    )

    status = evaluate.main(
        [str(model_dir), "--dataset", f"folder={test_only_folder}", "--output-dir", str(tmp_path / "out")]
    )

    assert status == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_cli_names_a_missing_model_and_exits_2(test_only_folder, tmp_path, capsys):
    status = evaluate.main([str(tmp_path / "no-model"), "--dataset", f"folder={test_only_folder}"])

    assert (
        status == 2 and f"model directory {tmp_path / 'no-model'} does not exist" in capsys.readouterr().err
    )


def test_cli_does_not_score_the_training_folder_of_the_models_card(test_only_folder, model_dir, capsys):
    card = {"config": {"datasets": [f"folder={test_only_folder}"]}}
    (model_dir / MODEL_CARD_FILE_NAME).write_text(json.dumps(card))

    assert evaluate.main([str(model_dir)]) == 2
    assert "none of the datasets has a test split" in capsys.readouterr().err


def test_cli_names_an_output_folder_it_cannot_write_and_exits_2(
    test_only_folder, model_dir, tmp_path, monkeypatch, capsys
):
    blocker = tmp_path / "a-file"
    blocker.write_text("a file where the output folder would be")
    monkeypatch.setattr(
        evaluate, "load_serving_function", lambda _: serve_returning(one_hot_probabilities([0] * 6))
    )

    status = evaluate.main(
        [str(model_dir), "--dataset", f"folder={test_only_folder}", "--output-dir", str(blocker / "out")]
    )

    assert status == 2 and f"cannot write into {blocker / 'out'}" in capsys.readouterr().err


def test_selective_scores_apply_the_cards_calibration_and_threshold():
    labels = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    probabilities = one_hot_probabilities([0, 1, 2, 3, 4, 5, 6, 7, 8, 0], confidence=0.95)
    probabilities[:5] = one_hot_probabilities([0, 1, 2, 3, 4], confidence=0.99)
    digits = DigitSet("set/test", np.zeros((10, 28, 28), np.uint8), labels)
    score = evaluate.score_dataset(serve_returning(probabilities), digits)

    selective = score_selective(score, Calibration(1.0), min_confidence=0.98)

    assert selective.unsure_rate == 0.5 and selective.accepted_accuracy == 1.0  # the last 9 -> 0 is unsure
    assert selective.before == selective.after  # temperature 1
    # The wrong answer is the last of the least confident: kept only when 95 % (10 of 10) are.
    assert (selective.accuracy_at_coverage[0.9], selective.accuracy_at_coverage[0.95]) == (1.0, 0.9)
    softened = score_selective(score, Calibration(2.0), min_confidence=0.98)
    assert softened.unsure_rate == 1.0 and softened.after["ece"] != softened.before["ece"]


def test_cli_reports_calibration_and_unsure_answers_at_the_cards_threshold_or_the_one_given(
    test_only_folder, model_dir, tmp_path, monkeypatch, capsys
):
    card = {"calibration": Calibration(1.5, 0.7).to_card()}
    (model_dir / MODEL_CARD_FILE_NAME).write_text(json.dumps(card))
    monkeypatch.setattr(
        evaluate,
        "load_serving_function",
        lambda _: serve_returning(one_hot_probabilities([0, 0, 1, 1, 7, 1])),
    )
    arguments = [
        str(model_dir),
        "--dataset",
        f"folder={test_only_folder}",
        "--output-dir",
        str(tmp_path / "out"),
    ]

    assert evaluate.main(arguments) == 0
    stdout = capsys.readouterr().out
    assert "calibration: temperature 1.5; unsure below 0.7000" in stdout
    assert "| folder/all | " in stdout.split("unsure below")[1]
    assert (tmp_path / "out" / "reliability.png").stat().st_size > 1000

    monkeypatch.setattr(
        evaluate,
        "load_serving_function",
        lambda _: serve_returning(one_hot_probabilities([0, 0, 1, 1, 7, 1])),
    )
    assert evaluate.main([*arguments, "--min-confidence", "0.25"]) == 0
    assert "unsure below 0.2500" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("1.5", "--min-confidence: Input should be less than or equal to 1"),
        ("-0.1", "--min-confidence: Input should be greater than or equal to 0"),
        ("nan", "--min-confidence: Input should be a finite number"),
        ("high", "--min-confidence: Input should be a valid number"),
    ],
)
def test_cli_refuses_a_threshold_outside_zero_to_one_in_one_line_naming_the_flag(
    model_dir, value, message, capsys
):
    with pytest.raises(SystemExit) as exit_info:
        evaluate.main([str(model_dir), "--min-confidence", value])
    error = capsys.readouterr().err
    assert exit_info.value.code == 2 and error.count("\n") == 1
    assert error.startswith(f"python -m training.evaluate: error: {message}")
    assert "argument " not in error and "_interval" not in error
