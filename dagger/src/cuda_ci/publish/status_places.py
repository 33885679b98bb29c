"""The places ``cuda-ci status`` compares with a release's manifest: the tag, the GitHub release,
TestPyPI and PyPI. Each is a :class:`Place`: its state, what was found, and the one command that
finishes it, or why none can. Read only: nothing here writes anywhere but a temporary folder.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from packaging.version import Version

from cuda_ci.infra.errors import CudaCiError
from cuda_ci.infra.git import Git
from cuda_ci.infra.github import Asset, GitHub
from cuda_ci.infra.httpclient import HttpClient
from cuda_ci.infra.index import files_on_index
from cuda_ci.infra.manifest import MANIFEST_NAME, SUMS_NAME, Manifest, check_schema, sums_text
from cuda_ci.infra.settings import IndexSettings, Settings
from cuda_ci.plan.tags import ReleaseTag
from cuda_ci.publish.releases import GitHubReleases, complete
from cuda_ci.publish.window import closed_window_problem, dist_files, read_release, window_closed, window_detail
from cuda_ci.validate.distfiles import DistProblem, identify

PlaceName = Literal["tag", "github", "testpypi", "pypi"]
State = Literal["complete", "incomplete", "missing", "different", "blocked", "unknown"]
FileState = Literal["present", "missing", "different"]
MAX_MANIFEST_BYTES = 10 * 1024 * 1024
FINALIZE = " --target finalize"


@dataclass(frozen=True)
class FileCheck:
    name: str
    state: FileState
    sha256: str  # the manifest's
    found: str | None = None  # what the place holds when it differs


@dataclass(frozen=True)
class Place:
    place: PlaceName
    state: State
    detail: str
    next_command: str | None = None  # the one command that finishes it
    blocked: str | None = None  # why no command can
    files: tuple[FileCheck, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "place": self.place,
            "state": self.state,
            "detail": self.detail,
            "next_command": self.next_command,
            "blocked": self.blocked,
            "files": [vars(f) for f in self.files],
        }


@dataclass(frozen=True)
class Context:
    """What every release's checks read from: the repository, GitHub, the indexes, the clock."""

    git: Git | None
    github: GitHub | None
    settings: Settings
    http: HttpClient
    now: datetime
    folder: str  # the release folder the commands name
    own_manifest: tuple[int, str] | None = None  # size and sha256 of --release-dir's manifest file


# --- the tag ------------------------------------------------------------------------------------------


def tag_status(tag: ReleaseTag, manifest: Manifest | None, git: Git | None) -> Place:
    if git is None:
        return Place("tag", "unknown", "no git repository here (--repo): the tag cannot be checked")
    commit = git.commit_of(tag.ref)
    if commit is None:
        built = manifest["commit"] if manifest else "<the main commit it releases>"
        return Place(
            "tag",
            "missing",
            f"{tag.name} is not in {git.root} (fetch tags: git fetch --tags)",
            next_command=f"git tag -a {tag.name} -m {tag.name} {built} && git push origin {tag.name}",
        )
    kind = "annotated" if git.object_type(tag.ref) == "tag" else "lightweight"
    if manifest is not None and manifest["commit"] != commit:
        return Place(
            "tag",
            "different",
            f"{kind}, {commit[:12]}, but the release was built from {manifest['commit'][:12]}",
            blocked="a tag never moves: this release's files are not the tag's; build the release again from the tag",
        )
    main = git.main_ref()
    if main is None or not git.is_ancestor(commit, main):
        return Place(
            "tag",
            "blocked",
            f"{kind}, {commit[:12]}, not reachable from {main or 'main (neither main nor origin/main exists)'}",
            blocked="only commits merged to main are released: tag a main commit (fetch main if it is one)",
        )
    return Place("tag", "complete", f"{kind}, {commit[:12]}, reachable from {main}")


# --- the GitHub release -----------------------------------------------------------------------------


def github_status(tag: ReleaseTag, local: Manifest | None, context: Context) -> tuple[Place, Manifest | None]:
    """The GitHub release's state, and the manifest attached to it (when it has one)."""
    if context.github is None:
        return Place("github", "unknown", "GITHUB_REPOSITORY is not set: the GitHub release cannot be read"), None
    try:
        release = GitHubReleases(context.github).find(tag.name)
        if release is None:
            command = f"cuda-ci publish --release-dir {context.folder} --target github"
            how = command if local is not None else f"cuda-ci release --tag {tag.name}"
            return Place("github", "missing", f"no release of {tag.name} on GitHub", next_command=how), None
        assets = {a["name"]: a for a in context.github.assets(release)}
        remote = _attached_manifest(context.github, assets, tag)
    except CudaCiError as error:
        return Place("github", "unknown", f"GitHub cannot be read: {error.problems[0]}"), None
    manifest = local or remote
    kind = "draft" if release["draft"] else "published"
    if manifest is None:
        return Place(
            "github",
            "incomplete",
            f"{kind} ({release['html_url']}), without {MANIFEST_NAME}: its assets cannot be checked",
            next_command=f"cuda-ci publish --release-dir {context.folder} --target github",
        ), None
    return _asset_place(kind, release["html_url"], manifest, assets, context), remote


def _attached_manifest(github: GitHub, assets: dict[str, Asset], tag: ReleaseTag) -> Manifest | None:
    asset = assets.get(MANIFEST_NAME)
    if asset is None or asset["state"] != "uploaded":
        return None
    if asset["size"] > MAX_MANIFEST_BYTES:
        raise CudaCiError(f"{MANIFEST_NAME} of {tag.name} is {asset['size']} bytes: not a release manifest")
    with tempfile.TemporaryDirectory(prefix="cuda-ci-status-") as tmp:
        data = github.download_asset(asset, Path(tmp)).read_bytes()
    try:
        manifest = json.loads(data)
        check_schema(manifest)
    except (ValueError, CudaCiError) as error:
        raise CudaCiError(
            f"{MANIFEST_NAME} of the GitHub release {tag.name} is not a release manifest: {error}"
        ) from None
    if manifest.get("tag") != tag.name:
        raise CudaCiError(f"the GitHub release of {tag.name} carries the manifest of {manifest.get('tag')}")
    return manifest  # type: ignore[no-any-return]


def expected_assets(manifest: Manifest, own: tuple[int, str] | None) -> list[tuple[str, int, str]]:
    """(name, size, sha256) of every asset a release carries that its manifest determines: its files,
    SHA256SUMS (as publish writes it) and, where known (``own``: a release folder's), the manifest
    itself. Attestations are not listed in the manifest, and are not checked here."""
    files = [(f["name"], f["size"], f["sha256"]) for f in manifest["files"]]
    sums = sums_text(manifest).encode()
    files.append((SUMS_NAME, len(sums), hashlib.sha256(sums).hexdigest()))
    return [*files, *([(MANIFEST_NAME, *own)] if own else [])]


def _asset_place(kind: str, url: str, manifest: Manifest, assets: dict[str, Asset], context: Context) -> Place:
    checks = []
    for name, size, sha256 in expected_assets(manifest, context.own_manifest):
        asset = assets.get(name)
        if asset is None:
            checks.append(FileCheck(name, "missing", sha256))
        elif complete(asset, size, sha256):
            checks.append(FileCheck(name, "present", sha256))
        else:
            checks.append(FileCheck(name, "different", sha256, asset["digest"] or f"{asset['state']} asset"))
    counts = _counts(checks)
    detail = f"{kind} ({url}): {counts}"
    command = f"cuda-ci publish --release-dir {context.folder}"
    if any(c.state != "present" for c in checks):
        if kind == "published":
            why = "assets of a published release are never replaced: cut a .postN release"
            return Place("github", "blocked", detail, blocked=why, files=tuple(checks))
        return Place("github", "incomplete", detail, next_command=f"{command} --target github", files=tuple(checks))
    if kind == "draft":  # (`--target all` instead while an index is unfinished: un-drafting comes last)
        return Place("github", "incomplete", detail + "; not published yet", command + FINALIZE, files=tuple(checks))
    return Place("github", "complete", detail, files=tuple(checks))


def _counts(checks: Sequence[FileCheck]) -> str:
    present = sum(c.state == "present" for c in checks)
    text = f"{present} of {len(checks)} files as in the manifest"
    for state in ("missing", "different"):
        names = [c.name for c in checks if c.state == state]
        if names:
            text += f"; {state}: {', '.join(names)}"
    return text


# --- TestPyPI and PyPI -------------------------------------------------------------------------------


def index_status(index: IndexSettings, tag: ReleaseTag, manifest: Manifest | None, context: Context) -> Place:
    version = str(tag.version)
    try:
        held: dict[str, str | None] = {}
        for distribution in tag.unit.distributions:
            held.update(files_on_index(context.http, index.simple_url, distribution, auth=index.simple_auth))
    except CudaCiError as error:
        return Place(index.name, "unknown", f"{index.simple_url} cannot be read: {error.problems[0]}")
    if manifest is None:
        ours = sorted(n for n in held if _version_of(n) == tag.version)
        detail = f"no manifest to compare with; {len(ours)} file(s) of {version} there"
        return Place(index.name, "unknown", detail, next_command=f"cuda-ci release --tag {tag.name}")
    checks = [_file_check(entry["name"], entry["sha256"], held) for entry in _dists(manifest)]
    return _index_place(index, tag, manifest, checks, context)


def _dists(manifest: Manifest) -> list[Any]:
    return [f for f in manifest["files"] if f["kind"] in ("sdist", "wheel")]


def _file_check(name: str, sha256: str, held: dict[str, str | None]) -> FileCheck:
    if name not in held:
        return FileCheck(name, "missing", sha256)
    found = held[name]
    return FileCheck(name, "present", sha256) if found == sha256 else FileCheck(name, "different", sha256, found)


def _version_of(filename: str) -> Version | None:
    try:
        return identify(Path(filename)).version
    except DistProblem:
        return None


def _index_place(
    index: IndexSettings, tag: ReleaseTag, manifest: Manifest, checks: list[FileCheck], context: Context
) -> Place:
    detail = f"{index.simple_url}: {_counts(checks)}"
    files = tuple(checks)
    if any(c.state == "different" for c in checks):
        why = "a file name can never be reused on an index: cut a .postN release"
        return Place(index.name, "different", detail, blocked=why, files=files)
    missing = [c.name for c in checks if c.state == "missing"]
    if not missing:
        return Place(index.name, "complete", detail, files=files)
    window = context.settings.upload_window_days
    for distribution in tag.unit.distributions:
        lacking = [n for n in dist_files(manifest, distribution) if n in missing]
        release = read_release(context.http, index.simple_url, distribution, str(tag.version), auth=index.simple_auth)
        if lacking and window_closed(release, window, context.now):
            why = closed_window_problem(index.name, release, lacking, tag.unit, window, context.now)
            return Place(index.name, "blocked", detail, blocked=why, files=files)
        if release.first_upload is not None:
            detail += f"; {distribution}: {window_detail(release, window, context.now)}"
    state: State = "missing" if len(missing) == len(checks) else "incomplete"
    command = f"cuda-ci publish --release-dir {context.folder} --target {index.name}"
    return Place(index.name, state, detail, next_command=command, files=files)
