from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import clone, make_monorepo


@pytest.fixture(scope="session")
def template_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_monorepo(tmp_path_factory.mktemp("template") / "repo")


@pytest.fixture
def monorepo(template_repo: Path, tmp_path: Path) -> Path:
    """A full clone of the template: main, no tags; each test may tag and commit freely."""
    return clone(template_repo, tmp_path / "repo")


@pytest.fixture(scope="session", autouse=True)
def tool_env_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Kept tool environments in one folder per test session: never the user's cache, warm after the first."""
    from cuda_ci.infra import toolenvs

    folder = tmp_path_factory.mktemp("cuda-ci-cache")
    previous = os.environ.get("CUDA_CI_CACHE_DIR")
    os.environ["CUDA_CI_CACHE_DIR"] = str(folder)  # what the CLI reads (Settings.cache_dir)
    try:
        with toolenvs.use_cache_dir(folder):  # for the tests that call toolenvs below the CLI
            yield folder
    finally:
        if previous is None:
            os.environ.pop("CUDA_CI_CACHE_DIR", None)
        else:
            os.environ["CUDA_CI_CACHE_DIR"] = previous


@pytest.fixture(scope="session", autouse=True)
def no_container_engine() -> Iterator[None]:
    """Host-runner tests build with this interpreter whatever engine the machine has; the container
    lane (tests/container) chooses podman where it means to."""
    previous = os.environ.get("CUDA_CI_CONTAINER_ENGINE")
    os.environ["CUDA_CI_CONTAINER_ENGINE"] = "none"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("CUDA_CI_CONTAINER_ENGINE", None)
        else:
            os.environ["CUDA_CI_CONTAINER_ENGINE"] = previous
