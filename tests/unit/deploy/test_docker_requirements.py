"""deploy/docker/requirements.py: pyproject dependencies -> one image's pip requirements."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from testkit.shared_data import REPO_ROOT

pytestmark = pytest.mark.unit

SCRIPT = REPO_ROOT / "deploy" / "docker" / "requirements.py"

PYPROJECT = """
[project]
name = "example"
dependencies = [
    "fastapi==1.0",
    "tensorflow-cpu==2.21.0; platform_machine == 'x86_64'",
    "tensorflow==2.21.0; platform_machine != 'x86_64'",
    "tensorflow-io==0.37",
]
[project.optional-dependencies]
train = ["h5py==3.14.0"]
"""


@pytest.fixture(scope="module")
def list_requirements():
    spec = importlib.util.spec_from_file_location("docker_requirements", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.list_requirements


@pytest.fixture
def pyproject(tmp_path: Path) -> Path:
    path = tmp_path / "pyproject.toml"
    path.write_text(PYPROJECT)
    return path


def test_every_tensorflow_flavour_is_replaced_by_the_requested_one(list_requirements, pyproject):
    requirements = list_requirements(pyproject, "tensorflow[and-cuda]==2.21.0", [])
    assert requirements == ["fastapi==1.0", "tensorflow-io==0.37", "tensorflow[and-cuda]==2.21.0"]


def test_extras_are_appended(list_requirements, pyproject):
    requirements = list_requirements(pyproject, "tensorflow-cpu==2.21.0", ["train"])
    assert "h5py==3.14.0" in requirements and requirements[-1] == "tensorflow-cpu==2.21.0"


def test_a_pyproject_without_tensorflow_is_an_error(list_requirements, tmp_path):
    path = tmp_path / "pyproject.toml"
    path.write_text('[project]\nname = "x"\ndependencies = ["fastapi==1.0"]\n')
    with pytest.raises(SystemExit, match="no TensorFlow dependency"):
        list_requirements(path, "tensorflow-cpu==2.21.0", [])


def test_the_real_pyproject_yields_the_cpu_image_requirements(list_requirements):
    requirements = list_requirements(REPO_ROOT / "pyproject.toml", "tensorflow-cpu==2.21.0", [])
    assert [line for line in requirements if line.startswith("tensorflow")] == ["tensorflow-cpu==2.21.0"]
    assert any(line.startswith("fastapi==") for line in requirements)
