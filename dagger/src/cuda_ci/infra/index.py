"""Package indexes: what one already holds (simple API), and the embedded pypiserver (uploads: ``publish``)."""

from __future__ import annotations

import base64
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from packaging.utils import canonicalize_name

from cuda_ci.infra.errors import CudaCiError
from cuda_ci.infra.httpclient import HttpClient
from cuda_ci.infra.process import child_options, clean_environ, end_groups

SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"


@dataclass(frozen=True)
class ServedFile:
    """A file a project page lists: where the index serves it, and the sha256 it claims (None: none)."""

    url: str
    sha256: str | None


class _Links(HTMLParser):
    """Anchors of a PEP 503 project page: file name → its link (relative to ``page``) and the sha256
    of the URL fragment."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.page = page
        self.files: dict[str, ServedFile] = {}
        self._href: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href = dict(attrs).get("href")

    def handle_data(self, data: str) -> None:
        if self._href is not None and data.strip():
            url, fragment = urllib.parse.urldefrag(urllib.parse.urljoin(self.page, self._href))
            algo, _, digest = fragment.partition("=")
            self.files[data.strip()] = ServedFile(url, digest if algo == "sha256" and digest else None)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._href = None


def basic_auth(auth: tuple[str, str]) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()}


def served_files(
    http: HttpClient, simple_url: str, project: str, *, auth: tuple[str, str] | None = None
) -> dict[str, ServedFile]:
    """Every file the index lists for ``project`` (PEP 691 JSON, or the PEP 503 HTML page), with its
    absolute URL; ``auth``: HTTP Basic credentials for this index (never part of the URL)."""
    url = f"{simple_url.rstrip('/')}/{canonicalize_name(project)}/"
    headers = {"Accept": f"{SIMPLE_JSON}, text/html;q=0.1", **(basic_auth(auth) if auth is not None else {})}
    response = http.request("GET", url, headers=headers, allow=frozenset({404}), ok=frozenset({200}))
    if response.status == 404:
        return {}
    content_type = response.header("content-type") or ""
    if SIMPLE_JSON in content_type:
        return {
            f["filename"]: ServedFile(
                urllib.parse.urldefrag(urllib.parse.urljoin(url, f.get("url", "")))[0],
                f.get("hashes", {}).get("sha256"),
            )
            for f in response.json().get("files", [])
        }
    parser = _Links(url)
    parser.feed(response.body.decode("utf-8", "replace"))
    return parser.files


def files_on_index(
    http: HttpClient, simple_url: str, project: str, *, auth: tuple[str, str] | None = None
) -> dict[str, str | None]:
    """File name → sha256 (None where the index gives no hash) the index holds for ``project``."""
    return {name: served.sha256 for name, served in served_files(http, simple_url, project, auth=auth).items()}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class EmbeddedIndex:
    """A pypiserver on 127.0.0.1 holding its packages in ``root``."""

    name: str
    root: Path
    port: int
    process: subprocess.Popen[bytes] | None = field(default=None, compare=False, repr=False)
    startup_timeout: float = field(default=30.0, compare=False, repr=False)

    @property
    def upload_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def simple_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/simple/"

    def wait_until_listening(self) -> None:
        """Return once the server accepts connections (at once if it already does)."""
        if self.process is not None:
            _wait_until_listening(self.process, self.port, self.startup_timeout, self.name)


@contextmanager
def embedded_index(name: str, root: Path, startup_timeout: float = 30.0) -> Iterator[EmbeddedIndex]:
    """One pypiserver (uploads allowed without authentication, loopback only); always stopped."""
    with embedded_indexes({name: root}, startup_timeout) as indexes:
        indexes[name].wait_until_listening()
        yield indexes[name]


@contextmanager
def embedded_indexes(roots: Mapping[str, Path], startup_timeout: float = 30.0) -> Iterator[dict[str, EmbeddedIndex]]:
    """A pypiserver per name, all started at once and not waited for (``wait_until_listening``
    before first use, so that their start overlaps other work); every one always stopped.

    Files already in a root are served from the start (pypiserver lists its folder).
    """
    processes: list[subprocess.Popen[bytes]] = []
    indexes: dict[str, EmbeddedIndex] = {}
    try:
        for name, root in roots.items():
            root.mkdir(parents=True, exist_ok=True)
            port = free_port()
            process = subprocess.Popen(  # dies with cuda-ci, even on kill -9 (Linux)
                _pypiserver_argv(root, port),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env=clean_environ(),
                **child_options(),
            )
            processes.append(process)
            indexes[name] = EmbeddedIndex(name, root, port, process, startup_timeout)
        yield indexes
    finally:
        end_groups(processes)
        for process in processes:
            process.wait(timeout=10)
            if process.stderr:
                process.stderr.close()


def _pypiserver_argv(root: Path, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pypiserver",
        "run",
        "-i",
        "127.0.0.1",
        "-p",
        str(port),
        "-a",
        ".",
        "-P",
        ".",
        "--disable-fallback",
        "--hash-algo",
        "sha256",
        str(root),
    ]


def _wait_until_listening(process: subprocess.Popen[bytes], port: int, timeout: float, name: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            error = process.stderr.read().decode(errors="replace") if process.stderr else ""
            raise CudaCiError(f"the embedded {name} index (pypiserver) exited at start: {error.strip()[-500:]}")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise CudaCiError(f"the embedded {name} index did not listen on 127.0.0.1:{port} within {timeout:.0f} s")
