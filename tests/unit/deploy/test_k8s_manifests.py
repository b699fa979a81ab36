"""deploy/k8s/{base,gpu} -> rendered manifests that the Kubernetes API schemas accept, and agree.

Offline: the JSON schemas of every Kubernetes release come bundled in the `kubernetes-validate`
package. Kustomize itself is not installed here, so `render_kustomization` does the part of it these
folders use (`resources` and strategic-merge `patches`) and refuses any other field, so a
kustomization can never silently render differently here than under `kubectl apply -k`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from app.server import GRACEFUL_SHUTDOWN_SECONDS
from testkit.shared_data import REPO_ROOT

pytestmark = pytest.mark.unit

K8S_DIR = REPO_ROOT / "deploy" / "k8s"
VARIANTS = ("base", "gpu")
# The oldest Kubernetes release still in common managed offerings, and the newest bundled schema.
KUBERNETES_VERSIONS = ("1.29.0", kubernetes_validate.utils.latest_version())
KUSTOMIZATION_FIELDS = {"apiVersion", "kind", "resources", "patches"}
IMAGE_UID = 10001


def merge_strategically(base: Any, patch: Any) -> Any:
    """Kubernetes strategic merge, as far as these manifests need it.

    Maps merge key by key; lists of maps that all carry `name` (containers, env, ports) merge item by
    item on `name`; any other list is replaced, as the API server does for lists without a merge key.
    """
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for key, value in patch.items():
            merged[key] = merge_strategically(base[key], value) if key in base else value
        return merged
    is_named_list = (
        isinstance(base, list)
        and isinstance(patch, list)
        and all(isinstance(item, dict) and "name" in item for item in base + patch)
    )
    if is_named_list:
        merged_items = {item["name"]: item for item in base}
        for item in patch:
            merged_items[item["name"]] = merge_strategically(merged_items.get(item["name"], {}), item)
        return list(merged_items.values())
    return patch


def render_kustomization(directory: Path) -> list[dict[str, Any]]:
    """Returns the resources of `directory/kustomization.yaml`, its patches applied."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unsupported = set(kustomization) - KUSTOMIZATION_FIELDS
    assert not unsupported, f"{directory}: extend render_kustomization for {sorted(unsupported)}"
    resources: list[dict[str, Any]] = []
    for entry in kustomization.get("resources", []):
        path = (directory / entry).resolve()
        if path.is_dir():
            resources += render_kustomization(path)
        else:
            resources += [document for document in yaml.safe_load_all(path.read_text()) if document]
    for entry in kustomization.get("patches", []):
        assert set(entry) == {"path"}, f"{directory}: only file patches are rendered here, got {entry}"
        patch = yaml.safe_load((directory / entry["path"]).read_text())
        targets = [
            index
            for index, resource in enumerate(resources)
            if (resource["kind"], resource["metadata"]["name"]) == (patch["kind"], patch["metadata"]["name"])
        ]
        assert len(targets) == 1, f"{entry['path']} must patch exactly one resource, matched {len(targets)}"
        resources[targets[0]] = merge_strategically(resources[targets[0]], patch)
    return resources


def resources_by_kind(variant: str) -> dict[str, dict[str, Any]]:
    resources = render_kustomization(K8S_DIR / variant)
    kinds = [resource["kind"] for resource in resources]
    assert len(kinds) == len(set(kinds)), f"{variant}: one resource of each kind expected, got {kinds}"
    return {resource["kind"]: resource for resource in resources}


def api_container(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


@pytest.mark.parametrize("kubernetes_version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("variant", VARIANTS)
def test_every_rendered_resource_matches_the_kubernetes_schema(variant, kubernetes_version):
    resources = render_kustomization(K8S_DIR / variant)
    assert {resource["kind"] for resource in resources} == {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    }
    for resource in resources:
        # strict: an unknown or misspelt field (a typo in a probe, say) fails instead of being ignored.
        kubernetes_validate.validate(resource, kubernetes_version, strict=True)


def test_schema_validation_rejects_a_misspelt_field():
    deployment = resources_by_kind("base")["Deployment"]
    api_container(deployment)["readinesProbe"] = api_container(deployment).pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[-1], strict=True)


@pytest.mark.parametrize("variant", VARIANTS)
def test_probes_ask_readyz_for_traffic_and_healthz_for_liveness(variant):
    container = api_container(resources_by_kind(variant)["Deployment"])
    port_names = {port["name"] for port in container["ports"]}
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] in port_names


@pytest.mark.parametrize("variant", VARIANTS)
def test_service_pdb_and_hpa_point_at_the_deployment(variant):
    resources = resources_by_kind(variant)
    deployment = resources["Deployment"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert resources["Service"]["spec"]["selector"].items() <= pod_labels.items()
    assert resources["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    target = resources["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    container_ports = {port["name"] for port in api_container(deployment)["ports"]}
    assert {port["targetPort"] for port in resources["Service"]["spec"]["ports"]} <= container_ports


@pytest.mark.parametrize("variant", VARIANTS)
def test_disruption_budget_keeps_a_replica_serving_at_minimum_scale(variant):
    resources = resources_by_kind(variant)
    minimum_replicas = resources["HorizontalPodAutoscaler"]["spec"]["minReplicas"]
    assert resources["PodDisruptionBudget"]["spec"]["maxUnavailable"] < minimum_replicas


@pytest.mark.parametrize("variant", VARIANTS)
def test_pods_drain_before_sigkill_as_the_non_root_image_user(variant):
    pod_spec = resources_by_kind(variant)["Deployment"]["spec"]["template"]["spec"]
    container = pod_spec["containers"][0]
    pre_stop_seconds = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    drain_seconds = pre_stop_seconds + GRACEFUL_SHUTDOWN_SECONDS
    assert pod_spec["terminationGracePeriodSeconds"] > drain_seconds
    assert pod_spec["securityContext"]["runAsNonRoot"] is True
    assert pod_spec["securityContext"]["runAsUser"] == IMAGE_UID
    assert f"--uid {IMAGE_UID}" in (REPO_ROOT / "Dockerfile").read_text()
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


@pytest.mark.parametrize("variant", VARIANTS)
def test_resources_are_bounded(variant):
    resources = api_container(resources_by_kind(variant)["Deployment"])["resources"]
    assert {"cpu", "memory"} <= resources["requests"].keys()
    assert {"cpu", "memory"} <= resources["limits"].keys()


@pytest.mark.parametrize("variant", VARIANTS)
def test_api_keys_come_from_an_optional_secret_never_from_the_manifest(variant):
    environment = {
        item["name"]: item for item in api_container(resources_by_kind(variant)["Deployment"])["env"]
    }
    api_keys = environment["DIGITSERVE_API_KEYS"]
    assert "value" not in api_keys
    secret = api_keys["valueFrom"]["secretKeyRef"]
    assert (secret["name"], secret["key"], secret["optional"]) == ("digitserve-api-keys", "api-keys", True)
    assert not any("KEY" in name and "value" in item for name, item in environment.items())


def test_only_the_gpu_variant_requests_a_gpu_and_runs_the_gpu_image():
    cpu_container = api_container(resources_by_kind("base")["Deployment"])
    gpu_container = api_container(resources_by_kind("gpu")["Deployment"])
    assert "nvidia.com/gpu" not in cpu_container["resources"]["limits"]
    assert gpu_container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert cpu_container["image"].endswith(":cpu") and gpu_container["image"].endswith(":gpu")
    # The patch replaces only the batching variables; the rest of the base environment survives.
    gpu_environment = {variable["name"]: variable for variable in gpu_container["env"]}
    assert gpu_environment["DIGITSERVE_BATCH_MAX_SIZE"]["value"] == "64"
    assert "DIGITSERVE_TF_INTRA_OP_THREADS" in gpu_environment
    assert len(gpu_container["env"]) == len(cpu_container["env"])


def test_strategic_merge_merges_named_lists_and_replaces_others():
    base = {"containers": [{"name": "a", "image": "x", "args": ["1"]}], "tolerations": [{"key": "k"}]}
    patch = {"containers": [{"name": "a", "image": "y"}], "tolerations": [{"key": "other"}]}
    assert merge_strategically(base, patch) == {
        "containers": [{"name": "a", "image": "y", "args": ["1"]}],
        "tolerations": [{"key": "other"}],
    }
