"""The container lane: the Dagger module's own graph, run for real in podman (see engine.py).

Where podman is missing (a laptop) the lane skips, saying why; `bash .ci/run` sets
CUDA_CI_CONTAINER_LANE=required, so CI fails instead of skipping.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import cuda_ci.main
import dagger
from cuda_ci.build.wheel_jobs import LinuxWheelJob
from cuda_ci.main import SOURCE_IGNORE, TOOLING_IMAGE, CudaCi
from dagger import dag
from tests.container.engine import Lane, Podman, lane
from tests.helpers import REPO_ROOT, git

STAND_IN = "localhost/cuda-ci-lane-manylinux:latest"
# The stand-in's one interpreter: Debian bookworm's Python 3.11, the oldest Python cuda-ci claims.
STAND_IN_PYTHON = "/opt/python/cp311-cp311/bin/python"
SERVED_IDENTIFIERS = {"cp311-manylinux_x86_64"}
TAGS = ("cuda-pathfinder-v1.0.0", "v13.0.0", "cuda-core-v0.3.0")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/container/" in str(item.path):
            item.add_marker(pytest.mark.container)


@pytest.fixture(scope="session")
def podman() -> Podman:
    required = os.environ.get("CUDA_CI_CONTAINER_LANE") == "required"
    missing = [tool for tool in ("podman", "runc") if not shutil.which(tool)]
    engine = Podman(conf=REPO_ROOT / ".ci" / "containers.conf")
    if missing:
        _unavailable(f"container lane: {', '.join(missing)} not installed (bash .ci/setup installs them)", required)
    if not engine.image_exists(STAND_IN):
        _unavailable(f"container lane: image {STAND_IN} missing (bash .ci/images builds it)", required)
    return engine


def _unavailable(reason: str, required: bool) -> None:
    if required:
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def lane_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This working tree as a fresh repository on main, every tracked and new file, one tag per unit."""
    repo = tmp_path_factory.mktemp("lane") / "repo"
    files = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (f.decode() for f in files)):
        source = REPO_ROOT / name
        if source.is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, repo / name)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "the working tree")
    for tag in TAGS:
        git(repo, "tag", tag)
    return repo


@pytest.fixture(scope="session")
def engine(podman: Podman, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lane]:
    workdir = tmp_path_factory.mktemp("lane-work")
    # cibuildwheel's selection cut to what the stand-in serves, for the graph's wheel jobs (below) and
    # for cuda-ci's own reading of it inside the containers alike.
    cut = {"CIBW_BUILD": " ".join(sorted(SERVED_IDENTIFIERS)), "CIBW_ARCHS_LINUX": "x86_64"}
    with lane(podman, {TOOLING_IMAGE: STAND_IN}, workdir, cut) as running, pytest.MonkeyPatch.context() as patch:
        _route_through(running, patch)
        yield running


def _served_jobs(jobs: list[LinuxWheelJob]) -> list[LinuxWheelJob]:
    """cibuildwheel's selection, cut to the identifiers the stand-in image can serve."""
    return [job for job in jobs if job.identifier in SERVED_IDENTIFIERS]


def _route_through(running: Lane, patch: pytest.MonkeyPatch) -> None:
    """What the engine would do with the module's lazy objects, done by the lane instead."""
    original_jobs = cuda_ci.main.linux_wheel_jobs

    async def stdout(self: dagger.Container) -> str:
        return running.stdout(self)

    async def exists(self: dagger.Directory, path: str, **_: Any) -> bool:
        return running.exists(self, path)

    async def contents(self: dagger.File) -> str:
        return running.contents(self)

    patch.setattr(dagger.Container, "stdout", stdout)
    patch.setattr(dagger.Directory, "exists", exists)
    patch.setattr(dagger.File, "contents", contents)
    patch.setattr(cuda_ci.main, "TOOL_PYTHON", STAND_IN_PYTHON)
    patch.setattr(cuda_ci.main, "linux_wheel_jobs", lambda path: _served_jobs(original_jobs(path)))
    for job in _served_jobs(original_jobs(REPO_ROOT / "cuda_bindings")):
        running.images = {**running.images, job.image: STAND_IN}


@pytest.fixture(scope="session")
def module(lane_repo: Path) -> CudaCi:
    """The module as `dagger call` in the lane repository would construct it (DefaultPath "/", Ignore)."""
    return CudaCi(source=dag.host().directory(str(lane_repo), exclude=SOURCE_IGNORE))  # type: ignore[call-arg]
