"""promote copies an exported model into the next version of a served folder, whole or not at all."""

from __future__ import annotations

import json

import pytest

from training import promote as promote_module
from training.promote import PromotionError, exported_model_dir, promote

pytestmark = pytest.mark.unit


@pytest.fixture
def run_dir(tmp_path):
    """A run folder whose model/ holds an (empty) saved_model.pb, variables/ and a card."""
    model_dir = tmp_path / "runs" / "r1" / "model"
    (model_dir / "variables").mkdir(parents=True)
    (model_dir / "saved_model.pb").write_bytes(b"graph")
    (model_dir / "variables" / "variables.index").write_bytes(b"weights")
    (model_dir / "model_card.json").write_text(json.dumps({"version": None, "smoke_test": False}))
    return model_dir.parent


def test_a_run_becomes_the_next_version_with_its_card_saying_so(run_dir, tmp_path):
    served = tmp_path / "models" / "digits"
    (served / "3").mkdir(parents=True)
    version_dir = promote(run_dir, served)
    assert (
        version_dir == served / "4"
        and (version_dir / "variables" / "variables.index").read_bytes() == b"weights"
    )
    card = json.loads((version_dir / "model_card.json").read_text())
    assert card["version"] == 4 and card["promoted_from"] == str(run_dir / "model")
    assert sorted(path.name for path in served.iterdir()) == ["3", "4"]


def test_a_failed_copy_leaves_nothing_in_the_served_folder(run_dir, tmp_path, monkeypatch):
    served = tmp_path / "digits"

    def disk_full(*_):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(promote_module, "write_model_card", disk_full)
    with pytest.raises(OSError, match="No space left"):
        promote(run_dir, served)
    assert list(served.iterdir()) == []


@pytest.mark.parametrize("version", [0, -1])
def test_a_version_below_one_is_refused(run_dir, tmp_path, version):
    with pytest.raises(PromotionError, match="an integer of 1 or more"):
        promote(run_dir, tmp_path / "digits", version)


def test_an_existing_version_even_empty_is_never_reused(run_dir, tmp_path):
    (tmp_path / "digits" / "2").mkdir(parents=True)
    with pytest.raises(PromotionError, match="already exists"):
        promote(run_dir, tmp_path / "digits", 2)


def test_a_smoke_test_is_promoted_only_when_asked(run_dir, tmp_path):
    card_path = run_dir / "model" / "model_card.json"
    card_path.write_text(json.dumps({"smoke_test": True}))
    with pytest.raises(PromotionError, match="is a smoke-test model"):
        promote(run_dir, tmp_path / "digits")
    assert promote(run_dir, tmp_path / "digits", allow_smoke_test=True).name == "1"


def test_the_exported_model_is_found_in_a_run_folder_or_given_itself(run_dir, tmp_path):
    assert exported_model_dir(run_dir) == exported_model_dir(run_dir / "model") == run_dir / "model"
    with pytest.raises(PromotionError, match="holds no exported model"):
        exported_model_dir(tmp_path)


@pytest.mark.parametrize("version", ["0", "-2", "seven"])
def test_the_cli_refuses_a_bad_version_in_one_line_naming_the_flag(run_dir, tmp_path, version, capsys):
    with pytest.raises(SystemExit) as exit_info:
        promote_module.main([str(run_dir), "--models-dir", str(tmp_path / "digits"), "--version", version])

    error = capsys.readouterr().err
    assert exit_info.value.code == 2 and error.count("\n") == 1
    assert error.startswith("python -m training.promote: error: --version: Input should be")
    assert not (tmp_path / "digits").exists()
