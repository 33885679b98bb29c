"""Where the GitHub release lives: the real one through the REST API, or a local stand-in (dry-run)."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cuda_ci.github import Asset, GitHub, Release
from cuda_ci.manifest import sha256_of, write_json_atomic


class ReleaseHost(Protocol):
    def describe(self) -> str: ...
    def find(self, tag: str) -> Release | None: ...
    def create_draft(self, tag: str, name: str, body: str, prerelease: bool) -> Release: ...
    def assets(self, release: Release) -> list[Asset]: ...
    def upload(self, release: Release, path: Path) -> Asset: ...
    def delete(self, asset: Asset) -> None: ...
    def publish(self, release: Release) -> Release: ...


@dataclass
class GitHubReleases:
    github: GitHub

    def describe(self) -> str:
        return f"GitHub {self.github.repository}"

    def find(self, tag: str) -> Release | None:
        return self.github.published_release(tag) or self.github.find_release(tag)

    def create_draft(self, tag: str, name: str, body: str, prerelease: bool) -> Release:
        return self.github.create_draft(tag, name, body, prerelease)

    def assets(self, release: Release) -> list[Asset]:
        return self.github.assets(release)

    def upload(self, release: Release, path: Path) -> Asset:
        return self.github.upload_asset(release, path)

    def delete(self, asset: Asset) -> None:
        self.github.delete_asset(asset)

    def publish(self, release: Release) -> Release:
        return self.github.publish(release)


@dataclass
class LocalReleases:
    """The dry-run stand-in: ``<out>/github-release/release.json`` and ``assets/``."""

    root: Path

    def describe(self) -> str:
        return f"the stand-in release in {self.root}"

    @property
    def _state(self) -> Path:
        return self.root / "release.json"

    def find(self, tag: str) -> Release | None:
        if not self._state.is_file():
            return None
        data: Release = json.loads(self._state.read_text(encoding="utf-8"))
        return data if data["tag_name"] == tag else None

    def create_draft(self, tag: str, name: str, body: str, prerelease: bool) -> Release:
        release = Release(id=1, tag_name=tag, draft=True, html_url=self.root.as_uri(), upload_url="")
        (self.root / "assets").mkdir(parents=True, exist_ok=True)
        write_json_atomic(self._state, release)
        return release

    def assets(self, release: Release) -> list[Asset]:
        folder = self.root / "assets"
        return [
            Asset(id=i, name=p.name, size=p.stat().st_size, digest=f"sha256:{sha256_of(p)}")
            for i, p in enumerate(sorted(folder.iterdir()) if folder.is_dir() else [], start=1)
        ]

    def upload(self, release: Release, path: Path) -> Asset:
        target = self.root / "assets" / path.name
        shutil.copy2(path, target)
        return Asset(id=0, name=path.name, size=target.stat().st_size, digest=f"sha256:{sha256_of(target)}")

    def delete(self, asset: Asset) -> None:
        (self.root / "assets" / asset["name"]).unlink(missing_ok=True)

    def publish(self, release: Release) -> Release:
        published = Release(**{**release, "draft": False})
        write_json_atomic(self._state, published)
        return published
