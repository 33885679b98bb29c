"""The GitHub REST subset cuda-ci uses: workflow runs, releases (drafts too) and their assets.

Each method is one documented call (REST API version 2022-11-28); what to do when a write fails
is decided a layer up (``releases.py``), where the release's state can be read back first.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from cuda_ci.infra.errors import CudaCiError
from cuda_ci.infra.httpclient import HttpClient, Pacer, Response
from cuda_ci.infra.secrets import sanitize_url
from cuda_ci.infra.settings import Settings

API_VERSION = "2022-11-28"
WRITE_INTERVAL = 1.0  # GitHub: at least one second between content-creating requests
_NEXT_LINK = re.compile(r'<([^>]+)>;\s*rel="next"')


class Asset(TypedDict):
    id: int
    name: str
    size: int
    digest: str | None
    state: str  # "uploaded" when complete; a failed upload may leave "starter" (or "open")


class Release(TypedDict):
    id: int
    tag_name: str
    draft: bool
    prerelease: bool
    html_url: str
    upload_url: str


class NoAccess(CudaCiError):
    """The repository answers 404: it does not exist, or this token (or no token) may not see it."""


@dataclass
class GitHub:
    """A client for one repository; ``token`` is sent as a bearer token and never printed."""

    api_url: str
    repository: str
    token: str | None
    http: HttpClient
    _repository_seen: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        self.pacer = Pacer(WRITE_INTERVAL, sleep=lambda seconds: self.http.sleep(seconds))

    @classmethod
    def from_settings(
        cls, settings: Settings, on_retry: Callable[[str], None], *, token_required: bool = True
    ) -> GitHub | None:
        """The configured repository's client, or None when the repository (or a required token) is missing."""
        if not settings.github_repository or (token_required and not settings.github_token):
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

    def _get(self, url: str, allow: frozenset[int] = frozenset()) -> Response:
        return self.http.request("GET", url, headers=self._headers(), allow=allow)

    def _write(
        self,
        method: str,
        url: str,
        *,
        payload: dict[str, Any] | None = None,
        data: bytes | None = None,
        allow: frozenset[int] = frozenset(),
    ) -> Response:
        """One write, at least WRITE_INTERVAL after the previous one ended (retries too); JSON as JSON."""
        content_type = "application/json" if payload is not None else "application/octet-stream"
        body = json.dumps(payload).encode() if payload is not None else data
        headers = self._headers({"Content-Type": content_type} if body is not None else None)
        return self.http.request(method, url, headers=headers, body=body, allow=allow, pacer=self.pacer)

    def _pages(self, url: str, key: str | None = None) -> Iterator[dict[str, Any]]:
        """Every item of a paginated list, following ``Link: rel="next"`` (bounded)."""
        for _ in range(100):
            response = self._get(url, allow=frozenset({404}))
            if response.status == 404:
                self.check_repository()  # a hidden repository also answers 404: say which it is
                raise CudaCiError(f"{sanitize_url(url)} answered 404: not found in {self.repository}")
            data = response.json()
            yield from (data[key] if key else data)
            match = _NEXT_LINK.search(response.header("link") or "")
            if not match:
                return
            url = match.group(1)
        raise CudaCiError(f"{url}: more than 100 pages; refusing to follow further")

    def check_repository(self) -> None:
        """Tell a missing or unreadable repository apart from a missing release: both answer 404."""
        if self._repository_seen:
            return
        if self._get(self._url(""), allow=frozenset({404})).status == 404:
            who = "this token cannot see it" if self.token else "no token is set (GITHUB_TOKEN or GH_TOKEN)"
            raise NoAccess(
                f"GitHub repository {self.repository} answers 404: it does not exist, or it is private and {who}: "
                "check GITHUB_REPOSITORY, and give the token read access to the repository (contents: read)"
            )
        self._repository_seen = True

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
        """The published release of ``tag`` (this endpoint never returns drafts); a 404 is read as
        "no release" only once the repository itself is known to be visible."""
        response = self._get(self._url(f"/releases/tags/{urllib.parse.quote(tag, safe='')}"), allow=frozenset({404}))
        if response.status == 404:
            self.check_repository()
            return None
        return release_of(response.json())

    def releases(self) -> list[Release]:
        """Every release this token can see: drafts only with push access."""
        return [release_of(item) for item in self._pages(self._url("/releases", per_page=100))]

    def release(self, release_id: int) -> Release | None:
        response = self._get(self._url(f"/releases/{release_id}"), allow=frozenset({404}))
        return None if response.status == 404 else release_of(response.json())

    def create_release(self, payload: dict[str, Any]) -> Response:
        """POST a release; 422 (a published release of the tag exists) is returned for the caller to read."""
        return self._write("POST", self._url("/releases"), payload=payload, allow=frozenset({422}))

    def update_release(self, release: Release, payload: dict[str, Any]) -> Release:
        return release_of(self._write("PATCH", self._url(f"/releases/{release['id']}"), payload=payload).json())

    def assets(self, release: Release) -> list[Asset]:
        return [asset_of(a) for a in self._pages(self._url(f"/releases/{release['id']}/assets", per_page=100))]

    def upload_asset(self, release: Release, path: Path) -> Response:
        """POST one asset to the uploads host; 422 (the name is taken) is returned for the caller to read."""
        base = release["upload_url"].split("{", 1)[0]
        url = f"{base}?{urllib.parse.urlencode({'name': path.name})}"
        return self._write("POST", url, data=path.read_bytes(), allow=frozenset({422}))

    def download_asset(self, asset: Asset, dest: Path) -> Path:
        """Stream one asset to ``dest``: a 200, or a redirect (302, 307...) to storage, followed without the token."""
        target = dest / Path(asset["name"]).name
        url = self._url(f"/releases/assets/{asset['id']}")
        with target.open("wb") as sink:
            self.http.request("GET", url, headers=self._headers({"Accept": "application/octet-stream"}), sink=sink)
        return target

    def delete_asset(self, asset: Asset) -> None:
        """Delete; a 404 means it is gone already (a retried DELETE whose 204 was lost answers 404)."""
        self._write("DELETE", self._url(f"/releases/assets/{asset['id']}"), allow=frozenset({404}))


def release_of(data: dict[str, Any]) -> Release:
    return Release(
        id=data["id"],
        tag_name=data["tag_name"],
        draft=bool(data["draft"]),
        prerelease=bool(data.get("prerelease")),
        html_url=data.get("html_url", ""),
        upload_url=data.get("upload_url", ""),
    )


def asset_of(data: dict[str, Any]) -> Asset:
    return Asset(
        id=data["id"], name=data["name"], size=data["size"], digest=data.get("digest"), state=data.get("state", "")
    )
