"""pyproject.toml -> the pip requirement lines of one image, with the TensorFlow flavour swapped in.

The Dockerfile installs dependencies in a layer of their own, before any source is copied, so that
editing the code does not re-download TensorFlow. This prints `[project].dependencies` (plus the
optional-dependency groups named with `--extra`), with every TensorFlow line replaced by the one
requirement given with `--tensorflow` (`tensorflow-cpu==2.21.0` by default, `tensorflow[and-cuda]==...`
for the GPU image).

    python deploy/docker/requirements.py --tensorflow 'tensorflow[and-cuda]==2.21.0' --extra train
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

TENSORFLOW_DISTRIBUTION = re.compile(r"^tensorflow(-cpu|-gpu)?\s*(\[|[=<>!~;]|$)", re.IGNORECASE)


def list_requirements(pyproject_path: Path, tensorflow_requirement: str, extras: list[str]) -> list[str]:
    """Returns the requirement lines: runtime dependencies and extras, one TensorFlow line."""
    project = tomllib.loads(pyproject_path.read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in extras:
        requirements += project["optional-dependencies"][extra]
    kept = [line for line in requirements if not TENSORFLOW_DISTRIBUTION.match(line.strip())]
    if len(kept) == len(requirements):
        raise SystemExit(f"{pyproject_path}: no TensorFlow dependency found to replace")
    return [*kept, tensorflow_requirement]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pyproject", type=Path, default=Path("pyproject.toml"))
    parser.add_argument("--tensorflow", default="tensorflow-cpu==2.21.0")
    parser.add_argument("--extra", action="append", default=[], help="optional-dependency group")
    args = parser.parse_args(argv)
    sys.stdout.write("\n".join(list_requirements(args.pyproject, args.tensorflow, args.extra)) + "\n")


if __name__ == "__main__":
    main()
