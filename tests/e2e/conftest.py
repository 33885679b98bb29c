from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cuda_ci.infra.index import EmbeddedIndex, embedded_index
from tests.fakes.github import FakeGitHub
from tests.helpers import clone, folder_from, git, tagged_clone

TAGS = ("cuda-pathfinder-v1.0.0", "v13.0.0", "cuda-core-v0.3.0")


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    fake = FakeGitHub().start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def tagged_repo(template_repo: Path, tmp_path: Path) -> Path:
    """A clone whose main commit carries one release tag per unit (annotated for v13.0.0)."""
    repo = clone(template_repo, tmp_path / "repo")
    git(repo, "tag", "cuda-pathfinder-v1.0.0")
    git(repo, "tag", "-a", "v13.0.0", "-m", "cuda-bindings 13.0.0")
    git(repo, "tag", "cuda-core-v0.3.0")
    return repo


@pytest.fixture
def index_pair(tmp_path: Path) -> Iterator[dict[str, EmbeddedIndex]]:
    """Two real pypiservers on 127.0.0.1 standing in for TestPyPI and PyPI."""
    with embedded_index("testpypi", tmp_path / "testpypi") as test, embedded_index("pypi", tmp_path / "pypi") as prod:
        yield {"testpypi": test, "pypi": prod}


def index_environ(indexes: dict[str, EmbeddedIndex]) -> dict[str, str]:
    env = {}
    for name, index in indexes.items():
        env[f"CUDA_CI_{name.upper()}_UPLOAD_URL"] = index.upload_url
        env[f"CUDA_CI_{name.upper()}_SIMPLE_URL"] = index.simple_url
        env[f"CUDA_CI_{name.upper()}_TOKEN"] = f"pypi-fake-{name}-token"
    return env


@pytest.fixture
def github_env(monkeypatch: pytest.MonkeyPatch, github: FakeGitHub) -> FakeGitHub:
    """GitHub settings pointing at the loopback stand-in."""
    for key, value in github.environ().items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    monkeypatch.delenv("GH_TOKEN", raising=False)
    return github


@pytest.fixture
def release_env(
    monkeypatch: pytest.MonkeyPatch, github_env: FakeGitHub, index_pair: dict[str, EmbeddedIndex]
) -> FakeGitHub:
    """GitHub, TestPyPI and PyPI settings pointing at the loopback stand-ins."""
    for key, value in index_environ(index_pair).items():
        monkeypatch.setenv(key, value)
    return github_env


PATHFINDER_TAG = "cuda-pathfinder-v1.0.0"


@pytest.fixture(scope="session")
def pathfinder_release(template_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(repository, release folder) of one validated and documented cuda-pathfinder 1.0.0 release (a
    dry-run without publishing, GitHub out of reach), built once a session: tests read it, and copy
    the folder before a publish writes its log there."""
    root = tmp_path_factory.mktemp("pathfinder-release")
    repo = tagged_clone(template_repo, root, PATHFINDER_TAG)
    with pytest.MonkeyPatch.context() as patch:
        for name in ("GITHUB_TOKEN", "GH_TOKEN", "GITHUB_ACTIONS"):
            patch.delenv(name, raising=False)
        patch.setenv("GITHUB_API_URL", "http://127.0.0.1:9")
        patch.setenv("GITHUB_REPOSITORY", "NVIDIA/cuda-python")
        patch.setattr("cuda_ci.infra.httpclient.DEFAULT_BACKOFF", 0.01)
        folder = folder_from(repo, root, "release", "--tag", PATHFINDER_TAG, "--dry-run", "--no-publish")
    return repo, folder
