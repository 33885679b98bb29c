"""A read-only package index on loopback: the PEP 691 JSON simple API for the files it is given.

Enough for what preflight asks an index (which files of a project it holds); no uploads, no
downloads. Cheaper than a pypiserver where nothing is installed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from packaging.utils import canonicalize_name

from tests.fakes import loopback


@dataclass
class SimpleIndex:
    """Serves ``/simple/<project>/`` for the names in ``files`` (file names, canonical project names)."""

    files: dict[str, list[str]] = field(default_factory=dict)

    def add(self, project: str, *names: str) -> None:
        self.files.setdefault(str(canonicalize_name(project)), []).extend(names)

    def start(self) -> SimpleIndex:
        index = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                parts = self.path.strip("/").split("/")
                names = index.files.get(parts[1]) if len(parts) == 2 and parts[0] == "simple" else None
                body = b"" if names is None else json.dumps(_project(parts[1], names)).encode()
                self.send_response(404 if names is None else 200)
                self.send_header("Content-Type", "application/vnd.pypi.simple.v1+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = loopback.serve(Handler)
        return self

    def stop(self) -> None:
        loopback.stop(self._server)

    @property
    def simple_url(self) -> str:
        return loopback.url(self._server) + "/simple/"

    def environ(self) -> dict[str, str]:
        """Settings naming this index as both TestPyPI and PyPI."""
        return {f"CUDA_CI_{name}_SIMPLE_URL": self.simple_url for name in ("TESTPYPI", "PYPI")}


def _project(name: str, files: list[str]) -> dict[str, Any]:
    return {"meta": {"api-version": "1.0"}, "name": name, "files": [{"filename": f, "hashes": {}} for f in files]}
