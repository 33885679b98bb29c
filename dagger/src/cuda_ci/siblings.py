"""Sibling components (cuda-core → cuda-bindings → cuda-pathfinder) built from the same commit.

Installs of a release never take siblings from the public PyPI, where these names hold other
builds: smoke installs and docs take them from wheels built here, at the release's commit.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from cuda_ci.build import ComponentBuild, build_argv, build_environ, build_tool_env, check_clone
from cuda_ci.components import ReleaseUnit, dependency_closure
from cuda_ci.git import Git
from cuda_ci.log import Reporter
from cuda_ci.process import run
from cuda_ci.toolenvs import tool_environ

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
                kept = build_tool_env(tree / component.dir, build.python, reporter)
                tool_python = str(kept.python) if kept else None
                argv = build_argv(build, tree / component.dir, dest, Path(tmp) / f"{component.dir}.json", tool_python)
                run(
                    argv,
                    what=f"build of sibling {component.distribution}",
                    reporter=reporter,
                    cwd=tree,
                    env=tool_environ(env) if tool_python else env,
                )
    marker.write_text(commit + "\n")
    return sorted(dest.glob("*.whl"))
