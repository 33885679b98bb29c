"""A loopback proxy in front of a real pypiserver that misbehaves on purpose, and a recording server."""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fakes import loopback


@dataclass
class FlakyIndex:
    """Forwards to ``upstream``; fails the first ``fail_posts`` uploads; drops uploads after ``drop_after``;
    serves ``serve_instead[name]`` for a download of the file ``name`` (an index that lies about a file)."""

    upstream: str
    fail_posts: int = 0
    fail_status: int = 503
    drop_after: int | None = None
    requests: list[tuple[str, str]] = field(default_factory=list)
    uploads_forwarded: int = 0
    serve_instead: dict[str, bytes] = field(default_factory=dict)

    def start(self) -> FlakyIndex:
        self._server = loopback.serve(_proxy_handler(self))
        return self

    def stop(self) -> None:
        loopback.stop(self._server)

    @property
    def url(self) -> str:
        return loopback.url(self._server)


def _proxy_handler(proxy: FlakyIndex) -> type[BaseHTTPRequestHandler]:  # noqa: C901 - one handler class
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _forward(self, method: str) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            proxy.requests.append((method, self.path))
            instead = proxy.serve_instead.get(self.path.rsplit("/", 1)[-1].split("#")[0])
            if method == "GET" and instead is not None:
                self.send_response(200)
                self.send_header("Content-Length", str(len(instead)))
                self.end_headers()
                self.wfile.write(instead)
                return
            if method == "POST":
                if proxy.fail_posts > 0:
                    proxy.fail_posts -= 1
                    self.send_response(proxy.fail_status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if proxy.drop_after is not None and proxy.uploads_forwarded >= proxy.drop_after:
                    self.close_connection = True
                    self.connection.close()  # the connection drops: no response at all
                    return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
            request = urllib.request.Request(
                proxy.upstream.rstrip("/") + self.path, data=body or None, method=method, headers=headers
            )
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    status, reply, reply_headers = response.status, response.read(), response.headers
            except urllib.error.HTTPError as error:
                status, reply, reply_headers = error.code, error.read(), error.headers
            if method == "POST" and status < 300:
                proxy.uploads_forwarded += 1
            self.send_response(status)
            for key, value in reply_headers.items():
                if key.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                    self.send_header(key, value)
            length = reply_headers.get("Content-Length", "0") if method == "HEAD" else str(len(reply))
            self.send_header("Content-Length", length)
            self.end_headers()
            if method != "HEAD":
                self.wfile.write(reply)

        def do_GET(self) -> None:
            self._forward("GET")

        def do_POST(self) -> None:
            self._forward("POST")

        def do_HEAD(self) -> None:
            self._forward("HEAD")

    return Handler


@dataclass
class RecordingServer:
    """Answers 500 to everything and remembers every request: a release surface nothing may touch."""

    requests: list[tuple[str, str]] = field(default_factory=list)

    def start(self) -> RecordingServer:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _record(self) -> None:
                recorder.requests.append((self.command, self.path))
                self.send_response(500)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _record

        self._server = loopback.serve(Handler)
        return self

    def stop(self) -> None:
        loopback.stop(self._server)

    @property
    def url(self) -> str:
        return loopback.url(self._server)
