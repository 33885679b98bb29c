"""Which engine cibuildwheel builds Linux wheels in, and what cuda-ci tells cibuildwheel."""

from __future__ import annotations

from pathlib import Path

import pytest

from cuda_ci.build.builder import native_cibuildwheel_platform
from cuda_ci.build.component_build import (
    BUILD_REQUIREMENTS,
    CONTAINER_BUILD_SIBLINGS,
    CONTAINER_SIBLINGS,
    cibuildwheel_environ,
    write_build_requirements,
)
from cuda_ci.build.frontend import ComponentBuild
from cuda_ci.build.identifiers import linux_container_engine
from cuda_ci.infra.components import BINDINGS, CORE
from cuda_ci.infra.errors import UsageError
from tests.helpers import REPO_ROOT


@pytest.mark.parametrize(("chosen", "engine"), [("none", None), ("docker", "docker"), ("podman", "podman")])
def test_the_setting_chooses_the_engine(chosen: str, engine: str | None) -> None:
    assert linux_container_engine({"CUDA_CI_CONTAINER_ENGINE": chosen}) == engine


def test_an_unknown_engine_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match=r"CUDA_CI_CONTAINER_ENGINE='lxc': choose auto, docker, podman or none"):
        linux_container_engine({"CUDA_CI_CONTAINER_ENGINE": "lxc"})


def test_linux_builds_with_cibuildwheel_only_with_an_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.platform", "linux")
    assert native_cibuildwheel_platform("podman") == "linux"
    assert native_cibuildwheel_platform(None) is None
    monkeypatch.setattr("sys.platform", "win32")
    assert native_cibuildwheel_platform(None) == "windows"


def test_cibuildwheel_mounts_this_commits_siblings_for_its_import_test(tmp_path: Path) -> None:
    sibling = tmp_path / "siblings" / "cuda_pathfinder-1.0.0-py3-none-any.whl"
    build = ComponentBuild(
        component=BINDINGS, sdist=False, wheel=True, repair=False, cibuildwheel_platform="linux",
        container_engine="podman", test_siblings=(sibling,),
    )  # fmt: skip
    environ = cibuildwheel_environ(build)
    assert environ["CIBW_CONTAINER_ENGINE"] == f"podman; create_args: --volume={sibling.parent}:{CONTAINER_SIBLINGS}:ro"
    assert environ["CIBW_ENVIRONMENT_PASS_LINUX"] == "LDFLAGS", "the host's strip flag reaches the container"
    assert environ["CIBW_BEFORE_TEST"] == (
        f"python -m pip install --no-index --no-deps {CONTAINER_SIBLINGS}/cuda_pathfinder-1.0.0-py3-none-any.whl"
    )
    native = cibuildwheel_environ(
        ComponentBuild(component=BINDINGS, sdist=False, wheel=True, repair=False, cibuildwheel_platform="windows",
                       test_siblings=(sibling,))
    )  # fmt: skip
    assert native == {
        "CIBW_BEFORE_TEST": f"python -m pip install --no-index --no-deps {sibling}",
        "CIBW_ARCHS_WINDOWS": "native",  # each Windows runner builds its own architecture's wheels
    }


def test_cibuildwheel_builds_cuda_core_against_this_commits_bindings_never_an_indexs(tmp_path: Path) -> None:
    """cuda-core's backend asks for cuda-bindings: cibuildwheel builds it without isolation, in an
    environment holding the declared build requirements and this commit's siblings, built for each
    identifier from their sdists (the index's cuda-bindings is another build of that name)."""
    sdists = tuple(tmp_path / "sdists" / n for n in ("cuda_pathfinder-1.0.0.tar.gz", "cuda_bindings-13.0.0.tar.gz"))
    build = ComponentBuild(
        component=CORE, sdist=False, wheel=True, repair=False, cibuildwheel_platform="linux",
        container_engine="podman", build_siblings=sdists,
    )  # fmt: skip
    environ = cibuildwheel_environ(build)
    assert environ["CIBW_CONTAINER_ENGINE"] == (
        f"podman; create_args: --volume={sdists[0].parent}:{CONTAINER_BUILD_SIBLINGS}:ro"
    )
    assert environ["CIBW_BUILD_FRONTEND"] == "build; args: --no-isolation --skip-dependency-check"
    folder = CONTAINER_BUILD_SIBLINGS
    assert environ["CIBW_BEFORE_BUILD"] == (
        f"python -m pip install -r {folder}/{BUILD_REQUIREMENTS} && python -m pip install "
        f"--no-deps {folder}/cuda_pathfinder-1.0.0.tar.gz {folder}/cuda_bindings-13.0.0.tar.gz"
    )
    written = write_build_requirements(REPO_ROOT / "cuda_core", tmp_path).read_text().splitlines()
    assert "Cython>=3.1,<3.4" in written and not any(r.startswith("build==") for r in written)
