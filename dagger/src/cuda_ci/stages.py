"""Entry points the CLI (and the Dagger containers through it) call: one function per command."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from cuda_ci.build import BuildSource, execute_build, native_cibuildwheel_platform, plan_build
from cuda_ci.components import get_unit
from cuda_ci.declared import check_unit, docs_requirements
from cuda_ci.docs import build_docs, sphinx_env
from cuda_ci.errors import CudaCiError, UsageError
from cuda_ci.frontend import check_clone
from cuda_ci.git import Git
from cuda_ci.github import GitHub
from cuda_ci.index import EmbeddedIndex, embedded_indexes
from cuda_ci.log import Reporter
from cuda_ci.manifest import CiGate, DocsResult, Manifest, ReleaseFolder, ValidationEntry, write_json_atomic
from cuda_ci.preflight import Preflight, PreflightRequest, run_preflight
from cuda_ci.process import PYTHON, clean_environ
from cuda_ci.publish import (
    TARGETS,
    IndexTarget,
    PublishLog,
    Target,
    check_release_folder,
    finalize,
    publish_github,
    publish_index,
    seed_index,
    twine_environment,
)
from cuda_ci.publishable import docs_outcome, publish_refusals, record_docs
from cuda_ci.rehearsal import checked_ref
from cuda_ci.releases import GitHubReleases, LocalReleases, ReleaseHost
from cuda_ci.rerun import target_outcomes
from cuda_ci.secrets import redact
from cuda_ci.settings import IndexName, RunnerSettings, Settings
from cuda_ci.siblings import SIBLINGS_DIR, sibling_wheels
from cuda_ci.tags import parse_tag
from cuda_ci.validate import smoke_release, validate_release
from cuda_ci.wheels import linux_container_engine


def resolve_source(
    git: Git, tag: str | None, component: str | None, *, rehearse: bool = False, ref: str | None = None
) -> BuildSource:
    """The unit and commit a command works on: the tag's commit, HEAD for a snapshot, or a rehearsal's ref."""
    if tag is None:
        assert component is not None
        return BuildSource(unit=get_unit(component), commit=git.head())
    release_tag = parse_tag(tag, component)
    if rehearse:
        rehearsed = checked_ref(git, release_tag, ref).commit
        return BuildSource(unit=release_tag.unit, commit=rehearsed, tag=release_tag, rehearsal=True)
    commit = git.commit_of(release_tag.ref)
    if commit is None:
        kind = git.peeled_type(release_tag.ref)
        what = f"names a {kind}, not a commit" if kind else "does not exist in " + str(git.root)
        raise CudaCiError(f"tag {tag} {what}: create it on a main commit (git tag -a {tag} <commit>) and fetch tags")
    return BuildSource(unit=release_tag.unit, commit=commit, tag=release_tag)


def default_out(git: Git, source: BuildSource) -> Path:
    if source.tag is None:
        name = f"snapshot-{source.unit.name}-{source.commit[:7]}"
    elif source.rehearsal:
        name = f"rehearsal-{source.tag.name}-{source.commit[:7]}"
    else:
        name = source.tag.name
    return git.root / ".release" / name


def build_only(
    *,
    repo: Path,
    tag: str | None,
    component: str | None,
    wheels_only: bool,
    out: Path | None,
    runner: RunnerSettings,
    reporter: Reporter,
    rehearse: bool = False,
    ref: str | None = None,
) -> tuple[Manifest, Path]:
    """``cuda-ci build``: without preflight the CI gate is not verified, unless the runner hands it over."""
    git = Git.open(repo)
    check_clone(git, reporter)
    source = resolve_source(git, tag, component, rehearse=rehearse, ref=ref)
    check_unit(git, source.commit, source.unit)  # bad declarations are refused before anything is built
    folder = ReleaseFolder.fresh((out or default_out(git, source)).resolve())
    # Inside a Dagger wheel job the container is already the build environment cibuildwheel would use.
    cibuildwheel = wheels_only and not runner.build_python
    engine = linux_container_engine() if cibuildwheel else None
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
    gate = _handed_gate(runner) or CiGate(status="snapshot" if source.snapshot else "not-verified", run_url=None)
    with reporter.in_stage("build"):
        manifest = execute_build(plan, git, folder, reporter, gate, runner.built_by)
    return manifest, folder.path


def _handed_gate(runner: RunnerSettings) -> CiGate | None:
    """The CI gate preflight resolved in another container (CUDA_CI_CI_GATE)."""
    if not runner.ci_gate_json:
        return None
    data = json.loads(runner.ci_gate_json)
    if data.get("status") not in ("verified", "not-verified", "snapshot"):
        raise UsageError(f"CUDA_CI_CI_GATE has no valid status: {runner.ci_gate_json[:80]!r}")
    return CiGate(status=data["status"], run_url=data.get("run_url"))


# --- the release run -----------------------------------------------------------------------------


def preflight(*, repo: Path, request: PreflightRequest, settings: Settings, reporter: Reporter) -> Preflight:
    git = Git.open(repo)
    if request.snapshot:
        check_clone(git, reporter)
    with reporter.in_stage("preflight"):
        return run_preflight(git, request, settings, reporter)


def validate(*, repo: Path, release_dir: Path, extra_dist: Path | None, reporter: Reporter) -> Manifest:
    folder = ReleaseFolder.existing(release_dir)
    with reporter.in_stage("validate"):
        return validate_release(folder, repo, extra_dist, reporter)


def smoke(*, repo: Path, release_dir: Path, settings: Settings, reporter: Reporter) -> list[ValidationEntry]:
    folder = ReleaseFolder.existing(release_dir)
    with reporter.in_stage("smoke"):
        return smoke_release(folder, repo, settings.runner.build_python or PYTHON, reporter)


def docs(*, repo: Path, release_dir: Path, reporter: Reporter) -> list[Path]:
    """The docs stage; its result (built or failed) is recorded in the validated manifest."""
    folder = ReleaseFolder.existing(release_dir)
    problems = folder.verify_hashes(folder.load())
    if problems:
        raise CudaCiError(*problems, "docs refused: the folder is not what validate checked")
    outcome: list[DocsResult] = []
    try:
        with reporter.in_stage("docs"), docs_outcome(folder, outcome):
            return build_docs(folder, repo, reporter)
    finally:
        if outcome:
            record_docs(folder, outcome[0])


def github_client(settings: Settings, reporter: Reporter) -> GitHub:
    github = GitHub.from_settings(settings, reporter.info)
    if github is None:
        raise CudaCiError(
            "GITHUB_REPOSITORY and GITHUB_TOKEN (or GH_TOKEN) must be set to reach GitHub (or use --dry-run)"
        )
    return github


def github_reader(settings: Settings, reporter: Reporter) -> GitHub:
    """A client that reads published releases: a public repository needs no token."""
    github = GitHub.from_settings(settings, reporter.info, token_required=False)
    if github is None:
        raise CudaCiError("GITHUB_REPOSITORY must be set (owner/name) to read its releases on GitHub")
    return github


def _github_host(settings: Settings, reporter: Reporter) -> ReleaseHost:
    return GitHubReleases(github_client(settings, reporter), on_retry=reporter.info)


def _index_target(name: str, settings: Settings) -> IndexTarget:
    index = settings.indexes[name]  # type: ignore[index]
    token_variable = f"CUDA_CI_{name.upper()}_TOKEN"
    env = twine_environment(index.token, settings.in_github_actions, name, token_variable, index.username)
    return IndexTarget(
        name=name,
        upload_url=index.upload_url,
        simple_url=index.simple_url,
        twine_env=env,
        simple_auth=index.simple_auth,
    )


@dataclass(frozen=True)
class DryRunIndexes:
    """The dry-run's indexes, possibly still starting: ``ready()`` before the first upload."""

    targets: dict[str, IndexTarget]
    started: list[EmbeddedIndex]

    def ready(self) -> dict[str, IndexTarget]:
        for index in self.started:
            index.wait_until_listening()
        return self.targets


@contextmanager
def _dry_run_indexes(
    folder: ReleaseFolder,
    targets: Sequence[Target],
    repo: Path,
    manifest: Manifest,
    settings: Settings,
    reporter: Reporter,
) -> Iterator[DryRunIndexes]:
    """Embedded indexes (started here, or already running as Dagger services), holding the siblings.

    An index started here gets the sibling wheels in its folder before it starts (pypiserver serves
    its folder); a running one gets them uploaded. Either way only this run's own files go through
    the upload that publish checks.
    """
    unit = get_unit(manifest["component"])
    siblings = sibling_wheels(repo, manifest["commit"], unit, folder.path / SIBLINGS_DIR, reporter)
    names: list[IndexName] = [name for name in ("testpypi", "pypi") if name in targets]
    running = settings.runner.dry_run_index_urls or {}
    env = clean_environ(TWINE_USERNAME="cuda-ci", TWINE_PASSWORD="dry-run", TWINE_NON_INTERACTIVE="1")
    to_start: dict[str, Path] = {name: folder.path / "index" / name for name in names if name not in running}
    for root in to_start.values():
        root.mkdir(parents=True, exist_ok=True)
        for wheel in siblings:
            if not (root / wheel.name).is_file():
                shutil.copy2(wheel, root / wheel.name)
    with embedded_indexes(to_start) as started:
        indexes: dict[str, IndexTarget] = {}
        for name in names:
            base = (running[name] if name in running else started[name].upload_url).rstrip("/")
            indexes[name] = IndexTarget(name=name, upload_url=f"{base}/", simple_url=f"{base}/simple/", twine_env=env)
            reporter.info(f"embedded {name} index: {base}/simple/")
            if name in running:
                seed_index(indexes[name], siblings, reporter)
        if siblings:
            reporter.note("sibling check: not verified (siblings built from the same commit into the embedded index)")
        yield DryRunIndexes(indexes, list(started.values()))


def publish(
    *,
    repo: Path | None,
    release_dir: Path,
    target: str,
    dry_run: bool,
    settings: Settings,
    reporter: Reporter,
    started_indexes: DryRunIndexes | None = None,
) -> dict[str, str]:
    """Every asked target in order; what each did (``nothing to do`` on a finished release)."""
    folder = ReleaseFolder.existing(release_dir)
    manifest = folder.load()
    targets: tuple[Target, ...] = TARGETS if target == "all" else (target,)  # type: ignore[assignment]
    with reporter.in_stage("publish"):
        check_release_folder(folder, manifest, repo)
        refusals = publish_refusals(folder, manifest, dry_run=dry_run)
        if refusals:
            raise CudaCiError(*refusals, "publish refused: nothing was uploaded")
        log = PublishLog(folder.path / "publish-log.json")
        first_entry = len(log.entries)
        host: ReleaseHost = (
            LocalReleases(folder.path / "github-release") if dry_run else _github_host(settings, reporter)
        )
        with ExitStack() as stack:
            if dry_run:
                prepared = started_indexes or stack.enter_context(
                    _dry_run_indexes(folder, targets, repo or Path("."), manifest, settings, reporter)
                )
                indexes = prepared.ready()
            else:
                indexes = {name: _index_target(name, settings) for name in ("testpypi", "pypi") if name in targets}
            for name in targets:
                with reporter.step(f"publish --target {name}"):
                    if name == "github":
                        publish_github(host, folder, manifest, log, reporter)
                    elif name == "finalize":
                        finalize(host, folder, manifest, log, reporter)
                    else:
                        publish_index(
                            indexes[name],
                            folder,
                            manifest,
                            log,
                            reporter,
                            pre=dry_run,
                            install_delay=1.0 if dry_run else 30.0,
                        )
        return target_outcomes(log.entries[first_entry:])


@contextmanager
def release_lock(git: Git, name: str) -> Iterator[None]:
    """One release of a tag at a time on this machine; a second run refuses at once."""
    lock_dir = Path(git.run("rev-parse", "--git-common-dir").stdout.strip())
    lock_dir = lock_dir if lock_dir.is_absolute() else git.root / lock_dir
    path = lock_dir / f"cuda-ci-release-{name}.lock"
    handle = path.open("a+")
    try:
        try:
            _lock_exclusive(handle.fileno())
        except (BlockingIOError, PermissionError):
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise CudaCiError(
                f"another cuda-ci release of {name} is running ({holder}): wait for it to finish"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        yield
    finally:
        handle.close()


def _lock_exclusive(fd: int) -> None:
    """Take a non-blocking exclusive lock; the OS drops it when the process ends, even on a crash."""
    if os.name == "nt":  # pragma: no cover - exercised on the Windows runner
        import msvcrt

        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined,unused-ignore]
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def write_run_log(folder: Path, reporter: Reporter, status: str, command: str, errors: Sequence[str] = ()) -> None:
    """Per-stage times, notes and, for a failed run, every ``error:`` it printed (``errors``)."""
    if folder.is_dir():
        data = {
            "schema": 1,
            "command": command,
            "status": status,
            "errors": [redact(e) for e in errors],
            "stages": reporter.stage_seconds(),
            "steps": [vars(s) for s in reporter.steps],
            "notes": reporter.notes,
        }
        write_json_atomic(folder / "run-log.json", data)


def build_with_siblings(
    git: Git, source: BuildSource, folder: ReleaseFolder, ci_gate: CiGate, reporter: Reporter
) -> None:
    """The release's build, and beside it what later stages need: the sibling wheels its installs
    take (same commit) and the kept Sphinx environment of the ``docs`` groups. The components'
    declarations are checked first: a bad one is refused before anything is built."""
    siblings = folder.path / SIBLINGS_DIR
    docs = docs_requirements(check_unit(git, source.commit, source.unit).values())
    with (
        reporter.alongside(
            lambda child: sibling_wheels(git.root, source.commit, source.unit, siblings, child),
            lambda child: sphinx_env(docs, child),
        ),
        reporter.in_stage("build"),
    ):
        execute_build(plan_build(source), git, folder, reporter, ci_gate)


def validate_and_docs(repo: Path, folder: ReleaseFolder, extra_dist: Path | None, reporter: Reporter) -> None:
    """validate and docs side by side (both read the built files; only validate writes the manifest)."""
    manifest = folder.load()
    sibling_wheels(repo, manifest["commit"], get_unit(manifest["component"]), folder.path / SIBLINGS_DIR, reporter)

    outcome: list[DocsResult] = []

    def run_docs(child: Reporter) -> None:
        with child.in_stage("docs"), docs_outcome(folder, outcome):
            build_docs(folder, repo, child, alongside_validate=True)

    try:
        with reporter.alongside(run_docs):
            validate(repo=repo, release_dir=folder.path, extra_dist=extra_dist, reporter=reporter)
    finally:  # recorded once validate has written the manifest (only a validated manifest takes it)
        if outcome:
            record_docs(folder, outcome[0])


def release(
    *,
    repo: Path,
    request: PreflightRequest,
    no_publish: bool,
    extra_dist: Path | None,
    out: Path | None,
    settings: Settings,
    reporter: Reporter,
) -> Path:
    """preflight → build (once) → validate → docs → publish, handing the release folder along."""
    git = Git.open(repo)
    check_clone(git, reporter)
    dry_run = request.dry_run or request.snapshot
    if out is not None:  # refused before anything runs; the default folder is known after preflight
        ReleaseFolder.fresh(out.resolve())
    found = preflight(repo=repo, request=request, settings=settings, reporter=reporter)
    source = found.source
    # Checked again before anything is written: a refused run writes nothing, not even run-log.json.
    folder = ReleaseFolder.fresh((out or default_out(git, source)).resolve())
    lock_name = source.tag.name if source.tag else f"snapshot-{source.unit.name}"
    status, errors = "failed", list[str]()
    with release_lock(git, lock_name), ExitStack() as stack:
        try:
            build_with_siblings(git, source, folder, found.ci_gate, reporter)
            started_indexes = None
            if dry_run and not no_publish:  # the embedded indexes start while validate and docs run
                started_indexes = stack.enter_context(
                    _dry_run_indexes(folder, TARGETS, repo, folder.load(), settings, reporter)
                )
            validate_and_docs(repo, folder, extra_dist, reporter)
            if not no_publish:
                publish(
                    repo=repo,
                    release_dir=folder.path,
                    target="all",
                    dry_run=dry_run,
                    settings=settings,
                    reporter=reporter,
                    started_indexes=started_indexes,
                )
            status = "succeeded"
        except CudaCiError as error:
            errors = list(error.problems)
            raise
        except Exception as error:
            errors = [f"internal error: {type(error).__name__}: {error}"]
            raise
        finally:
            write_run_log(folder.path, reporter, status, "release", errors)
    return folder.path
