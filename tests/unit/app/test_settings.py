"""Settings come from DIGITSERVE_* variables, and a wrong value stops the start-up with a clear message."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from app.settings import Settings, describe_settings, describe_settings_error, unknown_variable_warnings

pytestmark = pytest.mark.unit


def test_defaults_describe_the_documented_service():
    settings = Settings()
    assert settings.model_dir == Path("models/digits") and settings.model_version is None
    assert (settings.batch_max_size, settings.batch_max_wait_ms, settings.queue_max_size) == (32, 5.0, 1024)
    assert settings.upload_max_bytes == 10 * 1024 * 1024 and settings.image_max_pixels == 40_000_000
    assert (settings.batch_max_files, settings.request_timeout_seconds) == (64, 10.0)
    assert settings.read_max_digits == 20
    assert (settings.tf_intra_op_threads, settings.tf_inter_op_threads, settings.opencv_threads) == (1, 1, 1)
    assert (settings.decode_workers, settings.decode_timeout_seconds) == (2, 3.0)
    assert settings.decode_uploads_per_task == 8
    assert (settings.image_max_decoded_bytes, settings.image_max_aspect_ratio) == (128 * 1024 * 1024, 32.0)
    assert (settings.http_max_header_bytes, settings.http_max_connections) == (16 * 1024, 256)
    assert (settings.upload_idle_timeout_seconds, settings.upload_timeout_seconds) == (10.0, 60.0)


def test_the_upload_spool_must_hold_one_upload_of_the_largest_size():
    with pytest.raises(ValidationError, match="upload_spool_max_bytes"):
        Settings(upload_max_bytes=10_000_000, upload_spool_max_bytes=1_000_000)


def test_values_are_read_from_prefixed_environment_variables(monkeypatch):
    monkeypatch.setenv("DIGITSERVE_BATCH_MAX_SIZE", "8")
    monkeypatch.setenv("DIGITSERVE_MODEL_DIR", "/srv/models/digits")
    monkeypatch.setenv("DIGITSERVE_MODEL_VERSION", "3")
    monkeypatch.setenv("DIGITSERVE_LOG_LEVEL", "debug")
    monkeypatch.setenv("BATCH_MAX_SIZE", "2")  # unprefixed: ignored
    settings = Settings()
    assert settings.batch_max_size == 8
    assert settings.model_dir == Path("/srv/models/digits") and settings.model_version == "3"
    assert settings.log_level == "DEBUG"


@pytest.mark.parametrize("size", [3, 12, 48])
def test_batch_max_size_must_be_a_power_of_two(size):
    with pytest.raises(ValidationError, match="power of 2"):
        Settings(batch_max_size=size)


def test_queue_must_hold_a_full_batch_and_a_full_batch_request():
    with pytest.raises(ValidationError, match="queue_max_size"):
        Settings(batch_max_size=64, queue_max_size=32, batch_max_files=16)
    with pytest.raises(ValidationError, match="batch_max_files"):
        Settings(queue_max_size=32, batch_max_files=64)
    assert Settings(batch_max_size=1, queue_max_size=4, batch_max_files=4).queue_max_size == 4


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("batch_max_size", 0),
        ("batch_max_wait_ms", -1),
        ("request_timeout_seconds", 0),
        ("upload_max_bytes", 0),
        ("port", 70000),
        ("model_version", "latest"),
        ("tf_intra_op_threads", -1),
        ("decode_workers", 0),
        ("decode_timeout_seconds", 0),
        ("decode_uploads_per_task", 0),
        ("decode_worker_memory_max_bytes", 1024),
        ("log_level", "LOUD"),
        ("min_confidence", 1.5),
        ("min_confidence", -0.1),
    ],
)
def test_out_of_range_values_are_refused(field, value):
    with pytest.raises(ValidationError, match=field):
        Settings(**{field: value})


def test_settings_are_immutable_once_built():
    with pytest.raises(ValidationError):
        Settings().batch_max_size = 4


def test_api_keys_are_off_by_default_and_read_comma_separated(monkeypatch):
    assert Settings().api_keys == frozenset() and not Settings().metrics_require_api_key
    monkeypatch.setenv("DIGITSERVE_API_KEYS", " first-key-0123456789 ,second-key-987654321,, ")
    monkeypatch.setenv("DIGITSERVE_METRICS_REQUIRE_API_KEY", "true")
    settings = Settings()
    assert {key.get_secret_value() for key in settings.api_keys} == {
        "first-key-0123456789",
        "second-key-987654321",
    }
    assert settings.metrics_require_api_key


def test_api_keys_never_appear_in_the_settings_repr():
    settings = Settings(api_keys="first-key-0123456789")
    assert "first-key-0123456789" not in repr(settings) and "first-key-0123456789" not in str(settings)


@pytest.mark.parametrize("keys", ["short-key", "has a space in it ok", "tab\tseparated-0123456789"])
def test_weak_or_unsendable_api_keys_are_refused_without_echoing_them(keys):
    with pytest.raises(ValidationError, match="api_keys") as refused:
        Settings(api_keys=keys)
    assert keys not in str(refused.value) and "key" in str(refused.value)


def test_restricting_metrics_needs_a_key():
    with pytest.raises(ValidationError, match="metrics_require_api_key needs at least one key"):
        Settings(metrics_require_api_key=True)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "DIGITSERVE_MIN_CONFIDENCE",
            "1.5",
            "DIGITSERVE_MIN_CONFIDENCE=1.5: Input should be less than or equal to 1",
        ),
        (
            "DIGITSERVE_MIN_CONFIDENCE",
            "sure",
            "DIGITSERVE_MIN_CONFIDENCE=sure: Input should be a valid number",
        ),
        (
            "DIGITSERVE_READ_MAX_DIGITS",
            "0",
            "DIGITSERVE_READ_MAX_DIGITS=0: Input should be greater than or equal to 1",
        ),
        (
            "DIGITSERVE_BATCH_MAX_SIZE",
            "48",
            "DIGITSERVE_BATCH_MAX_SIZE=48: must be a power of 2: 1, 2, 4 ... 1024",
        ),
        (
            "DIGITSERVE_MODEL_VERSION",
            "latest",
            "DIGITSERVE_MODEL_VERSION=latest: String should match pattern",
        ),
        ("DIGITSERVE_MODEL_VERSION", "my model", "DIGITSERVE_MODEL_VERSION='my model': String should match"),
    ],
)
def test_a_refused_variable_is_named_with_its_value_and_what_it_allows(monkeypatch, variable, value, message):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError) as error:
        Settings()
    assert describe_settings_error(error.value).startswith(message)
    assert "\n" not in describe_settings_error(error.value)


def test_each_refused_variable_gets_a_line_of_its_own(monkeypatch):
    monkeypatch.setenv("DIGITSERVE_BATCH_MAX_SIZE", "48")
    monkeypatch.setenv("DIGITSERVE_PORT", "0")
    with pytest.raises(ValidationError) as error:
        Settings()
    lines = describe_settings_error(error.value).splitlines()
    assert [line.split(":")[0] for line in lines] == ["DIGITSERVE_BATCH_MAX_SIZE=48", "DIGITSERVE_PORT=0"]


def test_a_rule_across_variables_names_the_variables_not_the_fields(monkeypatch):
    monkeypatch.setenv("DIGITSERVE_QUEUE_MAX_SIZE", "16")
    with pytest.raises(ValidationError) as error:
        Settings()
    assert describe_settings_error(error.value) == (
        "DIGITSERVE_QUEUE_MAX_SIZE (16) must be at least DIGITSERVE_BATCH_MAX_SIZE (32) "
        "and DIGITSERVE_BATCH_MAX_FILES (64)"
    )


def test_a_refused_api_key_is_never_shown_in_the_message(monkeypatch):
    monkeypatch.setenv("DIGITSERVE_API_KEYS", "short-secret")
    with pytest.raises(ValidationError) as error:
        Settings()
    message = describe_settings_error(error.value)
    assert message.startswith("DIGITSERVE_API_KEYS=<hidden>: each API key must be at least 16")
    assert "short-secret" not in message


def test_a_long_refused_value_is_cut_short_in_the_message(monkeypatch):
    monkeypatch.setenv("DIGITSERVE_PORT", "9" * 500)
    with pytest.raises(ValidationError) as error:
        Settings()
    assert describe_settings_error(error.value).startswith(f"DIGITSERVE_PORT={'9' * 80}...: ")


def test_the_settings_listing_names_every_variable_and_hides_the_keys():
    keys = "first-key-0123456789,second-key-987654321"
    lines = describe_settings(Settings(api_keys=keys, batch_max_size=8, model_dir=Path("/srv/models")))
    assert len(lines) == len(Settings.model_fields)
    assert "DIGITSERVE_BATCH_MAX_SIZE=8" in lines and "DIGITSERVE_MODEL_DIR=/srv/models" in lines
    assert "DIGITSERVE_API_KEYS=<hidden: 2>" in lines
    assert "DIGITSERVE_MODEL_VERSION=" in lines  # unset: the highest version
    assert "DIGITSERVE_ALLOW_SMOKE_TEST_MODEL=false" in lines
    assert not any("first-key" in line or "second-key" in line for line in lines)


def test_an_unknown_variable_is_warned_of_with_the_closest_known_one():
    environment = {
        "DIGITSERVE_BATCH_MAX_SIZ": "8",
        "digitserve_min_confidense": "0.5",
        "DIGITSERVE_NONSENSE": "1",
        "DIGITSERVE_BATCH_MAX_SIZE": "8",  # known
        "DIGITSERVE_HOST_PORT": "8000",  # compose's host side, not a setting but known
        "DIGITSERVE_CLIENT_API_KEY": "key-of-the-command-line",  # the client's
        "BATCH_MAX_SIZE": "2",  # not ours
    }
    assert unknown_variable_warnings(environment) == [
        "DIGITSERVE_BATCH_MAX_SIZ is not a setting of the service and is ignored; "
        "did you mean DIGITSERVE_BATCH_MAX_SIZE?",
        "DIGITSERVE_NONSENSE is not a setting of the service and is ignored (README: Settings)",
        "digitserve_min_confidense is not a setting of the service and is ignored; "
        "did you mean DIGITSERVE_MIN_CONFIDENCE?",
    ]


def test_the_minimum_confidence_defaults_to_the_model_cards(monkeypatch):
    assert Settings().min_confidence is None
    monkeypatch.setenv("DIGITSERVE_MIN_CONFIDENCE", "")  # compose's ${DIGITSERVE_MIN_CONFIDENCE:-}
    assert Settings().min_confidence is None
    monkeypatch.setenv("DIGITSERVE_MIN_CONFIDENCE", "0.75")
    assert Settings().min_confidence == 0.75
