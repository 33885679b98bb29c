"""The container lane: the Dagger module's own graph, run for real in podman (see engine.py).

Where podman is missing (a laptop) the lane skips, saying why; `bash .ci/run` sets
CUDA_CI_CONTAINER_LANE=required, so CI fails instead of skipping.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import dagger
from cuda_ci.executors.dagger_parts import CUDA_IMAGE, SOURCE_IGNORE, TOOL_PYTHON, TOOLING_IMAGE
from cuda_ci.main import CudaCi
from dagger import dag
from tests.container.engine import Lane, lane
from tests.container.execs import Substitutions
from tests.container.podman import Podman
from tests.helpers import REPO_ROOT, git

STAND_IN = "localhost/cuda-ci-lane-manylinux:latest"
# The stand-in's one interpreter: Debian bookworm's Python 3.11, the oldest Python cuda-ci claims.
STAND_IN_PYTHON = "/opt/python/cp311-cp311/bin/python"
SERVED_IDENTIFIER = "cp311-manylinux_x86_64"
TAGS = ("cuda-pathfinder-v1.0.0", "v13.0.0", "cuda-core-v0.3.0")


@dataclass(frozen=True)
class StandIn:
    """One thing the lane runs in place of what the graph names, and why the stand-in image forces it."""

    kind: str  # image | interpreter | argument | call | selection
    graph: str  # what the graph (or the repository) names
    lane: str  # what the lane uses instead
    why: str


# Every substitution the lane makes, in one place (docs/testing.md lists the same table; a test checks).
STAND_INS = (
    StandIn("image", TOOLING_IMAGE, STAND_IN,
            "no registry is reachable here: cibuildwheel's pinned manylinux_2_28 x86_64 image (tooling, wheel "
            "and smoke nodes, the index services; cibuildwheel's own x86_64 builds) is built from Debian packages"),
    StandIn("image", CUDA_IMAGE, STAND_IN,
            "no registry is reachable here: the GPU job's CUDA base image; the same stand-in (no CUDA runtime, "
            "which the GPU job does not install either: the driver comes with the GPUs)"),
    StandIn("interpreter", TOOL_PYTHON, STAND_IN_PYTHON,
            "the stand-in holds one CPython (Debian's 3.11); the tooling interpreter and every 3.12 job use it"),
    StandIn("argument", "--python-preference only-managed", "--python-preference only-system",
            "uv downloads managed CPython builds from GitHub, out of reach here: the GPU job's interpreter is "
            "the image's own python3.11"),
    StandIn("call", "experimentalWithAllGPUs", "(removed)", "no GPU and no NVIDIA container toolkit here"),
    StandIn("selection", '[tool.cibuildwheel] build / [tool.cibuildwheel.linux] archs', f"{SERVED_IDENTIFIER}",
            "the stand-in serves one identifier: the lane repository's components select only it (so cuda-ci's "
            "plan and build, reading the same configuration, agree)"),
)  # fmt: skip


def substitutions() -> Substitutions:
    rows = {kind: [r for r in STAND_INS if r.kind == kind] for kind in ("image", "interpreter", "argument", "call")}
    return Substitutions(
        images={r.graph: r.lane for r in rows["image"]},
        paths={r.graph: r.lane for r in rows["interpreter"]},
        arguments={tuple(r.graph.split()): tuple(r.lane.split()) for r in rows["argument"]},
        removed_calls=frozenset(r.graph for r in rows["call"]),
    )


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


def cut_selection(repo: Path) -> None:
    """The components' cibuildwheel selection, cut to the identifier the stand-in serves (STAND_INS)."""
    python, arch = SERVED_IDENTIFIER.split("-manylinux_")
    for pyproject in sorted(repo.glob("cuda_*/pyproject.toml")):
        text = pyproject.read_text()
        if "[tool.cibuildwheel]" not in text:
            continue
        text, builds = re.subn(r'(?m)^build = ".*"$', f'build = "{python}-*"', text)
        text, archs = re.subn(r'(?m)^archs = \["x86_64", "aarch64"\]$', f'archs = ["{arch}"]', text)
        assert builds == 1 and archs == 1, f"{pyproject}: the lane's selection cut no longer matches it"
        pyproject.write_text(text)


@pytest.fixture(scope="session")
def lane_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This working tree as a fresh repository on main, every tracked and new file, one tag per unit,
    cibuildwheel's selection cut to what the stand-in serves."""
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
    cut_selection(repo)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "the working tree")
    for tag in TAGS:
        git(repo, "tag", tag)
    return repo


@pytest.fixture(scope="session")
def broken_repo(lane_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The lane repository one commit later, where one cuda-pathfinder test fails (lint still passes)."""
    repo = tmp_path_factory.mktemp("lane-broken") / "repo"
    git(lane_repo.parent, "clone", "-q", "--no-local", str(lane_repo), str(repo))
    failing = repo / "cuda_pathfinder" / "tests" / "test_lane_failure.py"
    failing.write_text(
        '"""A failure the container lane adds to one CI job."""\n\nimport pytest\n\n\n'
        "def test_the_lane_breaks_this_job() -> None:\n"
        '    pytest.fail("the container lane broke this job on purpose")\n'
    )
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "break one test")
    return repo


@pytest.fixture(scope="session")
def engine(podman: Podman, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lane]:
    workdir = tmp_path_factory.mktemp("lane-work")
    with lane(podman, substitutions(), workdir) as running, pytest.MonkeyPatch.context() as patch:
        _route_through(running, patch)
        yield running


def _route_through(running: Lane, patch: pytest.MonkeyPatch) -> None:
    """What the engine would do with the module's lazy objects, done by the lane instead."""

    async def stdout(self: dagger.Container) -> str:
        return running.stdout(self)

    async def exists(self: dagger.Directory, path: str, *, expected_type: Any = None, **_: Any) -> bool:
        return running.exists(self, path, expected_type)

    async def contents(self: dagger.File) -> str:
        return running.contents(self)

    async def exit_code(self: dagger.Container) -> int:
        return running.exit_code(self)

    async def stderr(self: dagger.Container) -> str:
        return running.stderr_of(self)

    patch.setattr(dagger.Container, "stdout", stdout)
    patch.setattr(dagger.Container, "exit_code", exit_code)
    patch.setattr(dagger.Container, "stderr", stderr)
    patch.setattr(dagger.Directory, "exists", exists)
    patch.setattr(dagger.File, "contents", contents)


def module_on(repo: Path) -> CudaCi:
    """The module as `dagger call` in ``repo`` would construct it (DefaultPath "/", Ignore)."""
    return CudaCi(source=dag.host().directory(str(repo), exclude=SOURCE_IGNORE))  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def module(lane_repo: Path) -> CudaCi:
    return module_on(lane_repo)
