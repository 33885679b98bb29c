"""dagger.json, the pipeline's pyproject and its lock follow the layout Dagger's Python runtime installs."""

from __future__ import annotations

import json
import tomllib

from tests.helpers import REPO_ROOT
from tests.lockfile import ci_script


def _pyproject() -> dict:  # type: ignore[type-arg]
    return tomllib.loads((REPO_ROOT / "dagger" / "pyproject.toml").read_text())


def _engine_version() -> str:
    return str(json.loads((REPO_ROOT / "dagger.json").read_text())["engineVersion"]).removeprefix("v")


def test_dagger_json_names_the_module_and_filters_only_what_the_module_loads() -> None:
    config = json.loads((REPO_ROOT / "dagger.json").read_text())
    assert config["name"] == "cuda-ci"
    assert config["sdk"]["source"] == "python"
    assert config["source"] == "dagger"
    # `include` applies to loading the module itself (dagger.json and dagger/), never to the
    # DefaultPath source, which CudaCi.create filters with its own Ignore list.
    assert config["include"], "exclude local environments from the module upload"
    assert all(p.removeprefix("!").startswith("dagger/") for p in config["include"]), config["include"]
    assert {"!dagger/sdk", "!dagger/.venv"} <= set(config["include"])


def test_dagger_io_is_a_runtime_dependency_vendored_from_sdk() -> None:
    project = _pyproject()
    dependencies = project["project"]["dependencies"]
    # The runtime runs `uv sync --no-dev` (no extras): dagger-io must be a plain dependency.
    assert "dagger-io" in dependencies, "Dagger's template writes it unpinned: the engine vendors its SDK"
    extras = project["project"].get("optional-dependencies", {})
    assert not any(d.startswith("dagger-io") for group in extras.values() for d in group)
    assert project["tool"]["uv"]["sources"]["dagger-io"] == {"path": "sdk", "editable": True}
    assert project["project"]["entry-points"]["dagger.mod"]["main_object"] == "cuda_ci.main:CudaCi"
    assert project["project"]["scripts"]["cuda-ci"] == "cuda_ci.cli.app:main"
    assert "dagger/sdk/" in (REPO_ROOT / ".gitignore").read_text().splitlines(), "sdk/ is generated"


def test_the_lock_takes_dagger_io_from_sdk() -> None:
    lock = tomllib.loads((REPO_ROOT / "dagger" / "uv.lock").read_text())
    (package,) = [p for p in lock["package"] if p["name"] == "dagger-io"]
    assert package["source"] == {"editable": "sdk"}
    (project,) = [p for p in lock["package"] if p["name"] == "cuda-ci"]
    assert {"name": "dagger-io"} in project["dependencies"]


def test_the_vendored_sdk_is_the_engines_release_checked_by_hash() -> None:
    script = ci_script("dagger_sdk")
    assert _engine_version() in script.SDIST_SHA256, "pin the sdist sha256 of dagger.json's engineVersion"
    pyproject = '[project]\nname = "x"\n[dependency-groups]\ndev = ["codegen"]\n[tool.uv.sources]\ncodegen = 1\n'
    assert script.without_development_tables(pyproject) == '[project]\nname = "x"\n'


def test_the_runtime_base_image_is_pinned_by_digest() -> None:
    image = _pyproject()["tool"]["dagger"]["base-image"]
    assert image.startswith("python:3.14-slim@sha256:") and len(image.split("@sha256:")[1]) == 64
    # the runtime's own pin for dagger.json's engineVersion (sdk/python/runtime/images/base/Dockerfile)
    assert image.endswith("@sha256:486b8092bfb12997e10d4920897213a06563449c951c5506c2a2cfaf591c599f")


def test_only_the_dagger_executor_imports_dagger() -> None:
    text = (REPO_ROOT / "dagger" / "src" / "cuda_ci" / "__init__.py").read_text()
    assert "import dagger" not in text and "from dagger" not in text
    root = REPO_ROOT / "dagger" / "src" / "cuda_ci"
    dagger_modules = ("dagger_nodes.py", "dagger_wheels.py", "dagger_graph.py")
    executor = {root / "main.py", *(root / "executors" / f for f in dagger_modules)}
    for module in root.rglob("*.py"):
        if module not in executor:
            source = module.read_text()
            assert "import dagger" not in source and "from dagger" not in source, module.name


def test_containers_and_workflows_install_the_engines_sdk_release() -> None:
    for name in ("cuda-ci.txt", "cuda-ci-dev.txt"):
        text = (REPO_ROOT / "dagger" / "locked" / name).read_text()
        assert f"\ndagger-io=={_engine_version()} \\\n" in text, name
