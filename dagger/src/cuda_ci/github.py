"""The GitHub REST subset cuda-ci uses: workflow runs, releases (drafts too) and their assets."""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

from cuda_ci.errors import CudaCiError
from cuda_ci.httpclient import HttpClient, Response
from cuda_ci.settings import Settings

API_VERSION = "2022-11-28"
_NEXT_LINK = re.compile(r'<([^>]+)>;\s*rel="next"')


class Asset(TypedDict):
    id: int
    name: str
    size: int
    digest: str | None


class Release(TypedDict):
    id: int
    tag_name: str
    draft: bool
    html_url: str
    upload_url: str


@dataclass
class GitHub:
    """A client for one repository; ``token`` is sent as a bearer token and never printed."""

    api_url: str
    repository: str
    token: str | None
    http: HttpClient

    @classmethod
    def from_settings(cls, settings: Settings, on_retry: Callable[[str], None]) -> GitHub | None:
        """The configured repository's client, or None when the repository or the token is missing."""
        if not settings.github_repository or not settings.github_token:
            return None
        return cls(
            settings.github_api_url, settings.github_repository, settings.github_token, HttpClient(on_retry=on_retry)
        )

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": "cuda-ci",
        }
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return {**headers, **(extra or {})}

    def _url(self, path: str, **query: str | int) -> str:
        url = f"{self.api_url}/repos/{self.repository}{path}"
        return f"{url}?{urllib.parse.urlencode(query)}" if query else url

    def _pages(self, url: str, key: str | None = None) -> Iterator[dict[str, Any]]:
        """Every item of a paginated list, following ``Link: rel="next"`` (bounded)."""
        for _ in range(100):
            response = self.http.request("GET", url, headers=self._headers())
            data = response.json()
            yield from (data[key] if key else data)
            match = _NEXT_LINK.search(_header(response, "link"))
            if not match:
                return
            url = match.group(1)
        raise CudaCiError(f"{url}: more than 100 pages; refusing to follow further")

    def successful_ci_runs(self, commit: str, workflow: str = "ci.yml") -> list[dict[str, Any]]:
        """Successful push runs of ``workflow`` on ``main`` for ``commit``."""
        url = self._url(
            f"/actions/workflows/{workflow}/runs",
            branch="main",
            event="push",
            head_sha=commit,
            status="success",
            per_page=100,
        )
        return [
            run
            for run in self._pages(url, "workflow_runs")
            if run.get("head_sha") == commit and run.get("conclusion") == "success" and run.get("head_branch") == "main"
        ]

    def published_release(self, tag: str) -> Release | None:
        """The published release of ``tag`` (this endpoint never returns drafts)."""
        response = self.http.request(
            "GET",
            self._url(f"/releases/tags/{urllib.parse.quote(tag, safe='')}"),
            headers=self._headers(),
            allow=frozenset({404}),
        )
        return None if response.status == 404 else _release(response.json())

    def find_release(self, tag: str) -> Release | None:
        """The release of ``tag``, draft or not (drafts are only found by listing)."""
        for item in self._pages(self._url("/releases", per_page=100)):
            if item.get("tag_name") == tag:
                return _release(item)
        return None

    def create_draft(self, tag: str, name: str, body: str, prerelease: bool) -> Release:
        payload = {"tag_name": tag, "name": name, "body": body, "draft": True, "prerelease": prerelease}
        response = self.http.request(
            "POST", self._url("/releases"), headers=self._headers(), body=json.dumps(payload).encode()
        )
        return _release(response.json())

    def assets(self, release: Release) -> list[Asset]:
        return [
            Asset(id=a["id"], name=a["name"], size=a["size"], digest=a.get("digest"))
            for a in self._pages(self._url(f"/releases/{release['id']}/assets", per_page=100))
        ]

    def upload_asset(self, release: Release, path: Path) -> Asset:
        base = release["upload_url"].split("{", 1)[0]
        url = f"{base}?{urllib.parse.urlencode({'name': path.name})}"
        headers = self._headers({"Content-Type": "application/octet-stream"})
        response = self.http.request("POST", url, headers=headers, body=path.read_bytes())
        data = response.json()
        return Asset(id=data["id"], name=data["name"], size=data["size"], digest=data.get("digest"))

    def download_asset(self, asset: Asset, dest: Path) -> Path:
        """Download one asset; the redirect to storage is followed without the token."""
        url = self._url(f"/releases/assets/{asset['id']}")
        headers = self._headers({"Accept": "application/octet-stream"})
        response = self.http.request("GET", url, headers=headers, allow=frozenset({302}), follow_redirects=False)
        if response.status == 302:
            location = _header(response, "location")
            response = self.http.request("GET", location, headers={"User-Agent": "cuda-ci"})
        target = dest / Path(asset["name"]).name
        target.write_bytes(response.body)
        return target

    def delete_asset(self, asset: Asset) -> None:
        self.http.request("DELETE", self._url(f"/releases/assets/{asset['id']}"), headers=self._headers())

    def publish(self, release: Release) -> Release:
        body = json.dumps({"draft": False}).encode()
        response = self.http.request(
            "PATCH", self._url(f"/releases/{release['id']}"), headers=self._headers(), body=body
        )
        return _release(response.json())


def _header(response: Response, name: str) -> str:
    return next((v for k, v in response.headers.items() if k.lower() == name), "")


def _release(data: dict[str, Any]) -> Release:
    return Release(
        id=data["id"],
        tag_name=data["tag_name"],
        draft=bool(data["draft"]),
        html_url=data.get("html_url", ""),
        upload_url=data.get("upload_url", ""),
    )
