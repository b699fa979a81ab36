"""The tree's dependencies run one way, and the model contract is written once.

`app/api` -> `app/pipeline` -> `digits`; `training` -> `digits` (and the pipeline's pure stages);
`digitserve` (the command line and client) -> `app` and `digits`, never the other way, and its client
modules need neither; `bench/` and `tests/` share `testkit/` and never import each other. Checked on
the source itself (imports read from the syntax tree, no module executed), so a stray import fails
here first.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTRACT_NAMES = {"IMAGE_SHAPE", "NUM_CLASSES", "INK_LEVEL_MAX", "CANVAS_SIZE_PIXELS"}
CONTRACT_FILE_NAMES = {"model_card.json", "saved_model.pb"}


def python_files(*folders: str) -> list[Path]:
    """The Python files of folders, or the files themselves."""
    paths = [REPO_ROOT / folder for folder in folders]
    return sorted(file for path in paths for file in ([path] if path.is_file() else path.rglob("*.py")))


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, type-checking-only imports excepted (they never load)."""
    tree = ast.parse(path.read_text())
    type_checking_only = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and ast.unparse(block.test) == "TYPE_CHECKING"
        for node in ast.walk(block)
    }
    modules = set()
    for node in ast.walk(tree):
        if id(node) in type_checking_only:
            continue
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            modules.add(node.module)
    return modules


def is_within(module: str, package: str) -> bool:
    """Whether `module` is `package` or inside it (`digits` holds `digits.model`, not `digitserve`)."""
    return module == package or module.startswith(f"{package}.")


def offenders(folders: tuple[str, ...], forbidden_packages: tuple[str, ...]) -> list[str]:
    return [
        f"{path.relative_to(REPO_ROOT)} imports {module}"
        for path in python_files(*folders)
        for module in sorted(imported_modules(path))
        if any(is_within(module, package) for package in forbidden_packages)
    ]


@pytest.mark.parametrize(
    ("folders", "forbidden"),
    [
        (("digits",), ("app", "training", "digitserve", "fastapi", "starlette", "keras")),
        (("training",), ("app.api", "app.main", "digitserve", "fastapi", "starlette")),
        (("app",), ("digitserve",)),
        (("app/pipeline",), ("app.api", "fastapi", "starlette", "training")),
        (("app/api",), ("tensorflow", "digits.model", "training")),
        (("digitserve",), ("training", "tests", "bench", "testkit")),
        (
            ("digitserve/client.py", "digitserve/exchange.py", "digitserve/results.py"),
            ("app", "digits", "training", "tensorflow", "fastapi", "starlette"),
        ),
        (("bench",), ("tests",)),
        (("tests",), ("bench",)),
        (("testkit",), ("tests", "bench")),
    ],
    ids=[
        "core",
        "training",
        "service",
        "pipeline",
        "http layer",
        "command line",
        "client",
        "bench",
        "tests",
        "testkit",
    ],
)
def test_dependencies_run_one_way(folders, forbidden):
    assert offenders(folders, forbidden) == []


def test_the_model_contract_is_assigned_in_one_module():
    assignments = []
    for path in python_files("digits", "app", "training", "digitserve", "bench", "testkit"):
        for node in ast.walk(ast.parse(path.read_text())):
            targets = node.targets if isinstance(node, ast.Assign) else []
            names = {target.id for target in targets if isinstance(target, ast.Name)}
            if names & CONTRACT_NAMES:
                assignments.append(f"{path.relative_to(REPO_ROOT)}: {sorted(names & CONTRACT_NAMES)}")
    assert assignments == [
        "digits/contract.py: ['CANVAS_SIZE_PIXELS']",
        "digits/contract.py: ['IMAGE_SHAPE']",
        "digits/contract.py: ['NUM_CLASSES']",
        "digits/contract.py: ['INK_LEVEL_MAX']",
    ]


def test_the_model_folder_file_names_are_spelled_in_one_module():
    spelled_in = {
        str(path.relative_to(REPO_ROOT))
        for path in python_files("digits", "app", "training", "digitserve")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and node.value in CONTRACT_FILE_NAMES
    }
    assert spelled_in == {"digits/model_store.py"}
