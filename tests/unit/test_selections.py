"""The compiled components select what upstream ships (November 2026), as cibuildwheel itself reads
their ``[tool.cibuildwheel]``: the expected sets, the Dagger wheel jobs and the smoke Pythons follow."""

from __future__ import annotations

import pytest

from cuda_ci.build.identifiers import native_archs
from cuda_ci.build.wheel_jobs import linux_wheel_jobs, selected_identifiers
from cuda_ci.infra.components import COMPONENTS, Component
from tests.helpers import REPO_ROOT

COMPILED = [c for c in COMPONENTS if c.wheel == "platform"]
UPSTREAM_PYTHONS = {"cp310", "cp311", "cp312", "cp313", "cp314", "cp314t", "cp315", "cp315t"}


def _pythons(identifiers: list[str], platform: str) -> set[str]:
    return {i.split("-")[0] for i in identifiers if i.endswith(platform)}


@pytest.mark.parametrize("component", COMPILED, ids=lambda c: c.distribution)
def test_cibuildwheel_selects_cpython_3_10_to_3_15_and_free_threaded_3_14t_3_15t(component: Component) -> None:
    package_dir = REPO_ROOT / component.dir
    linux = selected_identifiers(package_dir, "linux")
    windows = selected_identifiers(package_dir, "windows")
    for arch in ("manylinux_x86_64", "manylinux_aarch64"):
        assert _pythons(linux, arch) == UPSTREAM_PYTHONS, arch
    assert _pythons(windows, "win_amd64") == UPSTREAM_PYTHONS
    assert {"cp315-win_amd64", "cp315t-win_amd64"} <= set(windows)
    assert not any(i.startswith("cp313t") for i in [*linux, *windows]), "upstream no longer ships 3.13t"
    # The Dagger graph's wheel jobs are exactly cibuildwheel's Linux selection.
    assert [job.identifier for job in linux_wheel_jobs(package_dir)] == linux


def test_only_cuda_core_selects_windows_on_arm() -> None:
    core = selected_identifiers(REPO_ROOT / "cuda_core", "windows")
    bindings = selected_identifiers(REPO_ROOT / "cuda_bindings", "windows")
    assert _pythons(core, "win_arm64") == UPSTREAM_PYTHONS, "cuda-core ships win_arm64 since 1.2.1"
    assert not _pythons(bindings, "win_arm64"), "cuda-bindings ships no win_arm64 wheels"


def test_a_windows_runner_builds_only_its_own_architecture() -> None:
    """The windows-latest job builds the AMD64 identifiers, the windows-11-arm job the ARM64 ones."""
    assert native_archs("linux") == {}
    native = selected_identifiers(REPO_ROOT / "cuda_core", "windows", native_archs("windows"))
    assert native and len({i.rsplit("-", 1)[1] for i in native}) == 1, native
    assert set(native) < set(selected_identifiers(REPO_ROOT / "cuda_core", "windows"))
