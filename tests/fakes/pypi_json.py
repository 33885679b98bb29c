"""A loopback stand-in for PyPI (warehouse) as it documents itself, for what publish and status ask:

- the simple API as PEP 691 JSON (``/simple/<project>/``, PEP 700's ``size`` and ``upload-time``);
- PyPI's JSON API release route (``/pypi/<project>/<version>/json``: ``urls[]`` with ``filename``,
  ``digests.sha256``, ``upload_time_iso_8601``...; 404 for a release it does not hold), as in
  docs.pypi.org/api/json;
- the legacy upload API twine posts to, with warehouse's refusals: ``400 File already exists`` for any
  file it holds, an identical one included (warehouse #20251), and ``400 Uploading new files to
  releases older than 14 days is not allowed.`` (warehouse #19727, July 2026);
- the files themselves (``/files/<name>``), so that an installer can install back from it.

Every upload attempt is recorded (``attempts``), accepted or not, so tests assert what was sent.
"""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename

from tests.fakes import loopback


@dataclass(frozen=True)
class Stored:
    project: str  # canonical
    version: str
    data: bytes
    uploaded: datetime

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def _identify(filename: str) -> tuple[str, str]:
    if filename.endswith(".whl"):
        name, version, _, _ = parse_wheel_filename(filename)
    else:
        name, version = parse_sdist_filename(filename)
    return str(canonicalize_name(name)), str(version)


@dataclass
class FakePyPI:
    window_days: int = 14
    files: dict[str, Stored] = field(default_factory=dict)
    attempts: list[str] = field(default_factory=list)  # every file name posted to the upload API

    def __post_init__(self) -> None:
        self.lock = threading.Lock()

    def hold(self, path: Path, *, days_ago: float, data: bytes | None = None) -> None:
        """A file already on the index, uploaded ``days_ago`` (``data``: other bytes under its name)."""
        project, version = _identify(path.name)
        uploaded = datetime.now(UTC) - timedelta(days=days_ago)
        self.files[path.name] = Stored(project, version, path.read_bytes() if data is None else data, uploaded)

    def release_files(self, project: str, version: str) -> dict[str, Stored]:
        wanted = str(canonicalize_name(project))
        return {n: f for n, f in self.files.items() if f.project == wanted and f.version == version}

    # --- servers ------------------------------------------------------------------------------
    def start(self) -> FakePyPI:
        self._server = loopback.serve(_handler(self))
        return self

    def stop(self) -> None:
        loopback.stop(self._server)

    @property
    def base_url(self) -> str:
        return loopback.url(self._server)

    @property
    def simple_url(self) -> str:
        return f"{self.base_url}/simple/"

    @property
    def upload_url(self) -> str:
        return f"{self.base_url}/legacy/"

    def environ(self, name: str) -> dict[str, str]:
        """Settings naming this stand-in as the index ``name`` (testpypi or pypi)."""
        prefix = f"CUDA_CI_{name.upper()}"
        return {
            f"{prefix}_UPLOAD_URL": self.upload_url,
            f"{prefix}_SIMPLE_URL": self.simple_url,
            f"{prefix}_TOKEN": f"pypi-fake-{name}-token",
        }

    # --- answers ------------------------------------------------------------------------------
    def _file_json(self, name: str, stored: Stored) -> dict[str, Any]:
        """One entry of ``urls`` as PyPI's JSON API documents it."""
        return {
            "comment_text": "",
            "digests": {
                "blake2b_256": hashlib.blake2b(stored.data, digest_size=32).hexdigest(),
                "md5": hashlib.md5(stored.data).hexdigest(),
                "sha256": stored.sha256,
            },
            "downloads": -1,
            "filename": name,
            "has_sig": False,
            "md5_digest": hashlib.md5(stored.data).hexdigest(),
            "packagetype": "bdist_wheel" if name.endswith(".whl") else "sdist",
            "python_version": "py3" if name.endswith(".whl") else "source",
            "requires_python": None,
            "size": len(stored.data),
            "upload_time": stored.uploaded.strftime("%Y-%m-%dT%H:%M:%S"),
            "upload_time_iso_8601": stored.uploaded.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "url": f"{self.base_url}/files/{name}",
            "yanked": False,
            "yanked_reason": None,
        }

    def release_json(self, project: str, version: str) -> dict[str, Any] | None:
        files = self.release_files(project, version)
        if not files:
            return None
        info = {"name": project, "version": version, "yanked": False, "yanked_reason": None}
        urls = [self._file_json(n, f) for n, f in sorted(files.items())]
        return {"info": info, "last_serial": len(self.files), "urls": urls, "vulnerabilities": []}

    def simple_json(self, project: str) -> dict[str, Any] | None:
        files = {n: f for n, f in self.files.items() if f.project == str(canonicalize_name(project))}
        if not files:
            return None
        entries = [
            {
                "filename": n,
                "url": f"{self.base_url}/files/{n}",
                "hashes": {"sha256": f.sha256},
                "size": len(f.data),
                "upload-time": f.uploaded.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            }
            for n, f in sorted(files.items())
        ]
        versions = sorted({f.version for f in files.values()})
        return {"meta": {"api-version": "1.1"}, "name": project, "versions": versions, "files": entries}

    def upload(self, filename: str, data: bytes) -> tuple[int, str]:
        """warehouse's legacy upload: (status, message)."""
        with self.lock:
            self.attempts.append(filename)
            if filename in self.files:
                blake = hashlib.blake2b(self.files[filename].data, digest_size=32).hexdigest()
                return 400, (
                    f"File already exists ('{filename}', with blake2_256 hash '{blake}'). "
                    "See https://pypi.org/help/#file-name-reuse for more information."
                )
            project, version = _identify(filename)
            release = self.release_files(project, version)
            first = min((f.uploaded for f in release.values()), default=None)
            if first is not None and datetime.now(UTC) - first > timedelta(days=self.window_days):
                return 400, f"Uploading new files to releases older than {self.window_days} days is not allowed."
            self.files[filename] = Stored(project, version, data, datetime.now(UTC))
            return 200, "OK"


def _json(data: dict[str, Any] | None, content_type: str) -> tuple[int, bytes, str]:
    if data is None:
        return 404, b'{"message": "Not Found"}', "application/json"
    return 200, json.dumps(data).encode(), content_type


def _get(index: FakePyPI, path: str) -> tuple[int, bytes, str]:
    """(status, body, content type) of a GET."""
    parts = path.split("?")[0].strip("/").split("/")
    if len(parts) == 2 and parts[0] == "simple":
        return _json(index.simple_json(parts[1]), "application/vnd.pypi.simple.v1+json")
    if len(parts) == 4 and parts[0] == "pypi" and parts[3] == "json":
        return _json(index.release_json(parts[1], parts[2]), "application/json")
    if len(parts) == 2 and parts[0] == "files" and parts[1] in index.files:
        return 200, index.files[parts[1]].data, "application/octet-stream"
    return 404, b"Not Found", "text/plain"


def _post(index: FakePyPI, content_type: str, body: bytes) -> tuple[int, str]:
    """(status, message) of a legacy upload: twine's multipart form, its ``content`` part the file."""
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    content = next((p for p in message.iter_parts() if p.get_filename()), None)  # type: ignore[attr-defined]
    if content is None:
        return 400, "Bad Request: no file"
    return index.upload(str(content.get_filename()), content.get_payload(decode=True) or b"")


def _handler(index: FakePyPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: bytes, content_type: str, reason: str | None = None) -> None:
            self.send_response(status, reason)  # warehouse says why in the reason phrase too
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self) -> None:
            self._send(*_get(index, self.path))

        def do_HEAD(self) -> None:  # installers ask before they download
            self._send(*_get(index, self.path))

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            status, text = _post(index, self.headers.get("Content-Type", ""), body)
            self._send(status, text.encode(), "text/plain", text if status != 200 else None)

    return Handler
