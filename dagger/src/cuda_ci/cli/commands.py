"""One function per ``cuda-ci`` command (as twine's ``commands/``): the CLI parses and renders, the
Dagger module's containers run the same commands, and the CI jobs (``test``, ``ci``) are made of
the same functions as a release (``build``, ``validate``, ``docs``).

Every command takes the run's :class:`Settings` (made once by the CLI) and a :class:`Reporter`, and
returns what it made or found; it never prints. Stage timing and the translation of foreign errors
(a full disk) happen here, in :func:`stage` and :func:`translate`.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cuda_ci.build.builder import (
    BuildPlan,
    BuildSource,
    check_tag_unmoved,
    execute_build,
    native_cibuildwheel_platform,
    plan_build,
)
from cuda_ci.build.frontend import check_clone, refuse_shallow
from cuda_ci.build.identifiers import linux_container_engine, same_wheels
from cuda_ci.build.reproducible import Comparison
from cuda_ci.build.reproducible import verify_reproducible as rebuild_and_compare
from cuda_ci.build.siblings import SIBLINGS_DIR, sibling_wheels
from cuda_ci.ci import jobs as checks
from cuda_ci.cli import fanout
from cuda_ci.docs.sphinx import build_docs, sphinx_env
from cuda_ci.executors.runlog import LOGS_DIR, compose_run_log, read_node_logs, write_node_log
from cuda_ci.infra.components import UNITS, get_component, get_unit
from cuda_ci.infra.declared import check_unit, docs_requirements, requirements_for_tests
from cuda_ci.infra.errors import CudaCiError, UsageError
from cuda_ci.infra.git import Git
from cuda_ci.infra.log import Reporter
from cuda_ci.infra.manifest import BuiltBy, CiGate, DocsResult, Manifest, ReleaseFolder, ValidationEntry
from cuda_ci.infra.process import PYTHON
from cuda_ci.infra.settings import Settings
from cuda_ci.plan.ci import ci_nodes
from cuda_ci.plan.release import Mode, PlanOptions, ReleasePlan, plan_release
from cuda_ci.plan.repository import repository_state
from cuda_ci.plan.selection import Selection, default_out, resolve_source
from cuda_ci.preflight.checks import Preflight, run_preflight
from cuda_ci.publish import refusals as publishable
from cuda_ci.publish import run as stages
from cuda_ci.publish import verify as verify_checks
from cuda_ci.publish.provenance import sign_release
from cuda_ci.publish.refusals import docs_outcome, read_docs_outcome, write_docs_outcome
from cuda_ci.publish.status import ReleaseStatus, StatusRequest, release_statuses
from cuda_ci.publish.targets import BOTH_PHASES, IndexPhase
from cuda_ci.validate.checks import import_test_wheels, smoke_release, validate_release

# --- stage timing and error translation -----------------------------------------------------------


def translate(error: BaseException, stage_name: str = "") -> CudaCiError | None:
    """A foreign error as the :class:`CudaCiError` the CLI reports, or None where it is a bug."""
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        where = Path(str(error.filename)) if error.filename else None
        place = f" writing {where}" if where else ""
        target = where.parent if where else Path(".")
        return CudaCiError(
            f"no space left on device in stage {stage_name or 'setup'}{place}: free space on the filesystem "
            f"holding {target} (df -h {target}), or point --out, TMPDIR or CUDA_CI_CACHE_DIR at one with room, "
            "then run again; no partial file was left under a final name"
        )
    return None


@contextmanager
def stage(reporter: Reporter, name: str) -> Iterator[None]:
    """One timed stage (``run-log.json``'s ``stages``); a foreign error in it is translated, naming it."""
    try:
        with reporter.in_stage(name):
            yield
    except CudaCiError:
        raise
    except Exception as error:
        translated = translate(error, name)
        if translated is None:
            raise
        raise translated from error


# --- the release stages -------------------------------------------------------------------------


def component_version(*, repo: Path, component: str) -> str:
    """``cuda-ci component-version``: the version a component builds as at HEAD."""
    from cuda_ci.build.scm import component_version

    git = Git.open(repo)
    refuse_shallow(git)
    with git.worktree(git.head()) as tree:
        return component_version(tree, get_component(component))


def build(
    *, repo: Path, selection: Selection, wheels_only: bool, out: Path | None, settings: Settings, reporter: Reporter
) -> tuple[Manifest, Path]:
    """``cuda-ci build``: the unit's files, and the sibling wheels every later stage installs beside
    them (a named output of the build, never made again later). Without preflight's result the CI
    gate is not verified."""
    selection.checked()
    git = Git.open(repo)
    check_clone(git, reporter)
    source = resolve_source(git, selection)
    found = read_preflight_result(settings.runner.preflight_result, source, git)
    check_unit(git, source.commit, source.unit)  # bad declarations are refused before anything is built
    folder = ReleaseFolder.fresh((out or default_out(git, source)).resolve())
    runner = settings.runner
    # Inside a Dagger wheel job the container is already the build environment cibuildwheel would use.
    cibuildwheel = wheels_only and not runner.build_python
    engine = linux_container_engine({"CUDA_CI_CONTAINER_ENGINE": settings.container_engine}) if cibuildwheel else None
    native_platform = native_cibuildwheel_platform(engine) if cibuildwheel else None
    # cibuildwheel's import test needs the siblings this commit builds (see cibuildwheel_environ).
    siblings = (
        sibling_wheels(git.root, source.commit, source.unit, folder.path / SIBLINGS_DIR, reporter)
        if native_platform
        else []
    )
    plan = plan_build(
        source,
        wheels_only=wheels_only,
        native_platform=native_platform,
        prebuilt_wheels=Path(runner.prebuilt_wheels) if runner.prebuilt_wheels and not wheels_only else None,
        wheel_reports=Path(runner.wheel_reports) if runner.wheel_reports else None,
        python=runner.build_python or PYTHON,
        container_engine=engine,
        test_siblings=tuple(siblings),
    )
    gate = CiGate(status="snapshot" if source.snapshot else "not-verified", run_url=None)
    gate = CiGate(status=found["ci_gate"]["status"], run_url=found["ci_gate"].get("run_url")) if found else gate
    if wheels_only:
        with stage(reporter, "build"):
            manifest = execute_build(plan, git, folder, reporter, gate, runner.built_by)
        if runner.build_python:  # a plan's wheel node (cibuildwheel, not run there, would run its test-command)
            with stage(reporter, "smoke"):
                import_test_wheels(folder, git.root, runner.build_python, reporter)
    else:
        manifest = _build_with_siblings(git, plan, folder, gate, runner.built_by, reporter)
    if found and isinstance(found.get("log"), dict):
        write_node_log(folder.path, found["log"])
    return manifest, folder.path


def read_preflight_result(path: str | None, source: BuildSource, git: Git) -> dict[str, Any] | None:
    """Preflight's JSON result (``preflight --out``), for the build node of a plan: its CI gate, and
    the commit it checked, which must still be the one the tag names (a tag moved in between is refused)."""
    if path is None:
        return None
    try:
        found = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise CudaCiError(f"--preflight-result {path} cannot be read as JSON ({error}): run preflight again") from None
    gate = found.get("ci_gate") if isinstance(found, dict) else None
    if not isinstance(gate, dict) or gate.get("status") not in ("verified", "not-verified", "snapshot"):
        raise CudaCiError(f"--preflight-result {path} is not preflight's JSON result (no ci_gate): run preflight again")
    checked = found.get("commit")
    if checked in (None, source.commit):
        return dict(found)
    if source.tag is not None and not source.rehearsal:
        check_tag_unmoved(git, source.tag, str(checked))  # raises, in the one wording of a moved tag
    what = f"--ref of the rehearsal of {source.tag.name}" if source.tag else "HEAD"
    raise CudaCiError(
        f"{what} moved after preflight: preflight checked {str(checked)[:12]}, it now names "
        f"{source.commit[:12]}; nothing was built: run the release again from the start"
    )


def preflight(*, repo: Path, selection: Selection, dry_run: bool, settings: Settings, reporter: Reporter) -> Preflight:
    """``cuda-ci preflight``: every finding at once (a :class:`PreflightError` listing them)."""
    request = selection.request(dry_run)
    git = Git.open(repo)
    refuse_shallow(git)
    with stage(reporter, "preflight"):
        return run_preflight(git, request, settings, reporter)


def validate(*, repo: Path, release_dir: Path, extra_dist: Path | None, reporter: Reporter) -> Manifest:
    folder = ReleaseFolder.existing(release_dir)
    with stage(reporter, "validate"):
        return validate_release(folder, repo, extra_dist, reporter)


def smoke(*, repo: Path, release_dir: Path, settings: Settings, reporter: Reporter) -> list[ValidationEntry]:
    folder = ReleaseFolder.existing(release_dir)
    with stage(reporter, "smoke"):
        return smoke_release(folder, repo, settings.runner.build_python or PYTHON, reporter)


def docs(*, repo: Path, release_dir: Path, reporter: Reporter, beside_validate: bool = False) -> list[Path]:
    """The docs stage. On its own (after validate) its outcome, built or failed, goes into the
    manifest; beside validate it goes to ``docs-outcome.json``, which :func:`record_docs` takes in."""
    folder = ReleaseFolder.existing(release_dir)
    problems = folder.verify_hashes(folder.load())
    if problems:
        raise CudaCiError(*problems, "docs refused: the folder is not what validate checked")
    outcome: list[DocsResult] = []
    try:
        with stage(reporter, "docs"), docs_outcome(folder, outcome):
            return build_docs(folder, repo, reporter, alongside_validate=beside_validate)
    finally:
        if outcome and beside_validate:
            write_docs_outcome(folder, outcome[0])
        elif outcome:
            publishable.record_docs(folder, outcome[0])


def report(*, release_dir: Path) -> tuple[Path, dict[str, Any]]:
    """``cuda-ci report``: the folder a run left (a failed run's may hold no manifest yet) and its
    ``run-log.json``, composed anew from every node log there."""
    if not release_dir.is_dir() or release_dir.is_symlink():
        raise UsageError(f"--release-dir {str(release_dir)!r} is not a directory: export the run's folder there")
    folder = release_dir.resolve()
    if not read_node_logs(folder):
        raise CudaCiError(
            f"{folder} holds no node logs ({LOGS_DIR}/*.json): it is not a folder a cuda-ci run left "
            "(`dagger call release --keep-failed ... export --path DIR`, or `cuda-ci release --out DIR`)"
        )
    return folder, compose_run_log(folder)


def record_docs(*, release_dir: Path, reporter: Reporter) -> DocsResult:
    """``cuda-ci record-docs``: the outcome docs left beside validate, into the validated manifest."""
    folder = ReleaseFolder.existing(release_dir)
    with stage(reporter, "docs"):
        result = read_docs_outcome(folder)
        if "validation" not in folder.load():
            raise CudaCiError(f"{folder.path} is not validated: run `cuda-ci validate --release-dir {folder.path}`")
        publishable.record_docs(folder, result)
    if result["status"] != "built":
        raise CudaCiError(f"the docs of {folder.path} failed: {result['detail']}")
    return result


def publish(
    *,
    repo: Path | None,
    release_dir: Path,
    target: str,
    dry_run: bool,
    settings: Settings,
    reporter: Reporter,
    phases: Sequence[IndexPhase] = BOTH_PHASES,
) -> dict[str, str]:
    """``cuda-ci publish``: every asked target in order; what each did (``nothing to do`` when done).
    ``phases``: of an index target, the upload alone (``--no-install-back``) or the install-back alone
    (``--install-back-only``: no credentials needed), so that one job holds the credentials and
    another runs the installed code."""
    if "upload" not in phases and target not in ("testpypi", "pypi"):
        raise UsageError(f"--install-back-only needs --target testpypi or --target pypi, not {target}")
    with stage(reporter, "publish"):
        return stages.publish_folder(repo, release_dir, target, dry_run, settings, reporter, phases=phases)


def plan(
    *,
    repo: Path,
    selection: Selection,
    options: PlanOptions,
    reporter: Reporter,
) -> ReleasePlan:
    """``cuda-ci plan``: what a release of the selection will run, decided once; nothing is written."""
    request = selection.request(options.dry_run)
    git = Git.open(repo)
    refuse_shallow(git)
    source = resolve_source(git, selection)
    state = repository_state(git, source, options.runner, reporter, prebuilt=options.prebuilt)
    mode: Mode = "snapshot" if source.snapshot else "rehearsal" if source.rehearsal else "release"
    tag = source.tag.name if source.tag else None
    return plan_release(source.unit, tag, mode, request.ref, options, state)


def check_wheels(
    *, plan_file: Path, wheels: Sequence[Path], group: str | None, reports: Path | None, repo: Path
) -> dict[str, Any]:
    """``cuda-ci check-wheels``: a wheel job's report, or every wheel of a run checked (:mod:`cuda_ci.cli.fanout`)."""
    return fanout.check_wheels(plan_file=plan_file, wheels=wheels, group=group, reports=reports, repo=repo)


def _build_with_siblings(
    git: Git, plan: BuildPlan, folder: ReleaseFolder, ci_gate: CiGate, built_by: BuiltBy, reporter: Reporter
) -> Manifest:
    """The build, and beside it the sibling wheels every later stage installs (same commit) and the
    kept Sphinx environment of the ``docs`` groups."""
    source = plan.source
    siblings = folder.path / SIBLINGS_DIR
    requirements = docs_requirements(check_unit(git, source.commit, source.unit).values())
    with (
        reporter.alongside(
            lambda child: sibling_wheels(git.root, source.commit, source.unit, siblings, child),
            lambda child: sphinx_env(requirements, child),
        ),
        stage(reporter, "build"),
    ):
        return execute_build(plan, git, folder, reporter, ci_gate, built_by)


# --- checking a release ----------------------------------------------------------------------------


def verify(
    *, release_dir: Path | None, tag: str | None, settings: Settings, reporter: Reporter
) -> verify_checks.VerifyReport:
    """``cuda-ci verify``: a folder of release assets, or the published release of ``tag`` on GitHub."""
    if tag is not None:
        return verify_checks.verify_from_github(stages.github_reader(settings, reporter), tag)
    assert release_dir is not None
    if not release_dir.is_dir():
        raise UsageError(f"--release-dir {str(release_dir)!r} does not exist or is not a directory")
    return verify_checks.verify_folder(release_dir)


def status(*, request: StatusRequest, settings: Settings, reporter: Reporter) -> list[ReleaseStatus]:
    """``cuda-ci status``: where each release stands (:mod:`cuda_ci.publish.status`); read only."""
    return release_statuses(request, settings, reporter.info, datetime.now(UTC))


def verify_reproducible(*, repo: Path, release_dir: Path, reporter: Reporter) -> list[Comparison]:
    """``cuda-ci verify-reproducible``: rebuild the manifest's commit, compare every sha256."""
    return rebuild_and_compare(ReleaseFolder.existing(release_dir), repo, reporter)


def sign(*, release_dir: Path, settings: Settings, reporter: Reporter) -> list[Path]:
    """``cuda-ci sign``: PEP 740 attestations with the Actions identity (``settings.oidc``)."""
    return sign_release(ReleaseFolder.existing(release_dir), settings.oidc, reporter)


# --- the CI jobs -----------------------------------------------------------------------------------


def lint(*, repo: Path, reporter: Reporter) -> list[checks.JobResult]:
    """``cuda-ci lint``: ruff, mypy and the workflow checks, each reported."""
    return checks.lint(repo, reporter)


def ci_test(
    *,
    repo: Path,
    component: str,
    out: Path | None = None,
    groups: Sequence[str] = (),
    settings: Settings,
    reporter: Reporter,
) -> checks.JobResult:
    """One CI job: :func:`build` HEAD, :func:`validate`, :func:`docs`, then the unit's tests against the
    built wheels, with each component's ``test`` group (and ``groups``) installed beside them.

    With another interpreter (``--build-python``) the release path runs with cuda-ci's own, as a
    release's does; that interpreter's platform wheels are then built, repaired and import-tested as
    a wheel node builds them, with siblings built for it, and the tests run against those."""
    unit = get_unit(component)
    git = Git.open(repo)
    declared = check_unit(git, git.head(), unit, groups)  # refused before anything is built
    python = settings.runner.build_python or PYTHON
    own = dataclasses.replace(settings, runner=dataclasses.replace(settings.runner, build_python=None))
    with tempfile.TemporaryDirectory(prefix=f"cuda-ci-test-{unit.name}-") as tmp:
        snapshot = Selection(component=unit.name, snapshot=True)
        manifest, release_dir = build(
            repo=repo, selection=snapshot, wheels_only=False, out=Path(tmp) / "release", settings=own, reporter=reporter
        )
        validate(repo=git.root, release_dir=release_dir, extra_dist=None, reporter=reporter)
        docs(repo=git.root, release_dir=release_dir, reporter=reporter)
        wheels = None
        if unit.has_platform_wheels and not same_wheels(python, PYTHON):
            _, wheels_dir = build(
                repo=repo, selection=snapshot, wheels_only=True, out=Path(tmp) / "wheels", settings=settings,
                reporter=reporter,
            )  # fmt: skip
            wheels = ReleaseFolder(wheels_dir)
        with stage(reporter, "test"):
            requirements = requirements_for_tests(declared.values(), groups)
            source = BuildSource(unit=unit, commit=manifest["commit"])
            folder = ReleaseFolder(release_dir)
            outputs = checks.unit_tests(git, source, folder, python, requirements, Path(tmp), reporter, wheels=wheels)
        if out is not None:  # the tested wheels, for the GPU job (which installs with the same Python)
            shutil.copytree(release_dir, out, dirs_exist_ok=True)
            made_for_it = [wheels.path / kind for kind in ("dist", SIBLINGS_DIR)] if wheels else []
            for kept in made_for_it:  # that Python's wheels beside cuda-ci's own
                for wheel in sorted(kept.glob("*.whl")):
                    shutil.copy2(wheel, out / kept.name / wheel.name)
    lines = [f"{name}: {output.strip().splitlines()[-1].strip('= ')}" for name, output in outputs if output.strip()]
    return checks.JobResult(f"test {unit.name} ({Path(python).name})", True, "; ".join(lines))


def ci(*, repo: Path, component: str | None, settings: Settings, reporter: Reporter) -> list[checks.JobResult]:
    """``cuda-ci ci``: the CI plan's jobs (:func:`cuda_ci.plan.ci.ci_nodes`: lint, then each unit's
    test), one after the other here; failures gathered, not fatal early."""
    results: list[checks.JobResult] = []
    for node in ci_nodes([component] if component else [u.name for u in UNITS]):
        if node.kind == "lint":
            results += lint(repo=repo, reporter=reporter)
            continue
        unit = node.id.partition(":")[2]
        try:
            results.append(ci_test(repo=repo, component=unit, settings=settings, reporter=reporter))
        except CudaCiError as error:
            results.append(checks.JobResult(f"test {unit}", False, "\n".join(error.problems)))
    return results
