"""The CI jobs' own parts: the lint tools, and each component's tests run against installed wheels.

``commands.ci_test`` (``cuda-ci test``) builds the unit from HEAD with the release's ``build``,
``validate`` and ``docs`` commands, then runs :func:`unit_tests`: each component's own tests, with
its own pytest configuration and its ``test`` dependency group, against the installed wheels (never
the source tree), siblings from the same commit.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cuda_ci.build.builder import BuildSource
from cuda_ci.build.siblings import folder_siblings
from cuda_ci.infra.declared import install_extras
from cuda_ci.infra.envs import Env, install_from_run
from cuda_ci.infra.errors import CommandError, CudaCiError, Location
from cuda_ci.infra.git import Git
from cuda_ci.infra.log import Reporter
from cuda_ci.infra.manifest import ReleaseFolder
from cuda_ci.infra.process import PYTHON, run
from cuda_ci.plan.release import WHEEL_GUARD, installed_test_steps

WORKFLOWS = ".github/workflows"


@dataclass(frozen=True)
class JobResult:
    name: str
    ok: bool
    detail: str
    location: Location | None = None  # the file a failed check is about (a workflow), where it is one


def _lint_commands(root: Path) -> list[tuple[str, list[str], Location | None]]:
    """ruff, mypy, and per workflow file its schema check (so that a failure names its file); zizmor."""
    commands: list[tuple[str, list[str], Location | None]] = [
        ("ruff", [PYTHON, "-m", "ruff", "check", "."], None),
        ("mypy", [PYTHON, "-m", "mypy"], None),
    ]
    schema = [PYTHON, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows"]
    for workflow in sorted((root / WORKFLOWS).glob("*.yml")):
        relative = workflow.relative_to(root).as_posix()
        commands.append((f"workflow schema: {workflow.name}", [*schema, str(workflow)], Location(relative)))
    if (root / WORKFLOWS).is_dir():
        zizmor = [_tool("zizmor"), "--offline", "--min-severity", "medium", str(root / WORKFLOWS)]
        commands.append(("zizmor", zizmor, None))
    return commands


def lint(repo: Path, reporter: Reporter) -> list[JobResult]:
    """ruff, mypy --strict on cuda_ci, and the workflow checks (schema, zizmor) where workflows exist."""
    root = Git.open(repo).root
    results = []
    for name, argv, location in _lint_commands(root):
        with reporter.step(f"lint: {name}"):
            try:
                run(argv, what=name, reporter=reporter, cwd=root)
                results.append(JobResult(name, True, "clean"))
            except CommandError as error:
                results.append(JobResult(name, False, error.problems[0], location))
    return results


def _tool(name: str) -> str:
    """A console script of this environment (next to its interpreter), else from PATH."""
    local = Path(PYTHON).parent / name
    return str(local) if local.exists() else (shutil.which(name) or name)


def install_wheel_guard(env: Env, reporter: Reporter) -> Path:
    """The pytest plugin that stops a test run importing the source tree instead of the wheels."""
    purelib = run(
        [str(env.python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        what="the test env's site",
        reporter=reporter,
    ).stdout.strip()
    target = Path(purelib) / f"{WHEEL_GUARD}.py"
    shutil.copyfile(Path(__file__).with_name("wheelguard.py"), target)
    return target


def unit_tests(
    git: Git,
    source: BuildSource,
    folder: ReleaseFolder,
    python: str,
    requirements: Sequence[str],
    tmp: Path,
    reporter: Reporter,
    marker: str | None = None,
    wheels: ReleaseFolder | None = None,
) -> list[tuple[str, str]]:
    """Each component's tests from its own folder (its own pytest configuration), against the
    installed wheels: the plan's test steps (:func:`cuda_ci.plan.release.installed_test_steps`)."""
    env = installed_env(source, folder, python, requirements, tmp, reporter, wheels)
    outputs: list[tuple[str, str]] = []
    problems: list[str] = []
    with git.worktree(source.commit) as tree:
        for step in installed_test_steps(source.unit, str(env.script("pytest").parent), str(tree), marker):
            if not (Path(step.workdir) / "tests").is_dir():
                continue
            try:
                what = f"tests of {step.component}"
                result = run(list(step.argv), what=what, reporter=reporter, cwd=Path(step.workdir), live=True)
            except CommandError as error:
                problems += [f"the tests of {step.component} failed against the built wheels", *error.problems]
                continue
            outputs.append((step.component, result.stdout))
    if problems:
        raise CudaCiError(*problems)
    return outputs


def installed_env(
    source: BuildSource,
    folder: ReleaseFolder,
    python: str,
    requirements: Sequence[str],
    tmp: Path,
    reporter: Reporter,
    wheels: ReleaseFolder | None = None,
) -> Env:
    """A fresh environment with the folder's wheels, its siblings, the test groups and the wheel guard;
    with ``wheels`` (another interpreter's platform wheels of the same commit, a wheel job's folder)
    those wheels too, and that folder's siblings, built for that interpreter."""
    manifest = folder.load()
    siblings = folder_siblings((wheels or folder).path, source.commit, source.unit)
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
        extra_dists=[wheels.dist] if wheels else [],
    )
    install_wheel_guard(env, reporter)
    return env
