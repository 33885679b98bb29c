"""Sibling components (cuda-core → cuda-bindings → cuda-pathfinder) built from the same commit.

Installs of a release never take siblings from the public PyPI, where these names hold other
builds: smoke installs, docs and builds that compile against a sibling (cuda-core's Cython against
cuda-bindings' ``.pxd`` files) take them from wheels built here, at the release's commit.
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

from cuda_ci.build.backend_env import build_tool_env
from cuda_ci.build.frontend import ComponentBuild, build_environ, check_clone, run_frontend
from cuda_ci.build.sibling_record import record_path, recorded_files, write_record
from cuda_ci.infra.components import Component, ReleaseUnit, dependency_closure
from cuda_ci.infra.errors import CudaCiError
from cuda_ci.infra.git import Git
from cuda_ci.infra.log import Reporter
from cuda_ci.infra.manifest import place
from cuda_ci.infra.process import PYTHON

SIBLINGS_DIR = "siblings"
# The build and the stages beside it ask for the same folder at once: the first builds, the rest wait.
_FOLDER_LOCKS: dict[Path, threading.Lock] = {}
_LOCKS_LOCK = threading.Lock()


def sibling_wheels(
    repo: Path, commit: str, unit: ReleaseUnit, dest: Path, reporter: Reporter, python: str = PYTHON
) -> list[Path]:
    """Wheels of every sibling the unit needs, built once at ``commit`` for ``python`` into ``dest``
    (reused after)."""
    needed = dependency_closure(unit)
    if not needed:
        return []
    with _LOCKS_LOCK:
        lock = _FOLDER_LOCKS.setdefault(dest.resolve(), threading.Lock())
    with lock:
        return _build_once(repo, commit, needed, dest, reporter, python, sdists=False)


def folder_siblings(folder: Path, commit: str, unit: ReleaseUnit) -> list[Path]:
    """The sibling wheels ``build`` put in a release folder; refused (never built here) when missing.

    Every stage after build reads them from the folder, so a folder that lacks them is incomplete:
    it was not made by ``cuda-ci build`` (or was cut short), and nothing later makes up for it.
    """
    needed = dependency_closure(unit)
    if not needed:
        return []
    dest = folder / SIBLINGS_DIR
    marker = dest / f".commit-{commit}"
    wheels = sorted(p for p in dest.glob("*.whl") if p.is_file() and not p.is_symlink()) if dest.is_dir() else []
    found = {p.name.split("-")[0].lower() for p in wheels}
    missing = [c.distribution for c in needed if c.project_name.lower() not in found]
    if dest.is_symlink() or not marker.is_file() or missing:
        names = ", ".join(missing or [c.distribution for c in needed])
        raise CudaCiError(
            f"{dest} lacks the sibling wheels {unit.name} needs ({names}, built by `cuda-ci build` at {commit[:12]}): "
            "the release folder is incomplete; build it again (cuda-ci build, or the whole release)"
        )
    return wheels


def sibling_sdists(repo: Path, commit: str, unit: ReleaseUnit, dest: Path, reporter: Reporter) -> list[Path]:
    """The sdists of every sibling the unit needs, at ``commit`` (cibuildwheel builds them per identifier)."""
    needed = dependency_closure(unit)
    return _build_once(repo, commit, needed, dest, reporter, PYTHON, sdists=True) if needed else []


def _build_once(
    repo: Path, commit: str, needed: tuple[Component, ...], dest: Path, reporter: Reporter, python: str, *,
    sdists: bool,
) -> list[Path]:  # fmt: skip
    if os.path.lexists(record_path(dest, commit)):  # built before: used only as recorded then
        return recorded_files(dest, commit)
    git = Git.open(repo)
    check_clone(git, reporter)
    dest.mkdir(parents=True, exist_ok=True)
    env = build_environ(git.commit_time(commit))
    with git.worktree(commit) as tree, tempfile.TemporaryDirectory(prefix="cuda-ci-siblings-") as tmp:
        out = Path(tmp) / "out"  # only what is built now is moved into dest and recorded
        for component in needed:
            kind = "sdist" if sdists else "wheel"
            with reporter.step(f"build sibling {component.distribution} {kind} at {commit[:7]}"):
                build = ComponentBuild(component=component, sdist=sdists, wheel=not sdists, repair=False, python=python)
                run_frontend(
                    build,
                    tree / component.dir,
                    out,
                    Path(tmp) / f"{component.dir}.json",
                    env=env,
                    kept=build_tool_env(tree / component.dir, build.python, reporter),
                    reporter=reporter,
                    cwd=tree,
                    what=f"build of sibling {component.distribution}",
                )
        built = [_place_into(path, dest) for path in sorted(out.iterdir()) if path.is_file()]
    write_record(dest, commit, built)
    return sorted(built)


def _place_into(path: Path, dest: Path) -> Path:
    target = dest / path.name
    place(path, target)
    return target
