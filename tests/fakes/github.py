"""A loopback stand-in for the GitHub REST subset cuda-ci uses, behaving as GitHub documents itself.

Every request to the API and uploads hosts is checked against GitHub's own OpenAPI description
(``tests/fakes/openapi.py``); a request it calls malformed is answered 422 and kept in
``violations``, and ``stop()`` fails the test that sent it. Beyond shapes, it answers as GitHub does:
403/429 rate limits with ``x-ratelimit-*``/``retry-after`` (enforced until they lapse), a secondary
limit on writes less than a second apart, a 502 on upload that leaves a ``starter`` asset, 404 for
unknown assets and for repositories a caller may not see, several drafts per tag, drafts hidden from
tokens without push access, downloads by 302, 307 or a streamed 200 from a storage host that refuses
a second credential, full ``Link`` headers, and 301s from a renamed repository. Every request is
recorded (``log``) so tests assert what cuda-ci sent.
"""

from __future__ import annotations

import itertools
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any, Literal

from tests.fakes import loopback
from tests.fakes.github_api import Recorded, asset_json, handler

Access = Literal["write", "read", "none"]
__all__ = ["Access", "FakeGitHub", "Fault", "Recorded"]


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    status: int
    times: int
    headers: dict[str, str] = field(default_factory=dict)
    message: str = "injected fault"
    after: bool = False  # do the request's work first, then answer with the fault (a lost answer)


@dataclass
class FakeGitHub:
    repository: str = "NVIDIA/cuda-python"
    token: str = "ghs_fake_token_for_tests"
    tokens: dict[str, Access] = field(default_factory=dict)  # more tokens; ``token`` has write access
    private: bool = False  # a public repository answers reads without a token
    renamed_from: str | None = None  # requests to this old name are answered 301 to the new one
    default_branch_head: str = "0" * 40
    download_via: Literal[200, 302, 307] = 302
    write_gap: float = 1.0  # writes closer than this meet GitHub's secondary rate limit
    per_page_cap: int = 2  # small pages, so pagination is always exercised
    uploads_allowed: int | None = None  # after this many uploads, each upload fails as GitHub documents
    racing_run: bool = False  # another run creates a draft of the same tag right after each create
    upload_failures: int = 0  # the next this many uploads fail so (502, a ``starter`` asset left behind)
    runs: list[dict[str, Any]] = field(default_factory=list)
    releases: list[dict[str, Any]] = field(default_factory=list)
    assets: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    blobs: dict[int, bytes] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)  # tag → commit, as GitHub holds them
    latest_id: int | None = None  # the repository's "Latest" release
    faults: list[Fault] = field(default_factory=list)
    log: list[Recorded] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    limited_until: float = 0.0  # monotonic time until which every API request is rate limited
    limit_headers: dict[str, str] = field(default_factory=dict)
    limit_status: int = 403
    limit_message: str = ""
    limit_count: int = 0  # requests still to refuse whatever the time (a limit that names no time)
    last_write: float | None = None

    def __post_init__(self) -> None:
        self.tokens = {self.token: "write", **self.tokens}
        self.lock = threading.RLock()
        self.ids = itertools.count(1000)
        self._servers: list[ThreadingHTTPServer] = []

    # --- test helpers -----------------------------------------------------------------------
    def add_run(self, sha: str, *, conclusion: str = "success", branch: str = "main", event: str = "push") -> None:
        run_id = next(self.ids)
        self.runs.append(
            {
                "id": run_id,
                "name": "CI",
                "head_sha": sha,
                "head_branch": branch,
                "event": event,
                "status": "completed",
                "conclusion": conclusion,
                "html_url": f"https://github.com/{self.repository}/actions/runs/{run_id}",
            }
        )

    def add_release(
        self, tag: str, *, draft: bool, prerelease: bool = False, target_commitish: str = "main"
    ) -> dict[str, Any]:
        release_id = next(self.ids)
        api = f"{self.api_url}/repos/{self.repository}"
        release = {
            "url": f"{api}/releases/{release_id}",
            "assets_url": f"{api}/releases/{release_id}/assets",
            "upload_url": f"{self.uploads_url}/repos/{self.repository}/releases/{release_id}/assets{{?name,label}}",
            "html_url": f"https://github.com/{self.repository}/releases/tag/{tag}",
            "id": release_id,
            "node_id": f"RE_{release_id}",
            "tag_name": tag,
            "target_commitish": target_commitish,
            "name": tag,
            "body": "",
            "draft": draft,
            "prerelease": prerelease,
            "created_at": "2025-01-01T00:00:00Z",
            "published_at": None if draft else "2025-01-01T00:00:00Z",
            "author": None,
            "assets": [],
            "tarball_url": None,
            "zipball_url": None,
        }
        self.releases.append(release)
        self.assets[release_id] = []
        if not draft:
            self.tag_on_publish(release)
        return release

    def tag_on_publish(self, release: dict[str, Any]) -> None:
        """GitHub makes a missing tag when the release is published, at ``target_commitish``."""
        if release["tag_name"] not in self.tags:
            target = release["target_commitish"]
            self.tags[release["tag_name"]] = self.default_branch_head if target in ("main", "") else target

    def add_asset(self, release: dict[str, Any], name: str, data: bytes) -> dict[str, Any]:
        """An uploaded asset, as if a client had posted ``data``."""
        asset = asset_json(self, release, next(self.ids), name, data, "application/octet-stream")
        self.assets[release["id"]].append(asset)
        self.blobs[asset["id"]] = data
        return asset

    def new_run(self) -> None:
        """The next requests come from a new run (as if minutes later): the write pacing starts afresh."""
        self.last_write = None

    def fail(self, method: str, path: str, status: int, times: int, **headers: str) -> None:
        self.faults.append(Fault(method, re.compile(path), status, times, headers))

    def lose_answer(self, method: str, path: str, times: int = 1, status: int = 502) -> None:
        """The request takes effect, but its answer is lost: the client sees ``status``."""
        self.faults.append(Fault(method, re.compile(path), status, times, after=True, message="Bad Gateway"))

    def rate_limit(self, *, status: int = 403, reset_in: float = 2.0) -> None:
        """A spent primary limit: every request is refused until ``x-ratelimit-reset``."""
        with self.lock:
            self.limited_until = time.monotonic() + reset_in
            self.limit_status = status
            self.limit_message = "API rate limit exceeded for installation ID 1."
            reset = int(time.time() + reset_in + 0.999)
            self.limit_headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)}

    def secondary_limit(self, *, status: int = 403, retry_after: float | None = None) -> None:
        """A secondary limit, with ``retry-after`` or (None) GitHub's "wait at least one minute"."""
        with self.lock:
            self.limited_until = time.monotonic() + (retry_after or 0.0)
            self.limit_count = 1 if retry_after is None else 0  # no stated time: the next request only
            self.limit_status = status
            self.limit_message = (
                "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
            )
            self.limit_headers = {"retry-after": f"{retry_after:g}"} if retry_after is not None else {}

    def release(self, tag: str) -> dict[str, Any]:
        return next(r for r in self.releases if r["tag_name"] == tag)

    def asset_names(self, tag: str) -> list[str]:
        return sorted(a["name"] for a in self.assets[self.release(tag)["id"]])

    @property
    def requests(self) -> list[tuple[str, str]]:
        """(method, path?query) of every request, in order."""
        return [(r.method, r.path + (f"?{r.query}" if r.query else "")) for r in self.log]

    @property
    def writes(self) -> list[tuple[str, str]]:
        return [r for r in self.requests if r[0] != "GET"]

    @property
    def limited(self) -> list[Recorded]:
        """Requests answered with a rate limit."""
        return [r for r in self.log if r.status in (403, 429)]

    # --- servers --------------------------------------------------------------------------
    def start(self) -> FakeGitHub:
        self._servers += [loopback.serve(handler(self, host)) for host in ("api", "uploads")]
        return self

    def stop(self) -> None:
        for server in self._servers:
            loopback.stop(server)
        self._servers = []
        assert not self.violations, "requests GitHub's description refuses:\n" + "\n".join(self.violations)

    @property
    def api_url(self) -> str:
        return loopback.url(self._servers[0])

    @property
    def uploads_url(self) -> str:
        return loopback.url(self._servers[1])

    def environ(self) -> dict[str, str]:
        return {"GITHUB_API_URL": self.api_url, "GITHUB_REPOSITORY": self.repository, "GITHUB_TOKEN": self.token}
