"""A rehearsal: a commit (``--ref``, default main's head) built and checked as if a tag pointed at it.

The tag need not exist yet. When it does, a rehearsal builds only the tag's own commit: anything
else would rehearse a release that can never happen.
"""

from __future__ import annotations

from dataclasses import dataclass

from cuda_ci.infra.errors import CudaCiError, UsageError
from cuda_ci.infra.git import Git
from cuda_ci.plan.tags import ReleaseTag, shown

MAX_REF_LENGTH = 200


@dataclass(frozen=True)
class Ref:
    """What ``--ref`` named, and its commit."""

    name: str
    commit: str


def resolve_ref(git: Git, ref: str | None) -> Ref:
    """``ref``'s commit; main's head (``main``, else ``origin/main``) when no ref is given."""
    if ref is None:
        main = git.main_ref()
        if main is None:
            raise CudaCiError(
                "neither main nor origin/main exists here, and no --ref was given: "
                "fetch main (git fetch origin main) or name the commit to rehearse with --ref"
            )
        full = "refs/heads/main" if main == "main" else "refs/remotes/origin/main"
        return Ref(main, _commit(git, full, main))
    if not ref or len(ref) > MAX_REF_LENGTH or not ref.isprintable() or any(c.isspace() for c in ref):
        raise UsageError(f"--ref {shown(ref)} is not a git ref: give a branch, a tag or a commit")
    return Ref(ref, _commit(git, ref, ref))


def _commit(git: Git, ref: str, shown_as: str) -> str:
    commit = git.commit_of(ref)
    if commit is None:
        raise CudaCiError(
            f"--ref {shown(shown_as)} names no commit in {git.root}: give a branch, a tag or a commit "
            "(git fetch first if it is on the remote)"
        )
    return commit


def tag_conflict(git: Git, tag: ReleaseTag, ref: Ref) -> str | None:
    """Why ``tag`` cannot be rehearsed at ``ref``, or None: it does not exist yet, or names ``ref``'s commit."""
    existing = git.commit_of(tag.ref)
    if existing is None:
        kind = git.peeled_type(tag.ref)
        return f"tag {tag.name} exists but names a {kind}, not a commit: rehearse another tag" if kind else None
    if existing == ref.commit:
        return None
    return (
        f"tag {tag.name} already exists at {existing[:12]}, but --ref {ref.name} is {ref.commit[:12]}: "
        f"a rehearsal of an existing tag builds that tag's commit (--ref {tag.name}); "
        "to rehearse another commit, rehearse a tag that does not exist yet"
    )


def rehearsal_detail(git: Git, tag: ReleaseTag, ref: Ref) -> str:
    """The ``tag`` check's detail in a rehearsal (reported with the status ``rehearsal``)."""
    if git.commit_of(tag.ref) is None:
        return f"{tag.name} does not exist yet: {ref.name} ({ref.commit[:12]}) is built as if it pointed there"
    return f"{tag.name} exists at {ref.name} ({ref.commit[:12]}): rehearsed there, as if not yet released"


def checked_ref(git: Git, tag: ReleaseTag, ref: str | None) -> Ref:
    """``ref`` resolved, or the refusal ``cuda-ci build --rehearse`` gives (preflight lists it instead)."""
    resolved = resolve_ref(git, ref)
    conflict = tag_conflict(git, tag, resolved)
    if conflict:
        raise CudaCiError(conflict)
    return resolved
