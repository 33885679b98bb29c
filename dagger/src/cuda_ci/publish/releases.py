"""Where the GitHub release lives: the real one through the REST API, or a local stand-in (dry-run).

On GitHub a write is never repeated blindly: after a failed create, upload or un-draft, the release
is read back first, and only what did not happen is done again (bounded).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar

from packaging.version import Version

from cuda_ci.infra.components import ReleaseUnit
from cuda_ci.infra.errors import CudaCiError, TagError
from cuda_ci.infra.github import Asset, GitHub, Release, asset_of, release_of
from cuda_ci.infra.httpclient import Response, WriteFailed
from cuda_ci.infra.manifest import sha256_of, write_json_atomic
from cuda_ci.infra.retry import Retry, Transient
from cuda_ci.plan.tags import parse_tag

WRITE_TRIES = 3  # a failed write is looked up, then tried again at most this often in all
WRITE_BACKOFF = 2.0  # seconds, times the try number
T = TypeVar("T")
Recorder = Callable[[Release], None]  # told of a draft as soon as it exists, before anything else can fail


def _no_record(release: Release) -> None:
    pass


class ReleaseHost(Protocol):
    def describe(self) -> str: ...
    def find(self, tag: str, adopt: Collection[int] = ()) -> Release | None: ...
    def create_draft(
        self, tag: str, name: str, body: str, prerelease: bool, commit: str, record: Recorder = _no_record
    ) -> Release: ...
    def assets(self, release: Release) -> list[Asset]: ...
    def upload(self, release: Release, path: Path) -> Asset: ...
    def delete(self, asset: Asset) -> None: ...
    def published_tags(self) -> list[str]: ...
    def publish(self, release: Release, latest: bool) -> Release: ...


def complete(asset: Asset, size: int, sha256: str) -> bool:
    """The asset is fully uploaded with these bytes (a failed upload may leave a ``starter`` asset)."""
    return asset["state"] == "uploaded" and asset["size"] == size and asset["digest"] == f"sha256:{sha256}"


def make_latest(unit: ReleaseUnit, version: Version, published_tags: Iterable[str]) -> bool:
    """Whether this release becomes the repository's "Latest": only for a unit whose policy allows it,
    only a final version, and only one newer than every published final release of that unit (a
    backport such as v12.9.1 after v13.0.0 never takes it)."""
    if not unit.latest or version.is_prerelease:
        return False
    for tag in published_tags:
        try:
            other = parse_tag(tag)
        except TagError:
            continue
        if other.unit.name == unit.name and not other.version.is_prerelease and other.version >= version:
            return False
    return True


@dataclass
class GitHubReleases:
    github: GitHub
    on_retry: Callable[[str], None] = field(default=lambda message: None)
    sleep: Callable[[float], None] = field(default=time.sleep)
    on_warning: Callable[[str], None] = field(default=lambda message: None)

    def describe(self) -> str:
        return f"GitHub {self.github.repository}"

    def find(self, tag: str, adopt: Collection[int] = ()) -> Release | None:
        """The published release of ``tag``, else its one draft; of several drafts, the one whose id
        is in ``adopt`` (a draft this release folder's runs made), else they are refused."""
        published = self.github.published_release(tag)
        if published is not None:
            return published
        drafts = [r for r in self.github.releases() if r["tag_name"] == tag]
        ours = [r for r in drafts if r["id"] in adopt]
        if len(drafts) > 1 and len(ours) == 1:
            others = ", ".join(r["html_url"] for r in drafts if r is not ours[0])
            self.on_warning(
                f"{len(drafts) - 1} more draft release(s) of {tag} exist on {self.describe()} ({others}), made by "
                f"another run: going on with this folder's own draft (release id {ours[0]['id']}); delete the others"
            )
            return ours[0]
        if len(drafts) > 1:
            raise CudaCiError(
                f"{len(drafts)} draft releases of {tag} exist on {self.describe()} "
                f"({', '.join(r['html_url'] for r in drafts)}): GitHub allows several, cuda-ci never guesses "
                "which one is the release; delete the extra drafts on GitHub and run again"
            )
        return drafts[0] if drafts else None

    def create_draft(
        self, tag: str, name: str, body: str, prerelease: bool, commit: str, record: Recorder = _no_record
    ) -> Release:
        """A draft named after the built commit (``target_commitish``: GitHub tags that commit if the tag
        is not there yet); after a failed POST the draft is looked for before another is made. ``record``
        learns of the draft before it is read back, so that a later run adopts it whatever happens next."""
        payload = {
            "tag_name": tag,
            "target_commitish": commit,
            "name": name,
            "body": body,
            "draft": True,
            "prerelease": prerelease,
            "make_latest": "false",  # decided when the draft is published
        }

        def attempt(_: int) -> Release:
            try:
                response = self.github.create_release(payload)
            except WriteFailed as error:
                found = self.find(tag)
                if found is not None:
                    record(found)
                    return self._only_draft(tag, found)
                raise _not_done(error) from None
            if response.status == 422:  # GitHub: a published release of the tag exists
                raise CudaCiError(
                    f"{self.describe()} refused a draft of {tag} ({_excerpt(response)}): "
                    "a published release of the tag exists; assets of a published release are never replaced"
                )
            made = release_of(response.json())
            record(made)
            return self._only_draft(tag, made)

        return self._write(f"creating the draft of {tag}", attempt)

    def _only_draft(self, tag: str, release: Release) -> Release:
        """Read back: this must be the one draft of ``tag`` (another run may have made one too)."""
        try:
            found = self.find(tag)
        except CudaCiError as error:
            raise CudaCiError(
                *error.problems,
                f"this run's draft of {tag} (release id {release['id']}) is recorded in publish-log.json: "
                "`cuda-ci publish` of this release folder goes on with it",
            ) from None
        if found is None or found["id"] != release["id"] or not found["draft"]:
            raise CudaCiError(
                f"the draft of {tag} on {self.describe()} was not found again after creating it: "
                "another run may be releasing the same tag; check the repository's releases and run again"
            )
        return found

    def _write(self, what: str, attempt: Callable[[int], T]) -> T:
        """A write tried at most WRITE_TRIES times, each retry only once the release was read back."""
        retry = Retry(attempts=WRITE_TRIES, backoff=WRITE_BACKOFF, report=self.on_retry, sleep=self.sleep)

        def give_up(failure: Transient, why: str) -> CudaCiError:
            return CudaCiError(
                f"{what} {why} ({failure.reason}): nothing half-made was left behind; "
                "run `cuda-ci publish --target github` again when GitHub answers"
            )

        return retry.run(what, attempt, give_up=give_up)

    def assets(self, release: Release) -> list[Asset]:
        return self.github.assets(release)

    def upload(self, release: Release, path: Path) -> Asset:
        """Upload; after a failure, an asset of that name that is complete counts, an incomplete one
        (GitHub leaves ``starter`` assets after a 502) is deleted before the next try."""

        def attempt(_: int) -> Asset:
            try:
                response = self.github.upload_asset(release, path)
                if response.status != 422:
                    return asset_of(response.json())
                failure = WriteFailed(f"an asset named {path.name} is there already ({_excerpt(response)})", 422)
            except WriteFailed as error:
                failure = error
            left = next((a for a in self.assets(release) if a["name"] == path.name), None)
            if left is not None and complete(left, path.stat().st_size, sha256_of(path)):
                return left
            if left is not None:
                self.github.delete_asset(left)
            raise _not_done(failure)

        return self._write(f"uploading {path.name}", attempt)

    def delete(self, asset: Asset) -> None:
        self.github.delete_asset(asset)

    def published_tags(self) -> list[str]:
        return [r["tag_name"] for r in self.github.releases() if not r["draft"]]

    def publish(self, release: Release, latest: bool) -> Release:
        """Un-draft, with an explicit ``make_latest``; a lost answer is checked before trying again."""
        payload = {"draft": False, "make_latest": "true" if latest else "false"}

        def attempt(_: int) -> Release:
            try:
                return self.github.update_release(release, payload)
            except WriteFailed as error:
                now = self.github.release(release["id"])
                if now is not None and not now["draft"]:
                    return now
                raise _not_done(error) from None

        return self._write(f"publishing {release['tag_name']}", attempt)


def _not_done(error: WriteFailed) -> Transient:
    """A failed write that the read-back shows did not happen: it can be tried again."""
    return Transient(f"{error.problems[0]}; looked it up: not done")


def _excerpt(response: Response) -> str:
    return response.body.decode("utf-8", "replace").strip().replace("\n", " ")[:300] or "HTTP 422"


@dataclass
class LocalReleases:
    """The dry-run stand-in: ``<out>/github-release/release.json`` and ``assets/``."""

    root: Path

    def describe(self) -> str:
        return f"the stand-in release in {self.root}"

    @property
    def _state(self) -> Path:
        return self.root / "release.json"

    def find(self, tag: str, adopt: Collection[int] = ()) -> Release | None:
        if not self._state.is_file():
            return None
        data = json.loads(self._state.read_text(encoding="utf-8"))
        return release_of(data) if data["tag_name"] == tag else None

    def create_draft(
        self, tag: str, name: str, body: str, prerelease: bool, commit: str, record: Recorder = _no_record
    ) -> Release:
        release = Release(
            id=1, tag_name=tag, draft=True, prerelease=prerelease, html_url=self.root.as_uri(), upload_url=""
        )
        (self.root / "assets").mkdir(parents=True, exist_ok=True)
        write_json_atomic(self._state, {**release, "target_commitish": commit})
        record(release)
        return release

    def assets(self, release: Release) -> list[Asset]:
        folder = self.root / "assets"
        return [
            Asset(id=i, name=p.name, size=p.stat().st_size, digest=f"sha256:{sha256_of(p)}", state="uploaded")
            for i, p in enumerate(sorted(folder.iterdir()) if folder.is_dir() else [], start=1)
        ]

    def upload(self, release: Release, path: Path) -> Asset:
        target = self.root / "assets" / path.name
        shutil.copy2(path, target)
        return Asset(
            id=0, name=path.name, size=target.stat().st_size, digest=f"sha256:{sha256_of(target)}", state="uploaded"
        )

    def delete(self, asset: Asset) -> None:
        (self.root / "assets" / asset["name"]).unlink(missing_ok=True)

    def published_tags(self) -> list[str]:
        return []

    def publish(self, release: Release, latest: bool) -> Release:
        state = json.loads(self._state.read_text(encoding="utf-8"))
        write_json_atomic(self._state, {**state, "draft": False, "make_latest": "true" if latest else "false"})
        return Release(**{**release, "draft": False})
