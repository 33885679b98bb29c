"""``cuda-ci status``: where each release stands, place by place, and what finishes it. Read only.

For a release (a tag) the manifest is the release folder's (``--release-dir``) or the one attached
to its GitHub release (asset ``release-manifest.json``). Against it are compared: the tag (present,
annotated, its commit the manifest's and reachable from ``main``), the GitHub release (absent, draft
or published; each asset by size and sha256) and TestPyPI and PyPI (each file there with the
manifest's sha256, missing, or different). Each unfinished place names the one command that
finishes it, or why nothing can: a differing file, a published release's asset, PyPI's upload window.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from cuda_ci.infra.components import UNITS, get_unit
from cuda_ci.infra.errors import CudaCiError, TagError, UsageError
from cuda_ci.infra.git import Git
from cuda_ci.infra.github import GitHub
from cuda_ci.infra.httpclient import HttpClient
from cuda_ci.infra.manifest import MANIFEST_NAME, Manifest, ReleaseFolder, sha256_of
from cuda_ci.infra.settings import Settings
from cuda_ci.plan.tags import ReleaseTag, parse_tag
from cuda_ci.publish.status_places import FINALIZE, Context, Place, github_status, index_status, tag_status

STATUS_SCHEMA = 1
ManifestSource = Literal["release-dir", "github-release"]


@dataclass
class ReleaseStatus:
    tag: ReleaseTag
    manifest_source: ManifestSource | None = None
    places: list[Place] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return all(p.state == "complete" for p in self.places)

    def as_json(self) -> dict[str, Any]:
        return {
            "tag": self.tag.name,
            "component": self.tag.unit.name,
            "version": str(self.tag.version),
            "manifest": self.manifest_source,
            "complete": self.complete,
            "places": [p.as_json() for p in self.places],
        }


def report_json(statuses: Sequence[ReleaseStatus]) -> dict[str, Any]:
    """``cuda-ci status --json`` (schemas/status.schema.json)."""
    return {
        "schema": STATUS_SCHEMA,
        "complete": all(s.complete for s in statuses),
        "releases": [s.as_json() for s in statuses],
    }


@dataclass(frozen=True, kw_only=True)
class StatusRequest:
    repo: Path
    tag: str | None = None
    component: str | None = None
    release_dir: Path | None = None


def release_statuses(
    request: StatusRequest, settings: Settings, on_retry: Callable[[str], None], now: datetime
) -> list[ReleaseStatus]:
    """Where each asked release stands: ``--tag``, a unit's newest tag, or every unit's."""
    git = _open(request.repo)
    release_folder = ReleaseFolder.existing(request.release_dir) if request.release_dir else None
    local = release_folder.load() if release_folder else None
    tags = _asked_tags(git, request, local)
    github = GitHub.from_settings(settings, on_retry, token_required=False)
    own = None
    if release_folder is not None:
        own = (release_folder.manifest_path.stat().st_size, sha256_of(release_folder.manifest_path))
    statuses = []
    for tag in tags:
        folder = str(request.release_dir) if request.release_dir else f".release/{tag.name}"
        context = Context(git, github, settings, HttpClient(on_retry=on_retry), now, folder, own)
        statuses.append(release_status(tag, local, context))
    return statuses


def _open(repo: Path) -> Git | None:
    try:
        return Git.open(repo)
    except CudaCiError:
        return None


def _asked_tags(git: Git | None, request: StatusRequest, local: Manifest | None) -> list[ReleaseTag]:
    if local is not None:
        if not local["tag"]:
            raise UsageError(f"{request.release_dir} is a snapshot folder: it is no release, and has no status")
        if request.tag is not None and request.tag != local["tag"]:
            raise UsageError(f"--release-dir {request.release_dir} holds {local['tag']}, not --tag {request.tag}")
        return [parse_tag(local["tag"])]
    if request.tag is not None:
        return [parse_tag(request.tag, request.component)]
    if git is None:
        raise UsageError(f"{request.repo} is not a git repository: give --tag T, or --repo a clone with its tags")
    units = [get_unit(request.component)] if request.component else list(UNITS)
    newest = [tag for unit in units if (tag := newest_tag(git, unit.name)) is not None]
    if request.component and not newest:
        raise CudaCiError(f"no release tag of {request.component} in {git.root}: fetch tags (git fetch --tags)")
    return newest


def newest_tag(git: Git, unit_name: str) -> ReleaseTag | None:
    """The unit's release tag with the highest version in ``git``'s repository."""
    unit = get_unit(unit_name)
    names = git.out("tag", "--list", f"{unit.tag_prefix}*").split()
    tags = []
    for name in names:
        try:
            tag = parse_tag(name)
        except TagError:
            continue
        if tag.unit is unit:
            tags.append(tag)
    return max(tags, key=lambda t: t.version, default=None)


def release_status(tag: ReleaseTag, local: Manifest | None, context: Context) -> ReleaseStatus:
    status = ReleaseStatus(tag, "release-dir" if local is not None else None)
    github_place, remote = github_status(tag, local, context)
    manifest = local or remote
    if local is None and remote is not None:
        status.manifest_source = "github-release"
    indexes = [index_status(index, tag, manifest, context) for index in context.settings.indexes.values()]
    finalize = github_place.next_command or ""
    if finalize.endswith(FINALIZE) and any(place.state != "complete" for place in indexes):
        # Un-drafting comes last: `--target all` finishes the indexes first, each target skipping what is done.
        github_place = dataclasses.replace(github_place, next_command=finalize.removesuffix(FINALIZE) + " --target all")
    status.places += [tag_status(tag, manifest, context.git), github_place, *indexes]
    return status


def status_lines(status: ReleaseStatus) -> list[str]:
    """The text report of one release: a heading, one line per place, and under an unfinished place
    the command that finishes it (``next:``) or why none can (``blocked:``)."""
    source = {"release-dir": "the release folder's", "github-release": "the GitHub release's", None: "no"}
    version = f"{status.tag.unit.name} {status.tag.version}"
    lines = [f"{status.tag.name}: {version} ({source[status.manifest_source]} {MANIFEST_NAME})"]
    for place in status.places:
        lines.append(f"  {place.place:<9} {place.state:<11} {place.detail}")
        if place.next_command:
            lines.append(f"  {'':<9} {'next:':<11} {place.next_command}")
        if place.blocked:
            lines.append(f"  {'':<9} {'blocked:':<11} {place.blocked}")
    return lines
