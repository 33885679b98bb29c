"""Entry points the CLI (and the Dagger containers through it) call: one function per command."""

from __future__ import annotations

from pathlib import Path

from cuda_ci.build import BuildSource, check_clone, execute_build, native_cibuildwheel_platform, plan_build
from cuda_ci.components import get_unit
from cuda_ci.errors import CudaCiError
from cuda_ci.git import Git
from cuda_ci.log import Reporter
from cuda_ci.manifest import CiGate, Manifest, ReleaseFolder
from cuda_ci.tags import parse_tag


def resolve_source(git: Git, tag: str | None, component: str | None) -> BuildSource:
    """The unit and commit a command works on: the tag's commit, or HEAD for a snapshot."""
    if tag is None:
        assert component is not None
        return BuildSource(unit=get_unit(component), commit=git.head())
    release_tag = parse_tag(tag, component)
    commit = git.commit_of(release_tag.ref)
    if commit is None:
        kind = git.peeled_type(release_tag.ref)
        what = f"names a {kind}, not a commit" if kind else "does not exist in " + str(git.root)
        raise CudaCiError(f"tag {tag} {what}: create it on a main commit (git tag -a {tag} <commit>) and fetch tags")
    return BuildSource(unit=release_tag.unit, commit=commit, tag=release_tag)


def default_out(git: Git, source: BuildSource) -> Path:
    name = source.tag.name if source.tag else f"snapshot-{source.unit.name}-{source.commit[:7]}"
    return git.root / ".release" / name


def build_only(
    *, repo: Path, tag: str | None, component: str | None, wheels_only: bool, out: Path | None, reporter: Reporter
) -> tuple[Manifest, Path]:
    """``cuda-ci build``: no preflight, so the CI gate is recorded as not verified."""
    git = Git.open(repo)
    check_clone(git, reporter)
    source = resolve_source(git, tag, component)
    folder = ReleaseFolder((out or default_out(git, source)).resolve())
    plan = plan_build(
        source, wheels_only=wheels_only, native_platform=native_cibuildwheel_platform() if wheels_only else None
    )
    gate = CiGate(status="snapshot" if source.snapshot else "not-verified", run_url=None)
    with reporter.in_stage("build"):
        manifest = execute_build(plan, git, folder, reporter, gate)
    return manifest, folder.path
