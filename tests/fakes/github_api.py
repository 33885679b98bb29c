"""The GitHub stand-in's HTTP side: validation, rate limits, access, and one route per documented call."""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit

from tests.fakes.openapi import violations

if TYPE_CHECKING:
    from tests.fakes.github import FakeGitHub

Answer = tuple[int, Any, dict[str, str]]  # status, JSON payload or raw bytes, headers
NOT_FOUND: Answer = (404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}, {})
DOCS = "https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api"


@dataclass(frozen=True)
class Recorded:
    """One request as received: where, what, from whom, and what the stand-in answered."""

    host: Literal["api", "uploads", "storage"]
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    status: int
    at: float  # time.monotonic() on arrival

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)


class _Handler(BaseHTTPRequestHandler):
    fake: FakeGitHub
    host: Literal["api", "uploads"]

    def log_message(self, *args: Any) -> None:
        pass

    def _dispatch(self, method: str) -> None:
        fake, url = self.fake, urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = dict(self.headers.items())
        arrived = time.monotonic()
        with fake.lock:
            if self.host == "uploads" and url.path.startswith("/download/"):
                where: Literal["api", "uploads", "storage"] = "storage"
                answer = _storage(fake, method, url.path, headers)
            else:
                where, answer = self.host, _answer(fake, self.host, method, url.path, url.query, headers, body, arrived)
            fake.log.append(Recorded(where, method, url.path, url.query, headers, body, answer[0], arrived))
        self._send(*answer)

    def _send(self, status: int, payload: Any, headers: dict[str, str]) -> None:
        raw = isinstance(payload, bytes)
        data = payload if raw else (json.dumps(payload).encode() if payload is not None else b"")
        self.send_response(status)
        if not raw:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        for key, value in headers.items():
            self.send_header(key, value)
        if raw:  # streamed: no length, in pieces, ended by closing the connection
            self.end_headers()
            self.close_connection = True
            for start in range(0, len(data), 4096):
                self.wfile.write(data[start : start + 4096])
                self.wfile.flush()
            return
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


def handler(fake: FakeGitHub, host: Literal["api", "uploads"]) -> type[BaseHTTPRequestHandler]:
    return type(f"GitHub{host.title()}Handler", (_Handler,), {"fake": fake, "host": host})


def _storage(fake: FakeGitHub, method: str, path: str, headers: dict[str, str]) -> Answer:
    """The storage host a download redirects to: no GitHub API, and like S3 it refuses a second credential."""
    if method != "GET":
        return NOT_FOUND
    if any(k.lower() == "authorization" for k in headers):
        return 400, {"message": "Only one auth mechanism allowed"}, {}
    blob = fake.blobs.get(int(path.rsplit("/", 1)[1]))
    return (200, blob, {"Content-Type": "application/octet-stream"}) if blob is not None else NOT_FOUND


def _answer(
    fake: FakeGitHub, host: str, method: str, path: str, query: str, headers: dict[str, str], body: bytes, now: float
) -> Answer:
    found = violations(method, path, query, headers, body)
    if found:
        fake.violations += found
        return 422, {"message": "Invalid request.", "errors": found}, {}
    is_upload = method == "POST" and re.fullmatch(r"/repos/[^/]+/[^/]+/releases/\d+/assets", path) is not None
    if is_upload != (host == "uploads"):
        return NOT_FOUND
    if fake.renamed_from and (path + "/").startswith(f"/repos/{fake.renamed_from}/"):
        moved = f"/repos/{fake.repository}{path[len(f'/repos/{fake.renamed_from}') :]}"
        base = fake.uploads_url if host == "uploads" else fake.api_url
        return (
            301,
            {"message": "Moved Permanently", "url": base + moved},
            {"Location": base + moved + (f"?{query}" if query else "")},
        )
    limited = _rate_limited(fake, method, now)
    if limited is not None:
        return limited
    status, payload, extra = _faulted(fake, method, path, before=True) or _routed(
        fake, method, path, query, headers, body
    )
    after = _faulted(fake, method, path, before=False)
    if after is not None:
        status, payload, extra = after
    return status, payload, {**_quota(fake, remaining=4999), **extra}


def _quota(fake: FakeGitHub, remaining: int) -> dict[str, str]:
    return {
        "x-ratelimit-limit": "5000",
        "x-ratelimit-remaining": str(remaining),
        "x-ratelimit-reset": str(math.ceil(time.time()) + 3600),
        "x-ratelimit-used": str(5000 - remaining),
        "x-ratelimit-resource": "core",
    }


def _rate_limited(fake: FakeGitHub, method: str, now: float) -> Answer | None:
    if now < fake.limited_until or fake.limit_count > 0:
        fake.limit_count = max(fake.limit_count - 1, 0)
        headers = {**_quota(fake, remaining=0 if "x-ratelimit-reset" in fake.limit_headers else 4999)}
        headers.update(fake.limit_headers)
        return fake.limit_status, {"message": fake.limit_message, "documentation_url": DOCS}, headers
    if method != "GET":
        if fake.last_write is not None and now - fake.last_write < fake.write_gap:
            message = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
            return 403, {"message": message, "documentation_url": DOCS}, {**_quota(fake, 4999), "retry-after": "1"}
        fake.last_write = now
    return None


def _faulted(fake: FakeGitHub, method: str, path: str, *, before: bool) -> Answer | None:
    for fault in fake.faults:
        if fault.after != (not before) or fault.method != method or fault.times <= 0 or not fault.path.search(path):
            continue
        fault.times -= 1
        return fault.status, {"message": fault.message}, dict(fault.headers)
    return None


def _access(fake: FakeGitHub, headers: dict[str, str]) -> str | None:
    """'write', 'read', 'none' for a known token, 'anonymous' without one, None for a bad token."""
    auth = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
    if auth is None:
        return "anonymous"
    return fake.tokens.get(auth.removeprefix("Bearer ").removeprefix("token "))


def _routed(fake: FakeGitHub, method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> Answer:
    access = _access(fake, headers)
    if access is None:
        return 401, {"message": "Bad credentials"}, {}
    if fake.private and access not in ("write", "read"):
        return NOT_FOUND  # GitHub hides a private repository from whoever may not see it
    prefix = f"/repos/{fake.repository}"
    if path != prefix and not path.startswith(prefix + "/"):
        return NOT_FOUND
    push = access == "write"
    if method != "GET" and not push:
        if access == "anonymous":
            return 401, {"message": "Requires authentication"}, {}
        return 403, {"message": "Resource not accessible by integration"}, {}
    params = dict(parse_qsl(query))
    return _route(fake, method, path[len(prefix) :], params, headers, body, push)


def _route(  # noqa: C901 - a flat table of GitHub's calls reads best in a fake
    fake: FakeGitHub, method: str, rest: str, query: dict[str, str], headers: dict[str, str], body: bytes, push: bool
) -> Answer:
    visible = [r for r in fake.releases if push or not r["draft"]]
    if method == "GET" and rest == "":
        permissions = {"admin": False, "push": push, "pull": True}
        return 200, {"id": 1, "full_name": fake.repository, "private": fake.private, "permissions": permissions}, {}
    if method == "GET" and rest == "/actions/workflows/ci.yml/runs":
        runs = [r for r in fake.runs if _run_matches(r, query)]
        chunk, link = _page(fake, runs, query, rest)
        return 200, {"total_count": len(runs), "workflow_runs": chunk}, link
    if method == "GET" and rest.startswith("/releases/tags/"):
        tag = rest[len("/releases/tags/") :]
        found = [r for r in fake.releases if r["tag_name"] == tag and not r["draft"]]
        return (200, found[0], {}) if found else NOT_FOUND
    if method == "GET" and rest == "/releases":
        chunk, link = _page(fake, visible, query, rest)
        return 200, chunk, link
    if method == "POST" and rest == "/releases":
        return _create_release(fake, json.loads(body))
    match = re.fullmatch(r"/releases/(\d+)(/assets)?", rest)
    release = next((r for r in visible if match and r["id"] == int(match.group(1))), None)
    if match and release is None:
        return NOT_FOUND
    if match and release and not match.group(2):
        if method == "GET":
            return 200, release, {}
        return _update_release(fake, release, json.loads(body))
    if match and release and method == "GET":
        chunk, link = _page(fake, fake.assets[release["id"]], query, rest)
        return 200, chunk, link
    if match and release:
        return _upload(fake, release, query["name"], headers, body)
    match = re.fullmatch(r"/releases/assets/(\d+)", rest)
    owner = next((r for r in visible for a in fake.assets[r["id"]] if match and a["id"] == int(match.group(1))), None)
    if match is None or owner is None:
        return NOT_FOUND
    asset = next(a for a in fake.assets[owner["id"]] if a["id"] == int(match.group(1)))
    if method == "DELETE":
        fake.assets[owner["id"]].remove(asset)
        return 204, None, {}
    if (headers.get("Accept") or "") != "application/octet-stream":
        return 200, asset, {}
    if fake.download_via == 200:
        return 200, fake.blobs.get(asset["id"], b""), {"Content-Type": "application/octet-stream"}
    return fake.download_via, None, {"Location": f"{fake.uploads_url}/download/{asset['id']}"}


def _run_matches(run: dict[str, Any], query: dict[str, str]) -> bool:
    keys = (("head_branch", "branch"), ("event", "event"), ("head_sha", "head_sha"))
    return all(run[key] == query[param] for key, param in keys if param in query) and (
        "status" not in query or run["conclusion"] == query["status"]
    )


def _create_release(fake: FakeGitHub, data: dict[str, Any]) -> Answer:
    tag = data["tag_name"]
    if any(r["tag_name"] == tag and not r["draft"] for r in fake.releases):
        errors = [{"resource": "Release", "code": "already_exists", "field": "tag_name"}]
        return 422, {"message": "Validation Failed", "errors": errors}, {}
    draft = bool(data.get("draft", False))
    release = fake.add_release(
        tag, draft=True, prerelease=bool(data.get("prerelease")), target_commitish=data.get("target_commitish", "main")
    )
    release.update({k: data[k] for k in ("name", "body") if k in data})
    if not draft:
        _update_release(fake, release, {"draft": False, **{k: data[k] for k in ("make_latest",) if k in data}})
    elif fake.racing_run:
        fake.add_release(tag, draft=True)
    return 201, release, {}


def _update_release(fake: FakeGitHub, release: dict[str, Any], data: dict[str, Any]) -> Answer:
    publishing = release["draft"] and data.get("draft") is False
    release.update({k: v for k, v in data.items() if k in ("draft", "name", "body", "prerelease", "tag_name")})
    if publishing:
        release["published_at"] = "2025-01-02T00:00:00Z"
        fake.tag_on_publish(release)
        # "Defaults to true for newly published releases"; "drafts and prereleases cannot be set as latest".
        if data.get("make_latest", "true") == "true" and not release["prerelease"]:
            fake.latest_id = release["id"]
    elif data.get("make_latest") == "true" and not release["draft"] and not release["prerelease"]:
        fake.latest_id = release["id"]
    return 200, release, {}


def _upload(fake: FakeGitHub, release: dict[str, Any], name: str, headers: dict[str, str], body: bytes) -> Answer:
    if any(a["name"] == name for a in fake.assets[release["id"]]):
        errors = [{"resource": "ReleaseAsset", "code": "already_exists", "field": "name"}]
        return 422, {"message": "Validation Failed", "errors": errors}, {}
    failing = fake.upload_failures > 0 or (fake.uploads_allowed is not None and fake.uploads_allowed <= 0)
    fake.upload_failures = max(fake.upload_failures - 1, 0)
    content_type = headers.get("Content-Type", "application/octet-stream")
    asset = asset_json(fake, release, next(fake.ids), name, body, content_type)
    if failing:  # "a 502 Bad Gateway ... may leave an empty asset with a state of starter"
        asset.update(state="starter", size=0, digest=None)
    fake.assets[release["id"]].append(asset)
    if failing:
        return 502, {"message": "Bad Gateway"}, {}
    if fake.uploads_allowed is not None:
        fake.uploads_allowed -= 1
    fake.blobs[asset["id"]] = body
    return 201, asset, {}


def _page(fake: FakeGitHub, items: list[Any], query: dict[str, str], rest: str) -> tuple[list[Any], dict[str, str]]:
    """One page, and a full ``Link`` header (first, prev, next, last) as GitHub sends it."""
    per_page = min(int(query.get("per_page", 30)), fake.per_page_cap)
    page = int(query.get("page", 1))
    last = max(math.ceil(len(items) / per_page), 1)
    base = f"{fake.api_url}/repos/{fake.repository}{rest}"
    links = {"first": 1, "prev": page - 1, "next": page + 1, "last": last}
    shown = {rel: n for rel, n in links.items() if 1 <= n <= last and n != page}
    link = ", ".join(f'<{base}?{urlencode({**query, "page": n})}>; rel="{rel}"' for rel, n in shown.items())
    return items[(page - 1) * per_page : page * per_page], ({"Link": link} if link else {})


def asset_json(
    fake: FakeGitHub, release: dict[str, Any], asset_id: int, name: str, data: bytes, content_type: str
) -> dict[str, Any]:
    return {
        "url": f"{fake.api_url}/repos/{fake.repository}/releases/assets/{asset_id}",
        "browser_download_url": f"https://github.com/{fake.repository}/releases/download/{release['tag_name']}/{name}",
        "id": asset_id,
        "node_id": f"RA_{asset_id}",
        "name": name,
        "label": None,
        "state": "uploaded",
        "content_type": content_type,
        "size": len(data),
        "digest": "sha256:" + hashlib.sha256(data).hexdigest(),
        "download_count": 0,
        "created_at": "2025-01-01T00:00:00Z",
        "updated_at": "2025-01-01T00:00:00Z",
        "uploader": None,
    }
