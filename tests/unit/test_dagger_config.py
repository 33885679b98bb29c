"""dagger.json, the pipeline's pyproject and its lock agree; the host CLI never needs dagger."""

from __future__ import annotations

import json
import re
import tomllib

from tests.helpers import REPO_ROOT


def _pyproject() -> dict:  # type: ignore[type-arg]
    return tomllib.loads((REPO_ROOT / "dagger" / "pyproject.toml").read_text())


def _pinned_dagger_io() -> str:
    deps = _pyproject()["project"]["optional-dependencies"]["dagger"]
    (pin,) = [d for d in deps if d.startswith("dagger-io==")]
    return pin.split("==")[1]


def test_dagger_json_names_the_module_and_pins_the_engine() -> None:
    config = json.loads((REPO_ROOT / "dagger.json").read_text())
    assert config["name"] == "cuda-ci"
    assert config["sdk"]["source"] == "python"
    assert config["source"] == "dagger"
    assert config["engineVersion"] == f"v{_pinned_dagger_io()}"
    excluded = {p.lstrip("!") for p in config["include"] if p.startswith("!")}
    assert {".venv", ".release", "**/__pycache__", ".mypy_cache"} <= excluded


def test_entry_point_and_console_script() -> None:
    project = _pyproject()["project"]
    assert project["entry-points"]["dagger.mod"]["main_object"] == "cuda_ci.main:CudaCi"
    assert project["scripts"]["cuda-ci"] == "cuda_ci.cli:main"
    assert not any(d.startswith("dagger-io") for d in project["dependencies"]), "the host CLI never needs dagger"


def test_the_lock_holds_the_pinned_sdk() -> None:
    lock = (REPO_ROOT / "dagger" / "uv.lock").read_text()
    assert re.search(rf'name = "dagger-io"\nversion = "{re.escape(_pinned_dagger_io())}"', lock)


def test_package_init_does_not_import_dagger() -> None:
    text = (REPO_ROOT / "dagger" / "src" / "cuda_ci" / "__init__.py").read_text()
    assert "import dagger" not in text and "from dagger" not in text
    for module in (REPO_ROOT / "dagger" / "src" / "cuda_ci").glob("*.py"):
        if module.name != "main.py":
            source = module.read_text()
            assert "import dagger" not in source and "from dagger" not in source, module.name
