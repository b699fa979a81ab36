"""Every way of starting the service -> `python -m app`, so that none serves without the connection limits.

The uvicorn options (connection limits, one worker, the drain) are built in one place,
`app.server.build_uvicorn_options`, which `python -m app` applies. A command that called uvicorn
itself would serve without them, silently: these tests read each entry point (the Makefile, the
image, compose, Kubernetes, the test and benchmark servers) and the temp space the spool needs.
"""

from __future__ import annotations

import json
import re

import pytest
import yaml

from testkit.shared_data import REPO_ROOT

pytestmark = pytest.mark.unit

PRODUCTION_COMMAND = ["python", "-m", "app"]
MEBIBYTE_BYTES = 1024 * 1024
# Room in the temp folder beyond the spool, for what else writes there.
TEMP_SPACE_MARGIN_BYTES = 64 * MEBIBYTE_BYTES


def runtime_stage_cmd() -> list[str]:
    """The CMD of the `runtime` stage (the service image; the last stage inherits it)."""
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    runtime = dockerfile.split("AS runtime", 1)[1].split("\nFROM ", 1)[0]
    (cmd,) = re.findall(r"^CMD (\[.*\])$", runtime, flags=re.MULTILINE)
    return json.loads(cmd)


def size_bytes(quantity: str) -> int:
    """'384Mi' (Kubernetes) or '384m' (Docker tmpfs, binary units) -> bytes."""
    number, unit = re.fullmatch(r"(\d+)([KMG]i?|[kmg])?", quantity).groups()
    return int(number) * 1024 ** {"K": 1, "M": 2, "G": 3}.get((unit or " ")[0].upper(), 0)


def compose_service() -> dict:
    return yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())["services"]["digitserve"]


def k8s_pod_spec() -> dict:
    deployment = yaml.safe_load((REPO_ROOT / "deploy" / "k8s" / "base" / "deployment.yaml").read_text())
    return deployment["spec"]["template"]["spec"]


def test_the_image_runs_python_m_app_on_all_interfaces():
    command = runtime_stage_cmd()
    assert command[:3] == PRODUCTION_COMMAND and "uvicorn" not in command
    assert command[3:] == ["--host", "0.0.0.0", "--port", "8000"]


def test_make_serve_runs_python_m_app():
    makefile = (REPO_ROOT / "Makefile").read_text()
    recipe = re.search(r"^serve:.*\n((?:\t.*\n)+)", makefile, flags=re.MULTILINE).group(1)
    assert "$(BIN)/python -m app " in recipe and "uvicorn" not in recipe


@pytest.mark.parametrize("compose_file", ["docker-compose.yml", "docker-compose.gpu.yml"])
def test_compose_and_kubernetes_keep_the_images_command(compose_file):
    service = yaml.safe_load((REPO_ROOT / compose_file).read_text())["services"]["digitserve"]
    assert not {"command", "entrypoint"} & service.keys()
    (container,) = k8s_pod_spec()["containers"]
    assert not {"command", "args"} & container.keys()


def test_the_test_and_benchmark_servers_run_python_m_app():
    source = (REPO_ROOT / "testkit" / "server.py").read_text()
    assert '[sys.executable, "-m", "app"' in source and '"uvicorn"' not in source


def test_the_temp_folder_holds_the_whole_spool_in_compose_and_kubernetes():
    service = compose_service()
    spool_bytes = int(
        re.search(r":-(\d+)\}", service["environment"]["DIGITSERVE_UPLOAD_SPOOL_MAX_BYTES"]).group(1)
    )
    (tmpfs,) = service["tmpfs"]
    path, _, options = tmpfs.partition(":")
    tmpfs_bytes = size_bytes(dict(option.split("=") for option in options.split(","))["size"])
    assert path == "/tmp" and tmpfs_bytes >= spool_bytes + TEMP_SPACE_MARGIN_BYTES

    pod = k8s_pod_spec()
    environment = {item["name"]: item.get("value") for item in pod["containers"][0]["env"]}
    (volume,) = [volume for volume in pod["volumes"] if volume["name"] == "tmp"]
    mount_paths = {mount["name"]: mount["mountPath"] for mount in pod["containers"][0]["volumeMounts"]}
    spool_bytes = int(environment["DIGITSERVE_UPLOAD_SPOOL_MAX_BYTES"])
    assert mount_paths["tmp"] == "/tmp"
    assert size_bytes(volume["emptyDir"]["sizeLimit"]) >= spool_bytes + TEMP_SPACE_MARGIN_BYTES


def test_compose_and_kubernetes_set_the_same_connection_limits():
    compose_environment = {
        name: re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)
        for name, value in compose_service()["environment"].items()
    }
    (container,) = k8s_pod_spec()["containers"]
    k8s_environment = {item["name"]: item.get("value") for item in container["env"]}
    limit_names = [
        name for name in k8s_environment if name.startswith(("DIGITSERVE_HTTP_", "DIGITSERVE_UPLOAD_"))
    ]
    assert len(limit_names) == 7
    assert {name: compose_environment[name] for name in limit_names} == {
        name: k8s_environment[name] for name in limit_names
    }
