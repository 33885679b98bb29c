"""The host mirror of CI's jobs: cuda-ci test, lint, ci; and the CLI never imports dagger."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from cuda_ci.build.builder import BuildSource
from cuda_ci.ci import jobs as checks
from cuda_ci.cli.app import main
from cuda_ci.infra.components import get_unit
from cuda_ci.infra.declared import check_unit, requirements_for_tests
from cuda_ci.infra.git import Git
from cuda_ci.infra.log import Reporter
from cuda_ci.infra.manifest import ReleaseFolder
from cuda_ci.infra.process import PYTHON
from cuda_ci.plan.release import installed_test_steps
from tests.helpers import REPO_ROOT, git, result_document

pytestmark = pytest.mark.e2e


def test_a_test_job_builds_validates_documents_and_runs_the_units_tests(
    monorepo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "kept"
    assert main(["test", "--component", "cuda-core", "--repo", str(monorepo), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "passed  test cuda-core" in captured.out
    assert "4 passed, 1 skipped" in captured.out, "the unit's own tests ran against the built wheel"
    assert "installed with --no-deps" in captured.err, "a tagless clone says how siblings were installed"
    manifest = json.loads((out / "release-manifest.json").read_text())
    page = (out / "docs" / "cuda-core" / "index.html").read_text()
    assert manifest["version"] in page, "conf.py read SPHINX_CUDA_CORE_VER"
    assert "copybutton.js" in page, "the docs group's Sphinx extension ran"
    assert any((out / "siblings").glob("cuda_bindings-*.whl"))
    # Cython from the index in the kept build environment; cuda-bindings, which the in-tree backend's
    # get_requires_for_build_wheel asks for, from this commit's wheel (never kept, never an index's).
    assert "build-env/cython" in manifest["tools"] and "build-env/cuda-bindings" not in manifest["tools"]
    [wheel] = (out / "dist").glob("cuda_core-*-manylinux*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    # one wheel, a compiled build per declared variant (CUDA_CORE_BUILD_MAJOR=12 and 13), no Cython source
    assert {n.split("/")[2] for n in names if n.endswith(".so")} == {"_cu12", "_cu13"}
    assert not [n for n in names if n.endswith((".pyx", ".c"))]
    _the_gpu_jobs_test_step_imports_the_installed_wheels(monorepo, out, tmp_path)


def _the_gpu_jobs_test_step_imports_the_installed_wheels(repo: Path, folder: Path, tmp_path: Path) -> None:
    """The GPU job's test step, as the plan gives it (argv, working folder), run here on the built
    wheels: without a GPU the gpu tests skip, but collection and imports run, from the wheels; run
    as ``python -m pytest`` from the same folder, the source tree would shadow them, and the guard stops it."""
    unit = get_unit("cuda-core")
    manifest = json.loads((folder / "release-manifest.json").read_text())
    source = BuildSource(unit=unit, commit=manifest["commit"])
    reporter = Reporter()
    requirements = requirements_for_tests(check_unit(Git(repo), manifest["commit"], unit).values(), [])
    env = checks.installed_env(source, ReleaseFolder(folder), PYTHON, requirements, tmp_path, reporter)
    [step] = installed_test_steps(unit, str(env.script("pytest").parent), str(repo), marker="gpu")
    assert step.workdir == f"{repo}/cuda_core" and "-m" in step.argv and "gpu" in step.argv
    ran = subprocess.run(step.argv, cwd=step.workdir, capture_output=True, text=True)
    assert ran.returncode in (0, 5), ran.stdout[-3000:]  # 5: every test deselected or skipped is fine here
    where = [str(env.python), "-c", "import sysconfig; print(sysconfig.get_path('platlib'))"]
    site = subprocess.run(where, capture_output=True, text=True).stdout.strip()
    assert f"cuda-ci wheel guard: cuda.core imported from {site}" in ran.stdout, ran.stdout[-3000:]
    shadowing = [str(env.python), "-m", "pytest", *step.argv[1:]]
    shadowed = subprocess.run(shadowing, cwd=step.workdir, capture_output=True, text=True)
    assert shadowed.returncode == 4, shadowed.stdout[-3000:]
    assert f"cuda.core was imported from {repo}/cuda_core/cuda/core" in shadowed.stdout
    assert "the source tree shadows the installed wheel" in shadowed.stdout


def _another_interpreter() -> str | None:
    """An interpreter on this machine whose platform wheels are not cuda-ci's own (another version)."""
    from cuda_ci.build.identifiers import same_wheels

    found = [str(p) for p in sorted(Path.home().glob(".pyenv/versions/3.1[0-5].*/bin/python3"))]
    found += [python for minor in range(10, 16) if (python := shutil.which(f"python3.{minor}"))]
    for python in found:
        try:
            if not same_wheels(python, PYTHON):
                return python
        except (OSError, subprocess.CalledProcessError):  # a pyenv shim of a version not selected
            continue
    return None


def test_a_test_job_of_another_python_tests_that_pythons_own_wheels(
    monorepo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`dagger call test --python 3.10` on the 3.12 tooling: the release path with cuda-ci's interpreter,
    then that interpreter's cuda-core wheel built, repaired and import-tested with siblings built for
    it (cuda-bindings is compiled), and the unit's tests run against it."""
    other = _another_interpreter()
    if other is None:
        pytest.skip("no second CPython version on this machine")
    out = tmp_path / "kept"
    argv = ["test", "--component", "cuda-core", "--repo", str(monorepo), f"--build-python={other}", "--out", str(out)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert f"passed  test cuda-core ({Path(other).name})" in captured.out and "4 passed, 1 skipped" in captured.out
    stages = [line.strip() for line in captured.err.splitlines() if line.startswith("==> stage ")]
    assert stages == [f"==> stage {s}" for s in ("build", "validate", "docs", "build", "smoke", "test")], stages
    # the kept folder (the GPU job's) holds what was tested with that Python: its wheel and its siblings
    tag = "cp" + subprocess.run([other, "-c", "import sys; print(*sys.version_info[:2], sep='')"],
                                capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    assert [p.name for p in (out / "dist").glob(f"cuda_core-*-{tag}-*.whl")], sorted((out / "dist").iterdir())
    assert [p.name for p in (out / "siblings").glob(f"cuda_bindings-*-{tag}-*.whl")]


def test_a_failing_unit_test_fails_the_job(monorepo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    test_file = monorepo / "cuda_pathfinder" / "tests" / "test_finder.py"
    test_file.write_text(test_file.read_text() + "\n\ndef test_broken() -> None:\n    assert 1 == 2\n")
    git(monorepo, "commit", "-qam", "a failing test")
    assert main(["test", "--component", "cuda-pathfinder", "--repo", str(monorepo), "--json"]) == 1
    captured = capsys.readouterr()
    report = result_document(captured.out, "test")
    assert report["status"] == "failed" and set(report["stages"]) == {"build", "validate", "docs", "test"}
    err = captured.err
    assert "the tests of cuda-pathfinder failed against the built wheels" in err
    assert "test_broken" in err


def test_lint_reports_each_tool(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "lintme"
    (repo / "dagger" / "src" / "cuda_ci").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "pyproject.toml", repo / "pyproject.toml")
    (repo / "dagger" / "src" / "cuda_ci" / "__init__.py").write_text(
        '"""Broken on purpose."""\n\nvalue: int = "text"\n'
    )
    git(repo.parent, "init", "-q", str(repo))
    assert main(["lint", "--repo", str(repo), "--json"]) == 1
    captured = capsys.readouterr()
    jobs = {job["name"]: job["ok"] for job in result_document(captured.out, "lint")["jobs"]}
    assert jobs == {"ruff": True, "mypy": False}
    assert "error: mypy failed:" in captured.err and "Incompatible types in assignment" in captured.err


def test_the_cli_never_imports_dagger() -> None:
    modules = "cuda_ci.cli.app, cuda_ci.cli.commands, cuda_ci.publish.run, cuda_ci.ci.jobs"
    code = f"import sys, {modules}; assert 'dagger' not in sys.modules, 'dagger imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
