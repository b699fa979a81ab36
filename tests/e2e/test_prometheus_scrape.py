"""deploy/prometheus/ -> a real Prometheus (Debian's, on loopback) scraping the running container.

The repo's scrape config is used as shipped, except for two things that only make sense inside the
compose network or in production: the target becomes the container's loopback port, and the
intervals drop to 1 s so that `rate()` has samples within seconds.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from testkit.server import free_port
from testkit.shared_data import REPO_ROOT
from tests.e2e.conftest import ComposeStack

pytestmark = pytest.mark.e2e

PROMETHEUS_CONFIG_DIR = REPO_ROOT / "deploy" / "prometheus"
WAIT_SECONDS = 60
LATENCY_QUERY = (
    "histogram_quantile(0.99, sum by (le) "
    '(rate(digitserve_http_request_duration_seconds_bucket{route="/predict"}[30s])))'
)
RECORDED_LATENCY = 'digitserve:http_request_duration_seconds:p99_5m{route="/predict"}'


def test_repo_scrape_config_and_rules_pass_promtool(system_tools):
    result = subprocess.run(
        ["promtool", "check", "config", str(PROMETHEUS_CONFIG_DIR / "prometheus.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "rules found" in result.stdout


def loopback_config(target: str, config_dir: Path) -> Path:
    """Writes the repo's prometheus.yml, retargeted at `target`, and its rule files into config_dir."""
    config = yaml.safe_load((PROMETHEUS_CONFIG_DIR / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s", scrape_timeout="1s")
    (job,) = config["scrape_configs"]
    job["static_configs"][0]["targets"] = [target]
    for rule_file in config["rule_files"]:
        shutil.copy(PROMETHEUS_CONFIG_DIR / rule_file, config_dir / rule_file)
    path = config_dir / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def prometheus(running_stack: ComposeStack, tmp_path: Path) -> Iterator[str]:
    """A Prometheus on 127.0.0.1 scraping the container; yields its base URL."""
    config_path = loopback_config(f"127.0.0.1:{running_stack.port}", tmp_path)
    address = f"127.0.0.1:{free_port()}"
    command = [
        "prometheus",
        f"--config.file={config_path}",
        f"--storage.tsdb.path={tmp_path / 'data'}",
        f"--web.listen-address={address}",
        "--log.level=warn",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        yield f"http://{address}"
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
        if process.returncode not in (0, -15):
            print(output)


def query(prometheus_url: str, expression: str) -> list[dict]:
    response = httpx.get(f"{prometheus_url}/api/v1/query", params={"query": expression}, timeout=5)
    response.raise_for_status()
    body = response.json()
    assert body["status"] == "success", body
    return body["data"]["result"]


def numeric_samples(result: list[dict]) -> list[dict]:
    """Drops NaN samples (a quantile over a window in which nothing was observed)."""
    return [sample for sample in result if not math.isnan(float(sample["value"][1]))]


def wait_for(description: str, condition) -> object:
    """Polls `condition()` once a second until it returns something truthy; fails after WAIT_SECONDS."""
    deadline = time.monotonic() + WAIT_SECONDS
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = condition()
        except httpx.HTTPError as error:  # Prometheus still starting
            last_error, result = error, None
        if result:
            return result
        time.sleep(1)
    pytest.fail(f"timed out waiting for {description} (last error: {last_error})")


def test_prometheus_scrapes_the_service_and_answers_latency_queries(prometheus, running_stack, digit_uploads):
    def scraped_target_is_up() -> list[dict]:
        targets = httpx.get(f"{prometheus}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
        return [target for target in targets if target["health"] == "up"]

    (target,) = wait_for("the digitserve target to be up", scraped_target_is_up)
    assert target["labels"]["job"] == "digitserve"
    assert target["scrapeUrl"] == f"{running_stack.base_url}/metrics"

    image, _ = digit_uploads[0]

    def latency_quantile_has_data() -> list[dict]:
        # Traffic between scrapes, so that rate() over the histogram's buckets is not zero.
        response = httpx.post(
            f"{running_stack.base_url}/predict", files={"file": ("digit.png", image, "image/png")}, timeout=30
        )
        assert response.status_code == 200, response.text
        return numeric_samples(query(prometheus, LATENCY_QUERY))

    (sample,) = wait_for("a p99 latency from the histogram", latency_quantile_has_data)
    assert 0 < float(sample["value"][1]) <= 10.0

    # The shipped recording rule evaluates against the same metric names.
    def recorded_quantile_has_data() -> list[dict]:
        return numeric_samples(query(prometheus, RECORDED_LATENCY))

    (recorded,) = wait_for("the p99 recording rule", recorded_quantile_has_data)
    assert 0 < float(recorded["value"][1]) <= 10.0
