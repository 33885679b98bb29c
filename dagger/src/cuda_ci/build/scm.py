"""The version setuptools-scm gives a component, read from the component's own configuration."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path
from typing import Any

from cuda_ci.infra.components import Component
from cuda_ci.infra.errors import CommandError, UsageError
from cuda_ci.infra.process import capture


def scm_settings(tree: Path, component: Component) -> dict[str, Any]:
    """The ``[tool.setuptools_scm]`` table of the component's pyproject."""
    pyproject = tree / component.dir / "pyproject.toml"
    if not pyproject.is_file():
        raise UsageError(f"{pyproject} is missing: is {tree} the cuda-python monorepo?")
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    settings: dict[str, Any] = data.get("tool", {}).get("setuptools_scm", {})
    return settings


def component_version(tree: Path, component: Component) -> str:
    """What setuptools-scm computes for ``component`` in the checkout ``tree`` (at its HEAD).

    Runs setuptools-scm's own command line on the component's pyproject, so the answer is
    exactly what a build would get.
    """
    scm_settings(tree, component)  # a clear error when the component is missing
    package_dir = tree / component.dir
    result = capture(
        [sys.executable, "-m", "setuptools_scm", "--config", str(package_dir / "pyproject.toml")],
        cwd=package_dir,
        timeout=120,
    )
    if result.returncode != 0 or not result.stdout.strip():
        raise CommandError(f"setuptools-scm for {component.distribution}", result.returncode, result.stderr)
    return result.stdout.strip().splitlines()[-1]
