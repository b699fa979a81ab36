"""docker-compose.yml (+ the GPU override) -> valid Compose Specification, consistent with the image.

The Compose Specification schema (the format `docker compose` v2 reads) comes bundled with
`check-jsonschema`, so this runs offline; `docker-compose` v1 reads the same files in the e2e tests.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from app.server import GRACEFUL_SHUTDOWN_SECONDS
from testkit.shared_data import REPO_ROOT

pytestmark = pytest.mark.unit

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
GPU_COMPOSE_FILE = REPO_ROOT / "docker-compose.gpu.yml"


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def with_defaults(value: str) -> str:
    """Interpolates `${VAR:-default}` as Compose does on a host where VAR is unset."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def seconds(duration: str) -> float:
    """'1m30s' -> 90.0 (Compose durations)."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert parts and "".join(number + unit for number, unit in parts) == duration, duration
    return sum(float(number) * units[unit] for number, unit in parts)


def validate_against_compose_spec(*paths: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec"]
    return subprocess.run([*command, *map(str, paths)], capture_output=True, text=True, check=False)


def test_compose_files_match_the_compose_specification():
    result = validate_against_compose_spec(COMPOSE_FILE, GPU_COMPOSE_FILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_specification_check_rejects_a_misspelt_key(tmp_path):
    broken = load(COMPOSE_FILE)
    broken["services"]["digitserve"]["stop_grace_periode"] = "30s"
    (tmp_path / "docker-compose.yml").write_text(yaml.safe_dump(broken))
    result = validate_against_compose_spec(tmp_path / "docker-compose.yml")
    assert result.returncode != 0 and "stop_grace_periode" in result.stdout


def test_default_service_has_no_profile_and_serves_port_8000():
    service = load(COMPOSE_FILE)["services"]["digitserve"]
    assert "profiles" not in service
    assert [with_defaults(port) for port in service["ports"]] == ["0.0.0.0:8000:8000"]
    assert "/healthz" in " ".join(service["healthcheck"]["test"])


def test_stop_grace_period_outlasts_uvicorns_graceful_drain():
    grace = load(COMPOSE_FILE)["services"]["digitserve"]["stop_grace_period"]
    assert seconds(grace) > GRACEFUL_SHUTDOWN_SECONDS


def test_monitoring_profile_mounts_the_repos_scrape_config():
    prometheus = load(COMPOSE_FILE)["services"]["prometheus"]
    assert prometheus["profiles"] == ["monitoring"]
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in prometheus["volumes"]}
    config_dir = REPO_ROOT / mounts["/etc/prometheus"]
    config = load(config_dir / "prometheus.yml")
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"] == ["digitserve:8000"]
    for rule_file in config["rule_files"]:
        assert (config_dir / rule_file).is_file()


def test_train_profile_runs_the_training_cli_on_read_only_data_into_models():
    services = load(COMPOSE_FILE)["services"]
    train = services["train"]
    assert train["profiles"] == ["train"] and train["build"]["target"] == "train"
    volumes = [with_defaults(volume).split(":") for volume in train["volumes"]]
    assert ["/data", "ro"] in [volume[1:] for volume in volumes]
    assert ["./models", "/opt/digitserve/models"] in volumes
    # The service mounts the same folder read-only, to serve a new version without a rebuild.
    serving_volumes = [with_defaults(volume).split(":") for volume in services["digitserve"]["volumes"]]
    assert ["./models", "/mnt/models", "ro"] in serving_volumes
    assert "--output-dir" in train["command"]
    assert 'ENTRYPOINT ["python", "-m", "training.run"]' in (REPO_ROOT / "Dockerfile").read_text()


def test_gpu_override_reserves_nvidia_gpus_and_builds_the_cuda_image():
    override = load(GPU_COMPOSE_FILE)["services"]
    for name in ("digitserve", "train"):
        (device,) = override[name]["deploy"]["resources"]["reservations"]["devices"]
        assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
        assert override[name]["build"]["args"]["TENSORFLOW_REQUIREMENT"].startswith("tensorflow[and-cuda]==")
        assert override[name]["image"].endswith(":gpu")
