"""Print the requirements pyproject.toml pins: its dependencies, the extras named, its build backend.

    python3 requirements.py pyproject.toml [EXTRA ...] > requirements.txt

The images install these before the sources are copied (deploy/docker/Dockerfile), so a change
to the code rebuilds one small layer and the dependency layer stays cached. The standard library
only: it runs on the base image's Python before anything is installed.
"""

from __future__ import annotations

import sys
import tomllib


def requirements(pyproject: str, extras: list[str]) -> list[str]:
    with open(pyproject, "rb") as file:
        config = tomllib.load(file)
    project = config["project"]
    optional = [req for extra in extras for req in project["optional-dependencies"][extra]]
    return [*project["dependencies"], *optional, *config["build-system"]["requires"]]


if __name__ == "__main__":
    print("\n".join(requirements(sys.argv[1], sys.argv[2:])))
