"""A loopback stand-in for the GitHub REST subset cuda-ci uses, on two endpoints (API and uploads).

Shapes follow GitHub's documentation: workflow runs (``GET .../actions/workflows/{id}/runs``),
releases (``/releases``, ``/releases/tags/{tag}`` which never returns drafts), and release assets
uploaded to the separate uploads host named by the release's ``upload_url``.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes import loopback


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    status: int
    times: int
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeGitHub:
    repository: str = "NVIDIA/cuda-python"
    token: str = "ghs_fake_token_for_tests"
    runs: list[dict[str, Any]] = field(default_factory=list)
    releases: list[dict[str, Any]] = field(default_factory=list)
    assets: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    blobs: dict[int, bytes] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    per_page_cap: int = 2  # small pages, so pagination is always exercised
    uploads_allowed: int | None = None  # after this many asset uploads, the uploads host answers 503

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = iter(range(1000, 10**6))
        self._servers: list[ThreadingHTTPServer] = []

    # --- test helpers -----------------------------------------------------------------------
    def add_run(self, sha: str, *, conclusion: str = "success", branch: str = "main", event: str = "push") -> None:
        run_id = next(self._ids)
        self.runs.append(
            {
                "id": run_id,
                "head_sha": sha,
                "head_branch": branch,
                "event": event,
                "status": "completed",
                "conclusion": conclusion,
                "html_url": f"https://github.com/{self.repository}/actions/runs/{run_id}",
            }
        )

    def add_release(self, tag: str, *, draft: bool) -> dict[str, Any]:
        release_id = next(self._ids)
        release = {
            "id": release_id,
            "tag_name": tag,
            "name": tag,
            "draft": draft,
            "html_url": f"https://github.com/{self.repository}/releases/tag/{tag}",
            "upload_url": f"{self.uploads_url}/repos/{self.repository}/releases/{release_id}/assets{{?name,label}}",
        }
        self.releases.append(release)
        self.assets[release_id] = []
        return release

    def fail(self, method: str, path: str, status: int, times: int, **headers: str) -> None:
        self.faults.append(Fault(method, re.compile(path), status, times, headers))

    def release(self, tag: str) -> dict[str, Any]:
        return next(r for r in self.releases if r["tag_name"] == tag)

    def asset_names(self, tag: str) -> list[str]:
        return sorted(a["name"] for a in self.assets[self.release(tag)["id"]])

    @property
    def writes(self) -> list[tuple[str, str]]:
        return [r for r in self.requests if r[0] != "GET"]

    # --- servers --------------------------------------------------------------------------
    def start(self) -> FakeGitHub:
        self._servers += [loopback.serve(_handler(self, uploads=uploads)) for uploads in (False, True)]
        return self

    def stop(self) -> None:
        for server in self._servers:
            loopback.stop(server)

    @property
    def api_url(self) -> str:
        return loopback.url(self._servers[0])

    @property
    def uploads_url(self) -> str:
        return loopback.url(self._servers[1])

    def environ(self) -> dict[str, str]:
        return {"GITHUB_API_URL": self.api_url, "GITHUB_REPOSITORY": self.repository, "GITHUB_TOKEN": self.token}


def _handler(fake: FakeGitHub, *, uploads: bool) -> type[BaseHTTPRequestHandler]:  # noqa: C901 - one verb each
    prefix = f"/repos/{fake.repository}"

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _dispatch(self, method: str) -> None:
            url = urlsplit(self.path)
            body = self._body()
            with fake._lock:
                fake.requests.append((method, self.path))
                for fault in fake.faults:
                    if fault.method == method and fault.times > 0 and fault.path.search(url.path):
                        fault.times -= 1
                        self._send(fault.status, {"message": "injected fault"}, fault.headers)
                        return
                if self.headers.get("Authorization") != f"Bearer {fake.token}" and not url.path.startswith(
                    "/download/"
                ):
                    self._send(401, {"message": "Bad credentials"})
                    return
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                is_upload = method == "POST" and re.search(r"/releases/\d+/assets$", url.path) is not None
                is_download = method == "GET" and url.path.startswith("/download/")
                if (is_upload or is_download) != uploads:  # the uploads/storage host only for those
                    self._send(404, {"message": "Not Found"})
                    return
                if is_download:
                    self._serve_blob(int(url.path.rsplit("/", 1)[1]))
                    return
                status, payload, headers = _route(fake, prefix, method, url.path, query, body, self.headers)
                self._send(status, payload, headers)

        def _serve_blob(self, asset_id: int) -> None:
            if self.headers.get("Authorization"):  # like S3: a second auth mechanism is refused
                self._send(400, {"message": "Only one auth mechanism allowed"})
                return
            data = fake.blobs[asset_id]
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._dispatch("GET")

        def do_POST(self) -> None:
            self._dispatch("POST")

        def do_PATCH(self) -> None:
            self._dispatch("PATCH")

        def do_DELETE(self) -> None:
            self._dispatch("DELETE")

        def do_PUT(self) -> None:
            self._dispatch("PUT")

    return Handler


def _page(fake: FakeGitHub, items: list[Any], query: dict[str, str], path: str) -> tuple[list[Any], dict[str, str]]:
    per_page = min(int(query.get("per_page", 30)), fake.per_page_cap)
    page = int(query.get("page", 1))
    chunk = items[(page - 1) * per_page : page * per_page]
    headers = {}
    if page * per_page < len(items):
        nxt = dict(query, page=str(page + 1))
        headers["Link"] = f'<{fake.api_url}{path}?{"&".join(f"{k}={v}" for k, v in nxt.items())}>; rel="next"'
    return chunk, headers


def _route(  # noqa: C901 - a flat routing table reads best in a fake
    fake: FakeGitHub, prefix: str, method: str, path: str, query: dict[str, str], body: bytes, headers: Any
) -> tuple[int, Any, dict[str, str]]:
    if not path.startswith(prefix):
        return 404, {"message": "Not Found"}, {}
    rest = path[len(prefix) :]
    if method == "GET" and rest == "/actions/workflows/ci.yml/runs":
        runs = [
            r
            for r in fake.runs
            if all(
                r[key] == query[param]
                for key, param in (("head_branch", "branch"), ("event", "event"), ("head_sha", "head_sha"))
                if param in query
            )
            and ("status" not in query or r["conclusion"] == query["status"])
        ]
        chunk, link = _page(fake, runs, query, path)
        return 200, {"total_count": len(runs), "workflow_runs": chunk}, link
    if method == "GET" and rest.startswith("/releases/tags/"):
        tag = rest[len("/releases/tags/") :]
        found = [r for r in fake.releases if r["tag_name"] == tag and not r["draft"]]
        return (200, found[0], {}) if found else (404, {"message": "Not Found"}, {})
    if method == "GET" and rest == "/releases":
        chunk, link = _page(fake, fake.releases, query, path)
        return 200, chunk, link
    if method == "POST" and rest == "/releases":
        data = json.loads(body)
        if any(r["tag_name"] == data["tag_name"] for r in fake.releases):
            return 422, {"message": "Validation Failed", "errors": [{"code": "already_exists"}]}, {}
        release = fake.add_release(data["tag_name"], draft=bool(data.get("draft")))
        return 201, release, {}
    match = re.fullmatch(r"/releases/(\d+)/assets", rest)
    if match and method == "GET":
        chunk, link = _page(fake, fake.assets.get(int(match.group(1)), []), query, path)
        return 200, chunk, link
    if match and method == "POST":
        release_id = int(match.group(1))
        if fake.uploads_allowed is not None:
            if fake.uploads_allowed <= 0:
                return 503, {"message": "Service Unavailable"}, {}
            fake.uploads_allowed -= 1
        if any(a["name"] == query["name"] for a in fake.assets[release_id]):
            return (
                422,
                {"message": "Validation Failed", "errors": [{"resource": "ReleaseAsset", "code": "already_exists"}]},
                {},
            )
        asset_id = next(fake._ids)
        asset = {
            "id": asset_id,
            "name": query["name"],
            "size": len(body),
            "digest": "sha256:" + hashlib.sha256(body).hexdigest(),
            "state": "uploaded",
        }
        fake.assets[release_id].append(asset)
        fake.blobs[asset_id] = body
        return 201, asset, {}
    match = re.fullmatch(r"/releases/assets/(\d+)", rest)
    if match and method == "GET" and headers.get("Accept") == "application/octet-stream":
        return 302, None, {"Location": f"{fake.uploads_url}/download/{match.group(1)}"}
    if match and method == "DELETE":
        asset_id = int(match.group(1))
        for assets in fake.assets.values():
            assets[:] = [a for a in assets if a["id"] != asset_id]
        return 204, None, {}
    match = re.fullmatch(r"/releases/(\d+)", rest)
    if match and method == "PATCH":
        release = next(r for r in fake.releases if r["id"] == int(match.group(1)))
        release.update({k: v for k, v in json.loads(body).items() if k in ("draft", "name", "body")})
        return 200, release, {}
    return 404, {"message": "Not Found"}, {}
