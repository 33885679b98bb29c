"""One function per ``cuda-ci`` command (as twine's ``commands/``): the CLI parses and renders, the
Dagger module's containers run the same commands, and the CI jobs (``test``, ``ci``) are made of
the same functions as a release (``build``, ``validate``, ``docs``).

Every command takes the run's :class:`Settings` (made once by the CLI) and a :class:`Reporter`, and
returns what it made or found; it never prints. Stage timing and the translation of foreign errors
(a full disk) happen here, in :func:`stage` and :func:`translate`.
"""

from __future__ import annotations

import errno
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path

from cuda_ci import checks, stages
from cuda_ci import verify as verify_checks
from cuda_ci.build import BuildSource, execute_build, native_cibuildwheel_platform, plan_build
from cuda_ci.components import UNITS, get_component, get_unit
from cuda_ci.declared import check_unit, docs_requirements, requirements_for_tests
from cuda_ci.docs import build_docs, sphinx_env
from cuda_ci.errors import CudaCiError, UsageError
from cuda_ci.frontend import check_clone
from cuda_ci.git import Git
from cuda_ci.log import Reporter
from cuda_ci.manifest import CiGate, DocsResult, Manifest, ReleaseFolder, ValidationEntry
from cuda_ci.preflight import Preflight, run_preflight
from cuda_ci.process import PYTHON
from cuda_ci.provenance import sign_release
from cuda_ci.publish import TARGETS
from cuda_ci.publishable import docs_outcome, record_docs
from cuda_ci.release_status import ReleaseStatus, StatusRequest, release_statuses
from cuda_ci.reproducible import Comparison
from cuda_ci.reproducible import verify_reproducible as rebuild_and_compare
from cuda_ci.selection import Selection, default_out, resolve_source
from cuda_ci.settings import Settings
from cuda_ci.siblings import SIBLINGS_DIR, sibling_wheels
from cuda_ci.validate import smoke_release, validate_release
from cuda_ci.wheels import linux_container_engine

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


def version(*, repo: Path, component: str) -> str:
    """``cuda-ci version``: the version a component builds as at HEAD."""
    from cuda_ci.scm import component_version

    git = Git.open(repo)
    if git.is_shallow():
        raise CudaCiError(f"{git.root} is a shallow clone: fetch the full history (git fetch --unshallow)")
    with git.worktree(git.head()) as tree:
        return component_version(tree, get_component(component))


def build(
    *, repo: Path, selection: Selection, wheels_only: bool, out: Path | None, settings: Settings, reporter: Reporter
) -> tuple[Manifest, Path]:
    """``cuda-ci build``: without preflight the CI gate is not verified, unless the runner hands it over."""
    selection.checked()
    git = Git.open(repo)
    check_clone(git, reporter)
    source = resolve_source(git, selection)
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
        python=runner.build_python or PYTHON,
        container_engine=engine,
        test_siblings=tuple(siblings),
    )
    gate = CiGate(status=runner.ci_gate, run_url=runner.ci_run_url) if runner.ci_gate else None
    gate = gate or CiGate(status="snapshot" if source.snapshot else "not-verified", run_url=None)
    with stage(reporter, "build"):
        manifest = execute_build(plan, git, folder, reporter, gate, runner.built_by)
    return manifest, folder.path


def preflight(*, repo: Path, selection: Selection, dry_run: bool, settings: Settings, reporter: Reporter) -> Preflight:
    """``cuda-ci preflight``: every finding at once (a :class:`PreflightError` listing them)."""
    request = selection.request(dry_run)
    git = Git.open(repo)
    if request.snapshot:
        check_clone(git, reporter)
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


def docs(*, repo: Path, release_dir: Path, reporter: Reporter) -> list[Path]:
    """The docs stage; its result (built or failed) is recorded in the validated manifest."""
    folder = ReleaseFolder.existing(release_dir)
    problems = folder.verify_hashes(folder.load())
    if problems:
        raise CudaCiError(*problems, "docs refused: the folder is not what validate checked")
    outcome: list[DocsResult] = []
    try:
        with stage(reporter, "docs"), docs_outcome(folder, outcome):
            return build_docs(folder, repo, reporter)
    finally:
        if outcome:
            record_docs(folder, outcome[0])


def publish(
    *, repo: Path | None, release_dir: Path, target: str, dry_run: bool, settings: Settings, reporter: Reporter
) -> dict[str, str]:
    """``cuda-ci publish``: every asked target in order; what each did (``nothing to do`` when done)."""
    with stage(reporter, "publish"):
        return stages.publish_folder(repo, release_dir, target, dry_run, settings, reporter)


def release(
    *,
    repo: Path,
    selection: Selection,
    dry_run: bool,
    no_publish: bool,
    extra_dist: Path | None,
    out: Path | None,
    settings: Settings,
    reporter: Reporter,
) -> Path:
    """preflight → build (once) → validate → docs → publish, handing the release folder along."""
    request = selection.request(dry_run)
    git = Git.open(repo)
    check_clone(git, reporter)
    dry_run = request.lenient
    if out is not None:  # refused before anything runs; the default folder is known after preflight
        ReleaseFolder.fresh(out.resolve())
    found = preflight(repo=repo, selection=selection, dry_run=request.dry_run, settings=settings, reporter=reporter)
    source = found.source
    # Checked again before anything is written: a refused run writes nothing, not even run-log.json.
    folder = ReleaseFolder.fresh((out or default_out(git, source)).resolve())
    lock_name = source.tag.name if source.tag else f"snapshot-{source.unit.name}"
    with stages.release_lock(git, lock_name), stages.run_log(folder.path, reporter, "release"), ExitStack() as stack:
        _build_with_siblings(git, source, folder, found.ci_gate, reporter)
        started = None
        if dry_run and not no_publish:  # the embedded indexes start while validate and docs run
            started = stack.enter_context(
                stages.dry_run_indexes(folder, TARGETS, repo, folder.load(), settings, reporter)
            )
        _validate_and_docs(repo, folder, extra_dist, reporter)
        if not no_publish:
            with stage(reporter, "publish"):
                stages.publish_folder(repo, folder.path, "all", dry_run, settings, reporter, started)
    return folder.path


def _build_with_siblings(
    git: Git, source: BuildSource, folder: ReleaseFolder, ci_gate: CiGate, reporter: Reporter
) -> None:
    """The release's build, and beside it what later stages need: the sibling wheels its installs
    take (same commit) and the kept Sphinx environment of the ``docs`` groups. The components'
    declarations are checked first: a bad one is refused before anything is built."""
    siblings = folder.path / SIBLINGS_DIR
    requirements = docs_requirements(check_unit(git, source.commit, source.unit).values())
    with (
        reporter.alongside(
            lambda child: sibling_wheels(git.root, source.commit, source.unit, siblings, child),
            lambda child: sphinx_env(requirements, child),
        ),
        stage(reporter, "build"),
    ):
        execute_build(plan_build(source), git, folder, reporter, ci_gate)


def _validate_and_docs(repo: Path, folder: ReleaseFolder, extra_dist: Path | None, reporter: Reporter) -> None:
    """validate and docs side by side (both read the built files; only validate writes the manifest)."""
    manifest = folder.load()
    sibling_wheels(repo, manifest["commit"], get_unit(manifest["component"]), folder.path / SIBLINGS_DIR, reporter)
    outcome: list[DocsResult] = []

    def run_docs(child: Reporter) -> None:
        with stage(child, "docs"), docs_outcome(folder, outcome):
            build_docs(folder, repo, child, alongside_validate=True)

    try:
        with reporter.alongside(run_docs):
            validate(repo=repo, release_dir=folder.path, extra_dist=extra_dist, reporter=reporter)
    finally:  # recorded once validate has written the manifest (only a validated manifest takes it)
        if outcome:
            record_docs(folder, outcome[0])


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
    """``cuda-ci status``: where each release stands (:mod:`cuda_ci.release_status`); read only."""
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
    built wheels, with each component's ``test`` group (and ``groups``) installed beside them."""
    unit = get_unit(component)
    git = Git.open(repo)
    declared = check_unit(git, git.head(), unit, groups)  # refused before anything is built
    python = settings.runner.build_python or PYTHON
    with tempfile.TemporaryDirectory(prefix=f"cuda-ci-test-{unit.name}-") as tmp:
        snapshot = Selection(component=unit.name, snapshot=True)
        manifest, release_dir = build(
            repo=repo,
            selection=snapshot,
            wheels_only=False,
            out=Path(tmp) / "release",
            settings=settings,
            reporter=reporter,
        )
        validate(repo=git.root, release_dir=release_dir, extra_dist=None, reporter=reporter)
        docs(repo=git.root, release_dir=release_dir, reporter=reporter)
        with stage(reporter, "test"):
            requirements = requirements_for_tests(declared.values(), groups)
            source = BuildSource(unit=unit, commit=manifest["commit"])
            folder = ReleaseFolder(release_dir)
            outputs = checks.unit_tests(git, source, folder, python, requirements, Path(tmp), reporter)
        if out is not None:
            shutil.copytree(release_dir, out, dirs_exist_ok=True)  # the tested wheels, for the GPU job
    lines = [f"{name}: {output.strip().splitlines()[-1].strip('= ')}" for name, output in outputs if output.strip()]
    return checks.JobResult(f"test {unit.name} ({Path(python).name})", True, "; ".join(lines))


def ci(*, repo: Path, component: str | None, settings: Settings, reporter: Reporter) -> list[checks.JobResult]:
    """``cuda-ci ci``: :func:`lint` and every :func:`ci_test` (or one unit's); failures gathered, not fatal early."""
    results = lint(repo=repo, reporter=reporter)
    for unit in [get_unit(component)] if component else list(UNITS):
        try:
            results.append(ci_test(repo=repo, component=unit.name, settings=settings, reporter=reporter))
        except CudaCiError as error:
            results.append(checks.JobResult(f"test {unit.name}", False, "\n".join(error.problems)))
    return results
