"""The tree's dependencies run one way, and the model contract is written once.

`app/api` -> `app/pipeline` -> `digits`; `training` -> `digits` (and the pipeline's pure stages);
`bench/` and `tests/` share `testkit/` and never import each other. Checked on the source itself
(imports read from the syntax tree, no module executed), so a stray import fails here first.
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
    return sorted(path for folder in folders for path in (REPO_ROOT / folder).rglob("*.py"))


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


def offenders(folders: tuple[str, ...], forbidden_prefixes: tuple[str, ...]) -> list[str]:
    return [
        f"{path.relative_to(REPO_ROOT)} imports {module}"
        for path in python_files(*folders)
        for module in sorted(imported_modules(path))
        if module.split(".")[0] in forbidden_prefixes or module.startswith(forbidden_prefixes)
    ]


@pytest.mark.parametrize(
    ("folders", "forbidden"),
    [
        (("digits",), ("app", "training", "fastapi", "starlette", "keras")),
        (("training",), ("app.api", "app.main", "fastapi", "starlette")),
        (("app/pipeline",), ("app.api", "fastapi", "starlette", "training")),
        (("app/api",), ("tensorflow", "digits.model", "training")),
        (("bench",), ("tests",)),
        (("tests",), ("bench",)),
        (("testkit",), ("tests", "bench")),
    ],
    ids=["core", "training", "pipeline", "http layer", "bench", "tests", "testkit"],
)
def test_dependencies_run_one_way(folders, forbidden):
    assert offenders(folders, forbidden) == []


def test_the_model_contract_is_assigned_in_one_module():
    assignments = []
    for path in python_files("digits", "app", "training", "bench", "testkit"):
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
        for path in python_files("digits", "app", "training")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and node.value in CONTRACT_FILE_NAMES
    }
    assert spelled_in == {"digits/model_store.py"}
