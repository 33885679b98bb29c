"""The module's functions, their graphs run for real in podman by the lane (see engine.py)."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import anyio
import pytest

from cuda_ci.main import CudaCi
from dagger import dag
from tests.container.conftest import SERVED_IDENTIFIERS, STAND_IN
from tests.container.engine import Lane
from tests.helpers import REPO_ROOT

UNITS = {"cuda-pathfinder": "cuda-pathfinder-v1.0.0", "cuda-bindings": "v13.0.0", "cuda-core": "cuda-core-v0.3.0"}


@pytest.mark.parametrize("unit", list(UNITS))
def test_release_dry_run_runs_in_containers(engine: Lane, module: CudaCi, unit: str) -> None:
    released = anyio.run(CudaCi.release, module, UNITS[unit], None, False, True)
    folder = engine.directory(released)
    manifest = json.loads((folder / "release-manifest.json").read_text())
    assert manifest["built_by"] == "dagger" and manifest["tag"] == UNITS[unit]
    names = sorted(f["name"] for f in manifest["files"] if f["kind"] in ("sdist", "wheel"))
    assert names and sorted(p.name for p in (folder / "dist").iterdir()) == names
    if unit == "cuda-bindings":
        assert any("-cp311-cp311-manylinux" in n for n in names), names
    assert (folder / "docs").is_dir() and any((folder / "docs").rglob("index.html"))
    log = json.loads((folder / "publish-log.json").read_text())
    assert log, "publish recorded what it did against the index services"
    assert any("cuda-ci publish" in " ".join(argv) or argv[1:2] == ["publish"] for argv in engine.log)


def test_cibuildwheel_builds_the_compiled_wheels_in_podman_and_validate_passes(
    podman: object, lane_repo: Path, tmp_path: Path
) -> None:
    """The host runner's `build --wheels-only` with a container engine: cibuildwheel's own Linux
    build (its [tool.cibuildwheel] selection, cut to what the stand-in image serves), then a
    release folder taking those wheels, validated here."""
    env = {
        **os.environ,
        "CUDA_CI_CONTAINER_ENGINE": "podman",
        "CONTAINERS_CONF": str(REPO_ROOT / ".ci" / "containers.conf"),
        "CIBW_MANYLINUX_X86_64_IMAGE": STAND_IN,
        "CIBW_BUILD": " ".join(sorted(SERVED_IDENTIFIERS)),
        "CIBW_ARCHS_LINUX": "x86_64",
    }
    cuda_ci = str(Path(sys.executable).parent / "cuda-ci")
    wheels = tmp_path / "wheels"
    built = subprocess.run(
        [cuda_ci, "build", "--tag", "v13.0.0", "--wheels-only", "--repo", str(lane_repo), "--out", str(wheels)],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    assert "cibuildwheel" in built.stdout + built.stderr, "the build ran cibuildwheel"
    (wheel,) = (wheels / "dist").glob("cuda_bindings-13.0.0-cp311-cp311-manylinux_*_x86_64.whl")
    release = tmp_path / "release"
    prebuilt = ["--prebuilt-wheels", str(wheels / "dist")]  # the Dagger module's hand-off flag
    for argv in (
        ["build", "--tag", "v13.0.0", *prebuilt, "--repo", str(lane_repo), "--out", str(release)],
        ["validate", "--release-dir", str(release), "--repo", str(lane_repo)],
    ):
        result = subprocess.run([cuda_ci, *argv], env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    manifest = json.loads((release / "release-manifest.json").read_text())
    assert manifest["build_identifiers"] == ["cp311-manylinux_x86_64"]
    assert wheel.name in {f["name"] for f in manifest["files"]}
    assert (release / "dist" / wheel.name).read_bytes() == wheel.read_bytes()


def test_cibuildwheel_builds_compiled_cuda_core_against_this_commits_bindings(
    podman: object, lane_repo: Path, tmp_path: Path
) -> None:
    """cuda-core's backend asks for cuda-bindings: cibuildwheel's before-build installs the declared
    build requirements and builds this commit's siblings from their sdists in the container, the
    wheel builds without isolation once per declared variant, and the two are merged."""
    env = {
        **os.environ,
        "CUDA_CI_CONTAINER_ENGINE": "podman",
        "CONTAINERS_CONF": str(REPO_ROOT / ".ci" / "containers.conf"),
        "CIBW_MANYLINUX_X86_64_IMAGE": STAND_IN,
        "CIBW_BUILD": " ".join(sorted(SERVED_IDENTIFIERS)),
        "CIBW_ARCHS_LINUX": "x86_64",
    }
    cuda_ci = str(Path(sys.executable).parent / "cuda-ci")
    wheels = tmp_path / "wheels"
    argv = [cuda_ci, "build", "--tag", "cuda-core-v0.3.0", "--wheels-only", "--repo", str(lane_repo)]
    argv += ["--out", str(wheels)]
    built = subprocess.run(argv, env=env, capture_output=True, text=True)
    output = built.stdout + built.stderr
    assert built.returncode == 0, output[-6000:]
    (wheel,) = (wheels / "dist").glob("cuda_core-0.3.0-cp311-cp311-*manylinux*_x86_64.whl")
    with zipfile.ZipFile(wheel) as archive:
        modules = sorted(n for n in archive.namelist() if n.endswith(".so"))
    assert [m.split("/")[2] for m in modules] == ["_cu12", "_cu13"], "one cibuildwheel run per variant, merged"


def test_a_ci_test_job_runs_in_containers(engine: Lane, module: CudaCi) -> None:
    output = anyio.run(CudaCi.test, module, "cuda-pathfinder", "3.11")
    assert "passed" in output


def test_lint_runs_in_containers(engine: Lane, module: CudaCi) -> None:
    anyio.run(CudaCi.lint, module)
    assert any(argv[1:2] == ["lint"] for argv in engine.log)


def test_tokens_reach_containers_only_as_secrets_of_one_exec(engine: Lane, module: CudaCi) -> None:
    token = "ghs_lane_token_never_printed_0123456789"
    secret = dag.set_secret("lane-token", token)
    check = functools.partial(CudaCi.preflight, module, "cuda-pathfinder-v1.0.0", dry_run=True, github_token=secret)
    findings = anyio.run(check)
    assert token not in findings
    assert not [argv for argv in engine.log if any(token in a for a in argv)], "never in an argv"
    for cid in engine.containers:
        inspected = engine.podman("inspect", cid, check=False).stdout.decode()
        assert token not in inspected, "never in a container's configuration"
