"""What a plan reads from the repository (the impure half of planning; :mod:`cuda_ci.plan.release` is the pure one)."""

from __future__ import annotations

from cuda_ci.build import scm
from cuda_ci.build.builder import BuildSource
from cuda_ci.build.identifiers import host_identifier
from cuda_ci.build.identity import snapshot_version
from cuda_ci.build.wheel_jobs import linux_wheel_jobs, selected_identifiers
from cuda_ci.infra.git import Git
from cuda_ci.infra.log import Reporter
from cuda_ci.plan.release import RepositoryState, Runner, WheelJob


def repository_state(
    git: Git, source: BuildSource, runner: Runner, reporter: Reporter, prebuilt: bool = False
) -> RepositoryState:
    """The commit, every distribution's version and, for Dagger (or wheels built by earlier jobs),
    cibuildwheel's Linux wheel jobs and Windows selection.

    A tag's (or rehearsal's) version is the tag's: build checks that setuptools-scm agrees. A
    snapshot's is setuptools-scm's dev version at the commit, made unique to it.
    """
    unit = source.unit
    platform = next((c.dir for c in unit.components if c.wheel == "platform"), None)
    selection_dir = platform if runner == "dagger" or prebuilt else None
    version = str(source.tag.version) if source.tag is not None else None
    jobs: list[WheelJob] = []
    windows: list[str] = []
    if version is None or selection_dir is not None:  # only these read the commit's tree
        with git.worktree(source.commit) as tree:
            if version is None:
                version = snapshot_version(scm.component_version(tree, unit.primary), source.commit)
            if selection_dir is not None:
                jobs = [
                    WheelJob(identifier=job.identifier, platform=job.platform, image=job.image, python=str(job.python))
                    for job in linux_wheel_jobs(tree / selection_dir)
                ]
                windows = selected_identifiers(tree / selection_dir, "windows")
    reporter.info(f"plan: {unit.name} {version} at {source.commit[:12]}")
    return RepositoryState(
        commit=source.commit,
        versions={c.distribution: version for c in unit.components},
        wheel_jobs=tuple(jobs),
        host_identifier=host_identifier(),
        windows_identifiers=tuple(windows),
    )
