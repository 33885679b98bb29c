"""The host mirror of the CI jobs: ``lint``, ``test`` (one unit, as a CI job runs it) and ``ci``.

``test`` builds the unit from HEAD once, validates it, builds its docs, then runs each component's
own tests, with its own pytest configuration and its ``test`` dependency group, against the
installed wheels (never the source tree), siblings from the same commit.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cuda_ci.build import BuildSource, execute_build, plan_build
from cuda_ci.components import UNITS, get_unit
from cuda_ci.declared import check_unit, install_extras, requirements_for_tests
from cuda_ci.docs import build_docs
from cuda_ci.envs import Env, install_from_run
from cuda_ci.errors import CommandError, CudaCiError
from cuda_ci.frontend import check_clone
from cuda_ci.git import Git
from cuda_ci.log import Reporter
from cuda_ci.manifest import CiGate, ReleaseFolder
from cuda_ci.process import PYTHON, run
from cuda_ci.settings import RunnerSettings
from cuda_ci.siblings import SIBLINGS_DIR, sibling_wheels
from cuda_ci.validate import validate_release

WORKFLOWS = ".github/workflows"


@dataclass(frozen=True)
class JobResult:
    name: str
    ok: bool
    detail: str


def lint(repo: Path, reporter: Reporter) -> list[JobResult]:
    """ruff, mypy --strict on cuda_ci, and the workflow checks (schema, zizmor) where workflows exist."""
    root = Git.open(repo).root
    commands: list[tuple[str, list[str]]] = [
        ("ruff", [PYTHON, "-m", "ruff", "check", "."]),
        ("mypy", [PYTHON, "-m", "mypy"]),
    ]
    workflows = sorted((root / WORKFLOWS).glob("*.yml"))
    if workflows:
        files = [str(w) for w in workflows]
        commands.append(
            (
                "workflow schema",
                [PYTHON, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", *files],
            )
        )
        commands.append(("zizmor", [_tool("zizmor"), "--offline", "--min-severity", "medium", str(root / WORKFLOWS)]))
    results = []
    for name, argv in commands:
        with reporter.step(f"lint: {name}"):
            try:
                run(argv, what=name, reporter=reporter, cwd=root)
                results.append(JobResult(name, True, "clean"))
            except CommandError as error:
                results.append(JobResult(name, False, error.problems[0]))
    return results


def _tool(name: str) -> str:
    """A console script of this environment (next to its interpreter), else from PATH."""
    local = Path(PYTHON).parent / name
    return str(local) if local.exists() else (shutil.which(name) or name)


def run_test_job(
    repo: Path,
    unit_name: str,
    runner: RunnerSettings,
    reporter: Reporter,
    out: Path | None = None,
    groups: Sequence[str] = (),
) -> JobResult:
    """One CI job: build HEAD, validate, docs, then the unit's tests against the built wheels, with
    each component's ``test`` group (and ``groups``) installed beside them."""
    unit = get_unit(unit_name)
    git = Git.open(repo)
    check_clone(git, reporter)
    source = BuildSource(unit=unit, commit=git.head())
    declared = check_unit(git, source.commit, unit, groups)  # refused before anything is built
    python = runner.build_python or PYTHON
    with tempfile.TemporaryDirectory(prefix=f"cuda-ci-test-{unit.name}-") as tmp:
        folder = ReleaseFolder(Path(tmp) / "release")
        with reporter.in_stage("build"):
            execute_build(
                plan_build(source, python=python), git, folder, reporter, CiGate(status="snapshot", run_url=None)
            )
        with reporter.in_stage("validate"):
            validate_release(folder, git.root, None, reporter)
        with reporter.in_stage("docs"):
            build_docs(folder, git.root, reporter)
        with reporter.in_stage("test"):
            requirements = requirements_for_tests(declared.values(), groups)
            outputs = _run_unit_tests(git, source, folder, python, requirements, Path(tmp), reporter)
        if out is not None:
            shutil.copytree(folder.path, out, dirs_exist_ok=True)  # the tested wheels, for the GPU job
    lines = [f"{name}: {output.strip().splitlines()[-1].strip('= ')}" for name, output in outputs if output.strip()]
    return JobResult(f"test {unit.name} ({Path(python).name})", True, "; ".join(lines))


def _run_unit_tests(
    git: Git,
    source: BuildSource,
    folder: ReleaseFolder,
    python: str,
    requirements: Sequence[str],
    tmp: Path,
    reporter: Reporter,
) -> list[tuple[str, str]]:
    """Each component's tests from its own folder (its own pytest configuration), against the
    installed wheels: pytest's console script does not put the folder's sources on ``sys.path``."""
    manifest = folder.load()
    siblings = sibling_wheels(git.root, source.commit, source.unit, folder.path / SIBLINGS_DIR, reporter)
    env = Env.create(tmp / "test-env", reporter, python)
    install_from_run(
        env,
        dist=folder.dist,
        version=manifest["version"],
        unit=source.unit,
        siblings=siblings,
        snapshot=True,
        what="install of the built wheels and the test groups",
        reporter=reporter,
        extras=install_extras(folder.dist, source.unit),
        requirements=requirements,
        python=python,
    )
    outputs: list[tuple[str, str]] = []
    problems: list[str] = []
    with git.worktree(source.commit) as tree:
        for component in source.unit.components:
            if not (tree / component.dir / "tests").is_dir():
                continue
            try:
                result = run(
                    [str(env.script("pytest")), "tests"],
                    what=f"tests of {component.distribution}",
                    reporter=reporter,
                    cwd=tree / component.dir,
                )
            except CommandError as error:
                problems += [f"the tests of {component.distribution} failed against the built wheels", *error.problems]
                continue
            outputs.append((component.distribution, result.stdout))
    if problems:
        raise CudaCiError(*problems)
    return outputs


def ci(repo: Path, unit_name: str | None, runner: RunnerSettings, reporter: Reporter) -> list[JobResult]:
    """``lint`` and every ``test`` (or one unit's), each reported; failures gathered, not fatal early."""
    results = lint(repo, reporter)
    for unit in [get_unit(unit_name)] if unit_name else list(UNITS):
        try:
            results.append(run_test_job(repo, unit.name, runner, reporter))
        except CudaCiError as error:
            results.append(JobResult(f"test {unit.name}", False, "\n".join(error.problems)))
    return results
