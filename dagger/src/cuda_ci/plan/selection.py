"""What build, preflight and release work on: the selection flags, checked (the tag parsed) before
anything runs, and the unit and commit they resolve to."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cuda_ci.build.builder import BuildSource
from cuda_ci.infra.components import UNITS, get_unit
from cuda_ci.infra.errors import CudaCiError, UsageError
from cuda_ci.infra.git import Git
from cuda_ci.plan.rehearsal import checked_ref
from cuda_ci.plan.tags import ReleaseTag, parse_tag
from cuda_ci.preflight.checks import PreflightRequest, missing_tag


@dataclass(frozen=True, kw_only=True)
class Selection:
    """``--tag``/``--component``/``--snapshot``/``--rehearse``/``--ref``, as build, preflight and release take them."""

    tag: str | None = None
    component: str | None = None
    snapshot: bool = False
    rehearse: bool = False
    ref: str | None = None

    def checked(self) -> ReleaseTag | None:
        """The flags' combination and the tag, checked before anything runs: a wrong one (a typo'd or
        non-canonical tag included) is a :class:`UsageError` (exit 2) that names the valid forms."""
        if self.snapshot and self.tag is not None:
            raise UsageError("--snapshot and --tag exclude each other: a snapshot builds HEAD without a tag")
        if self.snapshot and not self.component:
            raise UsageError("--snapshot needs --component (one of " + ", ".join(u.name for u in UNITS) + ")")
        if not self.snapshot and self.tag is None:
            raise UsageError("give --tag TAG, or --snapshot --component C")
        if self.rehearse and self.snapshot:
            raise UsageError(
                "--rehearse and --snapshot exclude each other: a rehearsal builds --ref as if --tag named it"
            )
        if self.ref is not None and not self.rehearse:
            raise UsageError("--ref needs --rehearse: a release builds its tag's commit, a snapshot HEAD")
        return parse_tag(self.tag, self.component) if self.tag is not None else None

    def request(self, dry_run: bool) -> PreflightRequest:
        self.checked()
        return PreflightRequest(
            tag=self.tag,
            component=self.component,
            snapshot=self.snapshot,
            dry_run=dry_run,
            rehearse=self.rehearse,
            ref=self.ref,
        )


def resolve_source(git: Git, selection: Selection) -> BuildSource:
    """The unit and commit a command works on: the tag's commit, HEAD for a snapshot, or a rehearsal's ref."""
    release_tag = selection.checked()
    if release_tag is None:
        return BuildSource(unit=get_unit(selection.component or ""), commit=git.head())
    if selection.rehearse:
        rehearsed = checked_ref(git, release_tag, selection.ref).commit
        return BuildSource(unit=release_tag.unit, commit=rehearsed, tag=release_tag, rehearsal=True)
    commit = git.commit_of(release_tag.ref)
    if commit is None:
        raise CudaCiError(missing_tag(git, release_tag))
    return BuildSource(unit=release_tag.unit, commit=commit, tag=release_tag)


def default_out(git: Git, source: BuildSource) -> Path:
    if source.tag is None:
        name = f"snapshot-{source.unit.name}-{source.commit[:7]}"
    elif source.rehearsal:
        name = f"rehearsal-{source.tag.name}-{source.commit[:7]}"
    else:
        name = source.tag.name
    return git.root / ".release" / name
