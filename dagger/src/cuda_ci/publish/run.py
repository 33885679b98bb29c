"""The release run's parts that ``commands`` composes: GitHub clients, the index targets and the
dry-run's embedded indexes, publishing a folder to its targets, the release lock and ``run-log.json``."""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cuda_ci.build.siblings import folder_siblings
from cuda_ci.infra.components import get_unit
from cuda_ci.infra.errors import CudaCiError
from cuda_ci.infra.git import Git
from cuda_ci.infra.github import GitHub
from cuda_ci.infra.index import EmbeddedIndex, embedded_indexes
from cuda_ci.infra.log import Reporter
from cuda_ci.infra.manifest import Manifest, ReleaseFolder
from cuda_ci.infra.process import clean_environ
from cuda_ci.infra.settings import IndexName, Settings
from cuda_ci.publish.publish_log import LOG_NAME, PublishLog
from cuda_ci.publish.refusals import publish_refusals
from cuda_ci.publish.releases import GitHubReleases, LocalReleases, ReleaseHost
from cuda_ci.publish.rerun import target_outcomes
from cuda_ci.publish.targets import (
    BOTH_PHASES,
    TARGETS,
    IndexPhase,
    Target,
    check_release_folder,
    finalize,
    publish_github,
    publish_index,
    seed_index,
    twine_environment,
)
from cuda_ci.publish.uploads import IndexTarget
from cuda_ci.publish.window import check_upload_windows


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
    return GitHubReleases(github_client(settings, reporter), on_retry=reporter.info, on_warning=reporter.warn)


def _index_target(name: str, settings: Settings, *, uploads: bool = True) -> IndexTarget:
    """``name``'s index; twine's credentials only where this run uploads (``uploads``)."""
    index = settings.indexes[name]  # type: ignore[index]
    token_variable = f"CUDA_CI_{name.upper()}_TOKEN"
    env = (
        twine_environment(
            index.token, settings.in_github_actions, name, token_variable, index.username, oidc=settings.oidc
        )
        if uploads
        else {}
    )
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
    siblings: list[Path]  # checked against the record made when they were built

    def ready(self) -> dict[str, IndexTarget]:
        for index in self.started:
            index.wait_until_listening()
        return self.targets


@contextmanager
def dry_run_indexes(
    folder: ReleaseFolder,
    targets: Sequence[Target],
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
    siblings = folder_siblings(folder.path, manifest["commit"], unit)
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
        yield DryRunIndexes(indexes, list(started.values()), siblings)


def publish_folder(
    repo: Path | None,
    release_dir: Path,
    target: str,
    dry_run: bool,
    settings: Settings,
    reporter: Reporter,
    *,
    phases: Sequence[IndexPhase] = BOTH_PHASES,
) -> dict[str, str]:
    """Every asked target in order; what each did (``nothing to do`` on a finished release).
    ``phases``: of an index target, the upload or the install-back alone (see :func:`publish_index`).
    One publish of a folder at a time (:func:`publish_lock`)."""
    folder = ReleaseFolder.existing(release_dir)
    with publish_lock(folder.path):
        return _publish_locked(folder, repo, target, dry_run, settings, reporter, phases)


def _publish_locked(
    folder: ReleaseFolder,
    repo: Path | None,
    target: str,
    dry_run: bool,
    settings: Settings,
    reporter: Reporter,
    phases: Sequence[IndexPhase],
) -> dict[str, str]:
    manifest = folder.load()
    targets: tuple[Target, ...] = TARGETS if target == "all" else (target,)  # type: ignore[assignment]
    check_release_folder(folder, manifest, repo)
    refusals = publish_refusals(folder, manifest, dry_run=dry_run)
    if refusals:
        raise CudaCiError(*refusals, "publish refused: nothing was uploaded")
    log = PublishLog(folder.path / LOG_NAME)
    first_entry = len(log.entries)
    # Made on first use: only the targets that speak to GitHub need its settings (TestPyPI never does).
    host: Callable[[], ReleaseHost] = functools.cache(
        lambda: LocalReleases(folder.path / "github-release") if dry_run else _github_host(settings, reporter)
    )
    with ExitStack() as stack:
        siblings: list[Path] = []
        if dry_run:
            prepared = stack.enter_context(dry_run_indexes(folder, targets, manifest, settings, reporter))
            indexes, siblings = prepared.ready(), prepared.siblings
        else:
            uploads = "upload" in phases
            indexes = {n: _index_target(n, settings, uploads=uploads) for n in ("testpypi", "pypi") if n in targets}
        # Each index target's window before anything is uploaded to it (with --target all, before the
        # GitHub draft too); the plan's publish:testpypi and publish:pypi nodes each check their own.
        _check_upload_windows(list(indexes.values()), manifest, dry_run, settings, reporter)
        for name in targets:
            with reporter.step(f"publish --target {name}"):
                if name == "github":
                    publish_github(host(), folder, manifest, log, reporter)
                elif name == "finalize":
                    finalize(host(), folder, manifest, log, reporter)
                else:
                    publish_index(
                        indexes[name],
                        folder,
                        manifest,
                        log,
                        reporter,
                        pre=dry_run,
                        install_delay=1.0 if dry_run else 30.0,
                        phases=phases,
                        siblings=siblings,
                    )
    return target_outcomes(log.entries[first_entry:])


def _check_upload_windows(
    indexes: list[IndexTarget], manifest: Manifest, dry_run: bool, settings: Settings, reporter: Reporter
) -> None:
    """PyPI's upload window, known before the first target runs (see :mod:`cuda_ci.publish.window`)."""
    if not indexes:
        return
    if dry_run:
        reporter.note("upload window: not applied to the embedded indexes (pypiserver takes new files at any age)")
        return
    check_upload_windows(indexes, manifest, settings.upload_window_days, reporter, datetime.now(UTC))


@contextmanager
def release_lock(git: Git, name: str) -> Iterator[None]:
    """One release of a tag at a time on this machine; a second run refuses at once."""
    lock_dir = Path(git.run("rev-parse", "--git-common-dir").stdout.strip())
    lock_dir = lock_dir if lock_dir.is_absolute() else git.root / lock_dir
    fd = _open_lock(lock_dir / f"cuda-ci-release-{name}.lock")
    with _exclusive(fd, f"another cuda-ci release of {name} is running"):
        yield


PUBLISH_LOCK = "publish.lock"


@contextmanager
def publish_lock(folder: Path) -> Iterator[None]:
    """One publish of a release folder at a time; a second refuses at once, naming the holder.

    Taken before anything else is done: a folder where the lock (or publish-log.json) cannot be
    written is refused here, before the first upload."""
    try:
        fd = _open_lock(folder / PUBLISH_LOCK)
    except OSError as error:
        if (folder / PUBLISH_LOCK).is_symlink():
            raise CudaCiError(
                f"{folder / PUBLISH_LOCK} is a symbolic link: a release folder holds only plain files; remove it"
            ) from None
        raise _not_writable(folder, error) from None
    with _exclusive(fd, f"another cuda-ci publish of {folder} is running"):
        check_writable(folder)
        yield


def check_writable(folder: Path) -> None:
    """Write (and remove) a file where publish-log.json goes: a read-only folder is refused up front."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".cuda-ci-write-check-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise _not_writable(folder, error) from None


def _not_writable(folder: Path, error: OSError) -> CudaCiError:
    return CudaCiError(
        f"the release folder {folder} is not writable ({error.strerror or error}): publish records what it "
        "does in publish-log.json there; make the folder writable (or copy it somewhere writable) and run "
        "again; nothing was uploaded"
    )


def _open_lock(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)


@contextmanager
def _exclusive(fd: int, busy: str) -> Iterator[None]:
    """An exclusive lock on the open lock file ``fd`` for the body (it is closed after); when another
    process holds it, refuse with ``busy`` and the holder (its pid, written in the file)."""
    with os.fdopen(fd, "r+") as handle:
        try:
            _lock_exclusive(handle.fileno())
        except (BlockingIOError, PermissionError):
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise CudaCiError(f"{busy} ({holder}): wait for it to finish") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        yield


def _lock_exclusive(fd: int) -> None:
    """Take a non-blocking exclusive lock; the OS drops it when the process ends, even on a crash."""
    if os.name == "nt":  # pragma: no cover - exercised on the Windows runner
        import msvcrt

        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined,unused-ignore]
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
