"""A server that answers 200 and then drips its body a byte at a time holds no request past its deadline."""

from __future__ import annotations

import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from cuda_ci.cli.app import main
from cuda_ci.infra.httpclient import HttpClient, HttpUnavailable
from tests.fakes import loopback

pytestmark = pytest.mark.e2e
DRIP = 0.5  # seconds between two bytes: each read succeeds, well inside the socket timeout


class Dripping(BaseHTTPRequestHandler):
    requests = 0

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        type(self).requests += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "1000")
        self.end_headers()
        for _ in range(120):  # at most a minute, whatever the client does
            try:
                self.wfile.write(b" ")
                self.wfile.flush()
            except OSError:
                return
            time.sleep(DRIP)


@pytest.fixture
def dripping() -> Iterator[ThreadingHTTPServer]:
    Dripping.requests = 0
    server = loopback.serve(Dripping)
    try:
        yield server
    finally:
        loopback.stop(server)


def test_a_dripping_answer_ends_at_the_deadline_naming_the_host(dripping: ThreadingHTTPServer) -> None:
    port = dripping.server_address[1]
    url = f"http://127.0.0.1:{port}/simple/cuda-pathfinder/"
    start = time.monotonic()
    with pytest.raises(HttpUnavailable) as raised:
        HttpClient(deadline=2.0, timeout=30.0).request("GET", url)
    took = time.monotonic() - start
    message = raised.value.problems[0]
    assert f"127.0.0.1:{port} did not finish answering within 2 s" in message
    assert message.startswith(f"GET {url}: ")
    assert took < 10, f"held {took:.1f} s: the deadline is overall, not per read"
    assert Dripping.requests == 1, "a server that drips is not asked again"


def test_cuda_ci_reports_the_deadline_as_an_error(
    dripping: ThreadingHTTPServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("cuda_ci.infra.httpclient.DEADLINE", 2.0)
    monkeypatch.setenv("GITHUB_API_URL", loopback.url(dripping))
    monkeypatch.setenv("GITHUB_REPOSITORY", "NVIDIA/cuda-python")
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    monkeypatch.delenv("GH_TOKEN", raising=False)
    start = time.monotonic()
    assert main(["verify", "--tag", "cuda-pathfinder-v1.0.0", "--from-github"]) == 1
    assert time.monotonic() - start < 10
    err = capsys.readouterr().err
    port = dripping.server_address[1]
    assert f"error: GET http://127.0.0.1:{port}/repos/NVIDIA/cuda-python/releases/tags/" in err
    assert f"127.0.0.1:{port} did not finish answering within 2 s" in err
    assert "internal error" not in err and "Traceback" not in err
