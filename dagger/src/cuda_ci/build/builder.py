"""Build a release unit once from one commit: plan first, then a small executor.

The plan (what to build, which identifiers are expected) is pure and unit-tested; the executor
runs the PyPA ``build`` frontend in a clean worktree and repairs platform wheels with auditwheel.
"""

from __future__ import annotations

import errno
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from cuda_ci.build import scm
from cuda_ci.build.backend_env import build_tool_env
from cuda_ci.build.component_build import BuiltFile, build_component, write_build_requirements
from cuda_ci.build.frontend import ComponentBuild, build_environ
from cuda_ci.build.identifiers import cibuildwheel_identifiers, host_identifier, native_archs
from cuda_ci.build.identity import pretend_environ, snapshot_version
from cuda_ci.build.sbom import sbom_name, wheel_sbom
from cuda_ci.build.siblings import SIBLINGS_DIR, sibling_sdists, sibling_wheels
from cuda_ci.build.wheel_check import Expected, prebuilt_problems
from cuda_ci.infra.components import Component, ReleaseUnit
from cuda_ci.infra.envs import Env
from cuda_ci.infra.errors import CommandError, CudaCiError, UsageError
from cuda_ci.infra.git import Git
from cuda_ci.infra.log import Reporter
from cuda_ci.infra.manifest import (
    BuiltBy,
    CiGate,
    FileEntry,
    FileKind,
    Manifest,
    ReleaseFolder,
    VersionSource,
    file_entry,
    place,
    tool_versions,
    write_atomic,
)
from cuda_ci.infra.process import PYTHON
from cuda_ci.infra.toolenvs import pinned_versions
from cuda_ci.plan.tags import ReleaseTag


@dataclass(frozen=True, kw_only=True)
class BuildSource:
    """What to build: a unit at a commit, for a tag or as a snapshot."""

    unit: ReleaseUnit
    commit: str
    tag: ReleaseTag | None = None
    rehearsal: bool = False  # the commit built as if ``tag`` pointed at it (setuptools-scm's pretend version)

    @property
    def snapshot(self) -> bool:
        return self.tag is None


@dataclass(frozen=True, kw_only=True)
class BuildPlan:
    source: BuildSource
    builds: tuple[ComponentBuild, ...]
    build_identifiers: tuple[str, ...]
    source_archive: bool
    # Dagger builds each Linux identifier in its own container; the files arrive here repaired.
    prebuilt_wheels: Path | None = None
    # The sha256 each wheel job of the run reported for them (a fanned-out workflow's job outputs).
    wheel_reports: Path | None = None


def native_cibuildwheel_platform(container_engine: str | None = None) -> str | None:
    """Where cibuildwheel builds this platform's wheels: natively on Windows and macOS, in
    ``container_engine``'s manylinux containers on Linux (none: this interpreter builds instead)."""
    if sys.platform.startswith("linux"):
        return "linux" if container_engine else None
    return {"win32": "windows", "darwin": "macos"}.get(sys.platform)


def plan_build(
    source: BuildSource,
    *,
    wheels_only: bool = False,
    native_platform: str | None = None,
    prebuilt_wheels: Path | None = None,
    wheel_reports: Path | None = None,
    python: str = PYTHON,
    container_engine: str | None = None,
    test_siblings: tuple[Path, ...] = (),
) -> BuildPlan:
    """Decide what one build of ``source`` produces; nothing runs here."""
    builds: list[ComponentBuild] = []
    for component in source.unit.components:
        platform_wheel = component.wheel == "platform"
        if wheels_only and not platform_wheel:
            continue  # --wheels-only never rebuilds the sdist or a pure wheel
        builds.append(
            ComponentBuild(
                component=component,
                sdist=not wheels_only,
                wheel=not (platform_wheel and prebuilt_wheels),
                repair=platform_wheel and sys.platform.startswith("linux"),
                cibuildwheel_platform=native_platform if (wheels_only and platform_wheel) else None,
                container_engine=container_engine if native_platform == "linux" else None,
                test_siblings=test_siblings if (wheels_only and platform_wheel) else (),
                python=python,
            )
        )
    if wheels_only and not builds:
        raise UsageError(f"--wheels-only: {source.unit.name} has no platform wheels; build it without --wheels-only")
    native = native_platform is not None or prebuilt_wheels is not None
    identifiers = () if not source.unit.has_platform_wheels or native else (host_identifier(),)
    return BuildPlan(
        source=source,
        builds=tuple(builds),
        build_identifiers=identifiers,
        source_archive=not wheels_only,
        prebuilt_wheels=prebuilt_wheels if source.unit.has_platform_wheels else None,
        wheel_reports=wheel_reports if prebuilt_wheels and source.unit.has_platform_wheels else None,
    )


def build_env_versions(envs: Iterable[Env | None]) -> dict[str, str]:
    """``build-env/<name>``: what the kept build environments held (the manifest's ``tools``)."""
    versions: dict[str, set[str]] = {}
    for env in envs:
        for name, version in pinned_versions(env).items() if env else ():
            versions.setdefault(f"build-env/{name}", set()).add(version)
    return {name: " | ".join(sorted(found)) for name, found in sorted(versions.items())}


def resolve_version(tree: Path, source: BuildSource, reporter: Reporter) -> tuple[str, VersionSource]:
    """The unit's version at the commit, and where it came from.

    A release: setuptools-scm's, which must equal the tag's. A rehearsal: the tag's, pretended. A
    snapshot: always a dev version with the commit, never a release's (see :mod:`cuda_ci.build.identity`).
    """
    if source.rehearsal and source.tag is not None:
        return str(source.tag.version), "pretend"
    if source.tag is not None:
        check_tag_unmoved(Git(tree), source.tag, source.commit)
    version = scm.component_version(tree, source.unit.primary)
    if source.tag is not None and version != str(source.tag.version):
        raise CudaCiError(
            f"setuptools-scm computes version {version} for {source.unit.name} at tag {source.tag.name}, "
            f"not {source.tag.version}: check [tool.setuptools_scm] tag_regex and describe_command "
            f"in {source.unit.primary.dir}/pyproject.toml"
        )
    if source.tag is None and not git_has_tag(tree, source.unit.tag_prefix):
        reporter.warn(
            f"no {source.unit.tag_prefix}* tag is reachable from {source.commit[:7]}: "
            f"building {source.unit.name} as the dev version {version}"
        )
    if source.tag is None and (dev := snapshot_version(version, source.commit)) != version:
        return dev, "pretend"
    return version, "scm"


def check_tag_unmoved(git: Git, tag: ReleaseTag, commit: str) -> None:
    """The tag still names the commit resolved for it (by preflight, or when the build began): a tag
    moved meanwhile would make setuptools-scm compute another version, which is no misconfiguration."""
    now = git.commit_of(tag.ref)
    if now != commit:
        where = f"now points to {now[:12]}" if now else "is gone"
        raise CudaCiError(
            f"tag {tag.name} moved while this run used it: it named {commit[:12]} when the run resolved it and "
            f"{where}: a release tag must never move; find out who moved it, put it back (or cut a new tag) "
            "and release again"
        )


def git_has_tag(tree: Path, prefix: str) -> bool:
    """Whether a tag of ``prefix`` is reachable from the checkout's HEAD."""
    described = Git(tree).run("describe", "--tags", "--abbrev=0", "--match", f"{prefix}*", "HEAD", check=False)
    return described.returncode == 0


def execute_build(
    plan: BuildPlan, git: Git, folder: ReleaseFolder, reporter: Reporter, ci_gate: CiGate, built_by: BuiltBy = "host"
) -> Manifest:
    """Run ``plan``: build every file once, repair, archive the source, write the manifest."""
    source = plan.source
    _refuse_used_folder(folder)
    folder.dist.mkdir(parents=True, exist_ok=True)
    entries: list[FileEntry] = []
    epoch = git.commit_time(source.commit)
    identifiers = list(plan.build_identifiers)
    with git.worktree(source.commit) as tree, tempfile.TemporaryDirectory(prefix="cuda-ci-build-") as tmp:
        version, version_source, tool_envs = _prepare(plan, tree, reporter)
        env = build_environ(epoch, tree)
        if version_source == "pretend":
            env = {**env, **pretend_environ(source.unit, version)}
        builds = [_with_build_siblings(b, git, source, folder, tree, Path(tmp), reporter) for b in plan.builds]
        tool_envs = dict(zip(builds, tool_envs.values(), strict=True))
        for build, hashes in _side_by_side(builds, tree, Path(tmp), env, version, tool_envs, reporter):
            for path, file in sorted(hashes.items()):
                target = folder.dist / path.name
                place(path, target)
                kind: FileKind = "sdist" if target.name.endswith(".tar.gz") else "wheel"
                entries.append(
                    file_entry(folder.path, target, kind, build.component.distribution, file.sha256, file.built_from)
                )
            if build.cibuildwheel_platform:
                platform_name = build.cibuildwheel_platform
                identifiers = cibuildwheel_identifiers(
                    tree / build.component.dir, platform_name, native_archs(platform_name)
                )
            if plan.prebuilt_wheels and build.component.wheel == "platform":
                identifiers = cibuildwheel_identifiers(tree / build.component.dir, "linux")
                expected = Expected.of_linux(source.unit, source.commit, version, identifiers)
                entries += _take_prebuilt(plan, expected, build.component, folder)
        if plan.source_archive:
            entries += sbom_entries(folder, [e for e in entries if e["kind"] == "wheel"], epoch)
            entries.append(_source_archive(git, source, version, folder))
    manifest = Manifest(
        schema=1,
        component=source.unit.name,
        tag=source.tag.name if source.tag else None,
        snapshot=source.snapshot,
        rehearsal=source.rehearsal,
        version=version,
        version_source=version_source,
        commit=source.commit,
        ci_gate=ci_gate,
        built_by=built_by,
        tools=tool_versions() | build_env_versions(tool_envs.values()),
        build_identifiers=identifiers,
        files=entries,
    )
    folder.save(manifest)
    return manifest


def _refuse_used_folder(folder: ReleaseFolder) -> None:
    if folder.path.exists() and not folder.path.is_dir():
        raise UsageError(f"--out {str(folder.path)!r} is a file, not a directory: choose a folder")
    if folder.manifest_path.exists() or (folder.dist.is_dir() and any(folder.dist.iterdir())):
        raise UsageError(
            f"--out {str(folder.path)!r} already holds a release folder: remove it or choose another --out"
        )


def _prepare(
    plan: BuildPlan, tree: Path, reporter: Reporter
) -> tuple[str, VersionSource, dict[ComponentBuild, Env | None]]:
    """The version, and the kept build environments, resolved (and made, once) while it is checked."""
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="cuda-ci-build-env") as pool:
        preparing = {
            build: pool.submit(
                build_tool_env, tree / build.component.dir, build.python, reporter, build.component.build_requires
            )
            for build in plan.builds
            if not build.cibuildwheel_platform
        }
        version, version_source = resolve_version(tree, plan.source, reporter)
        return version, version_source, {b: preparing[b].result() if b in preparing else None for b in plan.builds}


def _side_by_side(
    builds: list[ComponentBuild],
    tree: Path,
    tmp: Path,
    env: dict[str, str],
    version: str,
    tool_envs: dict[ComponentBuild, Env | None],
    reporter: Reporter,
) -> list[tuple[ComponentBuild, dict[Path, BuiltFile]]]:
    """The unit's components built side by side (each in its own folder of the worktree)."""
    children = {build: reporter.child() for build in builds}

    def build_one(build: ComponentBuild) -> dict[Path, BuiltFile]:
        with children[build].step(f"build {build.component.distribution} {version}"):
            return build_component(build, tree, tmp / build.component.dir, env, children[build], tool_envs[build])

    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="cuda-ci-build") as pool:
        built = list(pool.map(build_one, builds))
    for build in builds:
        reporter.adopt(children[build])
    return list(zip(builds, built, strict=True))


def sbom_entries(folder: ReleaseFolder, wheels: list[FileEntry], epoch: int) -> list[FileEntry]:
    """A CycloneDX SBOM per wheel in ``assets/``, listed with kind ``sbom``."""
    folder.assets.mkdir(parents=True, exist_ok=True)
    entries = []
    for wheel in wheels:
        target = folder.assets / sbom_name(wheel["name"])
        write_atomic(target, wheel_sbom(folder.path / wheel["path"], wheel["sha256"], epoch).encode("utf-8"))
        entries.append(file_entry(folder.path, target, "sbom", None))
    return entries


def _with_build_siblings(
    build: ComponentBuild,
    git: Git,
    source: BuildSource,
    folder: ReleaseFolder,
    tree: Path,
    tmp: Path,
    reporter: Reporter,
) -> ComponentBuild:
    """``build`` with this commit's builds of the components its backend compiles against: wheels for
    the build environment here, sdists where cibuildwheel builds (one wheel of them per identifier)."""
    if not (build.wheel and build.component.build_requires):
        return build
    if build.cibuildwheel_platform:
        folder_of_sdists = tmp / "build-sibling-sdists"
        sdists = sibling_sdists(git.root, source.commit, source.unit, folder_of_sdists, reporter)
        write_build_requirements(tree / build.component.dir, folder_of_sdists)
        return replace(build, build_siblings=tuple(sdists))
    # The release folder's siblings serve the installs too; another interpreter needs its own, but in a
    # wheel job's folder (no sdist built) they serve its import test (validate.checks.import_test_wheels).
    in_folder = build.python == PYTHON or not build.sdist
    dest = folder.path / SIBLINGS_DIR if in_folder else tmp / "build-siblings"
    wheels = sibling_wheels(git.root, source.commit, source.unit, dest, reporter, python=build.python)
    return replace(build, build_siblings=tuple(wheels))


def _take_prebuilt(plan: BuildPlan, expected: Expected, component: Component, folder: ReleaseFolder) -> list[FileEntry]:
    """The Linux wheels built and repaired per identifier (by Dagger's wheel nodes, or by the wheel jobs of
    a fanned-out workflow), taken into ``dist/`` once every one is checked against the plan."""
    assert plan.prebuilt_wheels is not None
    source = plan.prebuilt_wheels
    wheels = sorted(source.glob(f"{component.project_name}-*.whl"))
    if not wheels:
        raise CudaCiError(f"--prebuilt-wheels {source}: no {component.distribution} wheels there")
    problems = prebuilt_problems(source, expected, plan.wheel_reports)
    if problems:
        raise CudaCiError(*problems, f"--prebuilt-wheels {source} refused: nothing was taken into {folder.dist}")
    entries = []
    for wheel in wheels:
        target = folder.dist / wheel.name
        shutil.copy2(wheel, target)
        entries.append(file_entry(folder.path, target, "wheel", component.distribution))
    return entries


def _source_archive(git: Git, source: BuildSource, version: str, folder: ReleaseFolder) -> FileEntry:
    folder.assets.mkdir(parents=True, exist_ok=True)
    stem = f"{source.unit.name}-{version}"
    target = folder.assets / f"{stem}-source.tar.gz"
    partial = target.with_name(f".{target.name}.partial")
    try:
        git.archive(source.commit, stem, partial)
    except CommandError as error:
        partial.unlink(missing_ok=True)  # never a truncated archive under the real name
        if "No space left on device" in error.problems[0]:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target)) from None
        raise
    os.replace(partial, target)
    return file_entry(folder.path, target, "source-archive", None)
