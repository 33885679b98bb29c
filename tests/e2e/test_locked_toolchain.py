"""The locked toolchain for real: the exports equal `uv export` of the lock, .venv holds the lock's
versions, cuda-ci's version comes from its own tags in a real repository, and set-up names what a
machine lacks."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from tests.helpers import REPO_ROOT, git
from tests.lockfile import applies_here, ci_script, lock_entries

pytestmark = pytest.mark.e2e
VENV_BIN = Path(sys.executable).parent
# Installed from this checkout, editable, by .ci/setup; the lock names no version for them (cuda-ci's
# comes from git) or does not name them at all (the components: their versions come from their tags).
EDITABLE_LOCAL = {"cuda-ci", "cuda-pathfinder", "cuda-bindings", "cuda-core", "cuda-python"}


def test_the_requirement_files_are_the_locks_export() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / ".ci" / "locked.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_a_stale_requirement_file_is_named(tmp_path: Path) -> None:
    locked = ci_script("locked")
    copy = tmp_path / "locked"
    shutil.copytree(locked.LOCKED, copy)
    (copy / "uv.txt").write_text((copy / "uv.txt").read_text().replace("uv==", "uv==0.0.1\n# was uv=="))
    locked.LOCKED = copy
    assert locked.main(["--check"]) == 1
    assert locked.main([]) == 0 and locked.main(["--check"]) == 0, "regenerating makes it the lock's again"


def test_every_distribution_in_the_environment_has_the_locks_version() -> None:
    entries = lock_entries()
    wrong, unlocked = [], []
    for distribution in metadata.distributions():
        name = canonicalize_name(distribution.metadata["Name"])
        if name in EDITABLE_LOCAL:
            continue
        versions = {e.get("version") for e in entries.get(name, []) if applies_here(e)}
        if not versions:
            unlocked.append(f"{name} {distribution.version}")
        elif distribution.version not in versions:
            wrong.append(f"{name} {distribution.version} (the lock: {', '.join(sorted(map(str, versions)))})")
    assert (wrong, unlocked) == ([], []), "run bash .ci/setup: .venv differs from dagger/uv.lock"


def _scm_version(project: Path) -> str:
    argv = [sys.executable, "-m", "setuptools_scm", "--config", str(project / "pyproject.toml")]
    return subprocess.run(argv, cwd=project, capture_output=True, text=True, check=True).stdout.strip()


def test_cuda_cis_version_comes_from_its_own_tags(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "dagger").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "dagger" / "pyproject.toml", repo / "dagger")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "cuda-ci")
    assert _scm_version(repo / "dagger").startswith("0.1.dev1+g"), "no cuda-ci tag yet: a dev version"
    git(repo, "tag", "cuda-ci-v1.2.0")
    assert _scm_version(repo / "dagger") == "1.2.0"
    (repo / "notes.txt").write_text("a component's release\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "a component release")
    for component_tag in ("v13.0.0", "cuda-core-v0.3.0", "cuda-pathfinder-v1.0.0"):
        git(repo, "tag", component_tag)
    assert _scm_version(repo / "dagger").startswith("1.2.1.dev1+g"), "the components' tags are not cuda-ci's"
    shutil.rmtree(repo / ".git")
    assert _scm_version(repo / "dagger") == "0.0", "no history (the Dagger runtime's copy): the fallback"


# --- .ci/prerequisites ---------------------------------------------------------------------------
def _prerequisites(tmp_path: Path, present: list[str], **environ: str) -> subprocess.CompletedProcess[str]:
    """.ci/prerequisites with only ``present`` (and ``id``) on PATH: no apt-get, so nothing is installed."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True)
    tools = {"python3": os.path.realpath(sys._base_executable)}  # type: ignore[attr-defined]
    for name in ["id", *present]:
        (bin_dir / name).symlink_to(tools.get(name) or shutil.which(name) or name)
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path), **environ}
    bash = shutil.which("bash") or "bash"
    return subprocess.run([bash, str(REPO_ROOT / ".ci" / "prerequisites")], capture_output=True, text=True, env=env)


@pytest.mark.parametrize("absent", ["npm", "git"])
def test_a_missing_prerequisite_stops_set_up_with_the_line_that_installs_it(tmp_path: Path, absent: str) -> None:
    present = [t for t in ("python3", "git", "npm", "podman", "runc", "mmdebstrap") if t != absent]
    result = _prerequisites(tmp_path, present)
    assert result.returncode == 1
    assert f"error: {absent} is missing (" in result.stderr and f"apt-get install -y {absent}\n" in result.stderr


def test_without_podman_the_optional_lane_skips_and_the_required_lane_stops(tmp_path: Path) -> None:
    optional = _prerequisites(tmp_path / "optional", ["python3", "git", "npm"])
    assert optional.returncode == 0, optional.stderr
    assert "the lane will skip" in optional.stdout and "apt-get install -y podman runc mmdebstrap" in optional.stdout
    required = _prerequisites(tmp_path / "required", ["python3", "git", "npm"], CUDA_CI_CONTAINER_LANE="required")
    assert required.returncode == 1
    assert "podman runc mmdebstrap is missing" in required.stderr
    assert "apt-get install -y podman runc mmdebstrap" in required.stderr
