"""Sibling components (cuda-core → cuda-bindings → cuda-pathfinder) built from the same commit.

Installs of a release never take siblings from the public PyPI, where these names hold other
builds: smoke installs and docs take them from wheels built here, at the release's commit.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from cuda_ci.build import ComponentBuild, build_environ, check_clone, run_frontend
from cuda_ci.buildenv import build_tool_env
from cuda_ci.components import ReleaseUnit, dependency_closure
from cuda_ci.git import Git
from cuda_ci.log import Reporter

SIBLINGS_DIR = "siblings"


def sibling_wheels(repo: Path, commit: str, unit: ReleaseUnit, dest: Path, reporter: Reporter) -> list[Path]:
    """Wheels of every sibling the unit needs, built once at ``commit`` into ``dest`` (reused after)."""
    needed = dependency_closure(unit)
    if not needed:
        return []
    marker = dest / f".commit-{commit}"
    if marker.is_file():
        return sorted(dest.glob("*.whl"))
    git = Git.open(repo)
    check_clone(git, reporter)
    dest.mkdir(parents=True, exist_ok=True)
    env = build_environ(git.commit_time(commit))
    with git.worktree(commit) as tree, tempfile.TemporaryDirectory(prefix="cuda-ci-siblings-") as tmp:
        for component in needed:
            with reporter.step(f"build sibling {component.distribution} at {commit[:7]}"):
                build = ComponentBuild(component=component, sdist=False, wheel=True, repair=False)
                run_frontend(
                    build,
                    tree / component.dir,
                    dest,
                    Path(tmp) / f"{component.dir}.json",
                    env=env,
                    kept=build_tool_env(tree / component.dir, build.python, reporter),
                    reporter=reporter,
                    cwd=tree,
                    what=f"build of sibling {component.distribution}",
                )
    marker.write_text(commit + "\n")
    return sorted(dest.glob("*.whl"))
