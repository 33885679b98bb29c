"""Uploads and install-back decide from the tools' own words whether a failure can heal."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from cuda_ci.infra.components import get_unit
from cuda_ci.infra.errors import CommandError, CudaCiError
from cuda_ci.infra.httpclient import HttpClient
from cuda_ci.infra.log import Reporter
from cuda_ci.infra.manifest import FileEntry, Manifest, ReleaseFolder
from cuda_ci.publish import uploads
from cuda_ci.publish.uploads import IndexTarget, install_back, install_failure, twine_failure, upload

URL = "http://127.0.0.1:8080/"
TWINE_403 = f"""Uploading distributions to {URL}
Uploading cuda_pathfinder-1.0.0-py3-none-any.whl
WARNING  Error during upload. Retry with the --verbose option for more details.
ERROR    HTTPError: 403 Forbidden from {URL}
         Forbidden"""
TWINE_503 = f"""Uploading cuda_pathfinder-1.0.0-py3-none-any.whl
WARNING  Received "503: Service Unavailable"
         Package upload appears to have failed. Retry 5 of 5.
ERROR    HTTPError: 503 Service Unavailable from {URL}"""
TWINE_DROPPED = """  File ".../requests/adapters.py", line 711, in send
    raise ConnectionError(err, request=request)
requests.exceptions.ConnectionError: ('Connection aborted.', RemoteDisconnected('Remote end closed connection'))"""
UV_403 = """error: No solution found when resolving dependencies
  cause: Because cuda-pathfinder was not found in the package registry and you require cuda-pathfinder==1.0.0, ...
hint: An index (http://127.0.0.1:8080/simple/) returned a 403 Forbidden error. Check that the index URL is correct"""
UV_401 = """hint: An index URL (http://127.0.0.1:8080/simple/) could not be queried due to a lack of valid
authentication credentials (401 Unauthorized)"""
UV_NOT_YET = """error: No solution found when resolving dependencies
  cause: Because there is no version of cuda-pathfinder==1.0.0 and you require cuda-pathfinder==1.0.0, ..."""
UV_503 = """error: Request failed after 3 retries in 5.4s
  cause: Failed to fetch: http://127.0.0.1:8080/simple/cuda-pathfinder/
  cause: HTTP status server error (503 Service Unavailable) for url (http://127.0.0.1:8080/simple/cuda-pathfinder/)"""
UV_DROPPED = """  cause: error sending request for url (http://127.0.0.1:8080/simple/cuda-pathfinder/)
  cause: connection closed before message completed"""
VERSION_CHECK = """AssertionError: 1.0.0.dev3"""


@pytest.mark.parametrize(
    ("output", "reason"),
    [
        (TWINE_503, f"HTTPError: 503 Service Unavailable from {URL}"),
        (TWINE_503.replace("503 Service Unavailable", "429 Too Many Requests"), "HTTPError: 429 Too Many Requests"),
        (TWINE_DROPPED, "requests.exceptions.ConnectionError: ('Connection aborted.'"),
        ("twine upload of a.whl to pypi failed with exit code 124:\ntimed out after 900 s", "timed out after 900 s"),
        (TWINE_403, None),
        (TWINE_403.replace("403 Forbidden", "400 Bad Request"), None),
        (TWINE_403.replace("403 Forbidden", "409 Conflict"), None),
        ("ERROR    InvalidDistribution: Unknown distribution format: 'x.zip'", None),
    ],
)
def test_twine_failures_that_heal_are_told_from_refusals(output: str, reason: str | None) -> None:
    found = twine_failure(output)
    assert found == reason if reason is None else (found or "").startswith(reason)


@pytest.mark.parametrize(
    ("output", "reason"),
    [
        (UV_NOT_YET, "the index does not serve it yet"),
        ("ERROR: No matching distribution found for cuda-pathfinder==1.0.0", "the index does not serve it yet"),
        (UV_503, "the index is out of reach"),
        (UV_DROPPED, "the index is out of reach"),
        (UV_403, None),
        (UV_401, None),
        ("ERROR: HTTP error 403 while getting http://127.0.0.1:8080/packages/x.whl", None),
        (VERSION_CHECK, None),
    ],
)
def test_install_failures_that_heal_are_told_from_refusals(output: str, reason: str | None) -> None:
    assert install_failure(output) == reason


TARGET = IndexTarget(name="testpypi", upload_url=URL, simple_url=URL + "simple/", twine_env={})
ENTRY: FileEntry = {"name": "cuda_pathfinder-1.0.0-py3-none-any.whl", "distribution": "cuda-pathfinder",
                    "sha256": "0" * 64, "path": "dist/cuda_pathfinder-1.0.0-py3-none-any.whl"}  # type: ignore[typeddict-item]  # fmt: skip


class _Runs:
    """Stands in for one tool run: each call fails with the next output, or succeeds once they are spent."""

    def __init__(self, what: str, *outputs: str) -> None:
        self.what, self.outputs, self.calls = what, list(outputs), 0

    def __call__(self, *args: Any, **kwargs: Any) -> str:
        self.calls += 1
        if self.outputs:
            raise CommandError(self.what, 1, self.outputs.pop(0))
        return "Uploading cuda_pathfinder-1.0.0-py3-none-any.whl"


@pytest.fixture
def twine(monkeypatch: pytest.MonkeyPatch) -> Reporter:
    monkeypatch.setattr(uploads, "UPLOAD_BACKOFF", 0.0)
    monkeypatch.setattr(uploads, "_held", lambda *args: {})  # the index holds none of the files
    return Reporter(stream=io.StringIO())


def _said(reporter: Reporter) -> str:
    assert isinstance(reporter.stream, io.StringIO)
    return reporter.stream.getvalue()


def _upload(monkeypatch: pytest.MonkeyPatch, reporter: Reporter, *outputs: str) -> _Runs:
    runs = _Runs("twine upload of cuda_pathfinder-1.0.0-py3-none-any.whl to testpypi", *outputs)
    monkeypatch.setattr(uploads, "_twine", runs)
    upload(TARGET, ReleaseFolder(Path("unused")), [ENTRY], HttpClient(), reporter)
    return runs


def test_a_403_from_the_index_is_never_retried(monkeypatch: pytest.MonkeyPatch, twine: Reporter) -> None:
    with pytest.raises(CudaCiError) as raised:
        _upload(monkeypatch, twine, TWINE_403, TWINE_403)
    assert raised.value.problems[0] == (
        f"upload of {ENTRY['name']} to testpypi ({URL}) was refused: HTTPError: 403 Forbidden from {URL}; "
        "not retried (a refusal does not heal): check the token and its permission to upload these projects"
    )
    assert uploads._twine.calls == 1  # type: ignore[attr-defined]
    assert "retry" not in _said(twine), "nothing reported as retried"


def test_a_503_and_a_dropped_connection_are_retried_visibly(monkeypatch: pytest.MonkeyPatch, twine: Reporter) -> None:
    runs = _upload(monkeypatch, twine, TWINE_503, TWINE_DROPPED)
    assert runs.calls == 3
    said = _said(twine)
    assert f"upload of {ENTRY['name']} to testpypi: HTTPError: 503 Service Unavailable from {URL}; retry 1 of 3" in said
    assert "requests.exceptions.ConnectionError: ('Connection aborted.'" in said and "; retry 2 of 3" in said
    assert "testpypi: Package upload appears to have failed. Retry 5 of 5." in said, "twine's own retries shown"
    assert f"uploaded {ENTRY['name']} to testpypi" in said


def test_uploads_are_bounded(monkeypatch: pytest.MonkeyPatch, twine: Reporter) -> None:
    with pytest.raises(CudaCiError, match=r"\(http://127.0.0.1:8080/\) failed 4 times: HTTPError: 503"):
        _upload(monkeypatch, twine, *[TWINE_503] * 10)
    assert uploads._twine.calls == uploads.UPLOAD_ATTEMPTS  # type: ignore[attr-defined]


MANIFEST: Manifest = {"version": "1.0.0", "snapshot": False}  # type: ignore[typeddict-item]


def _install_back(monkeypatch: pytest.MonkeyPatch, *outputs: str) -> tuple[_Runs, str]:
    runs = _Runs("install of cuda-pathfinder==1.0.0 from testpypi", *outputs)
    monkeypatch.setattr(uploads, "_install_once", runs)
    reporter = Reporter(stream=io.StringIO())
    try:
        install_back(TARGET, MANIFEST, get_unit("cuda-pathfinder"), reporter, pre=False, delay=0.0, attempts=3)
    finally:
        said = _said(reporter)
    return runs, said


def test_install_back_waits_for_the_index_to_serve_the_release(monkeypatch: pytest.MonkeyPatch) -> None:
    runs, said = _install_back(monkeypatch, UV_NOT_YET, UV_503)
    assert runs.calls == 3
    assert "install of cuda-pathfinder==1.0.0 from testpypi: the index does not serve it yet; retry 1 of 2" in said
    assert "the index is out of reach; retry 2 of 2" in said
    assert "installed cuda-pathfinder==1.0.0 back from testpypi" in said


def test_install_back_is_bounded_and_never_retries_a_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(CudaCiError, match=r"from testpypi \(.*\): failed 3 times \(the index does not serve it yet\)"):
        _install_back(monkeypatch, *[UV_NOT_YET] * 3)
    with pytest.raises(CudaCiError, match="not retried") as raised:
        _install_back(monkeypatch, UV_403, UV_403)
    assert "403 Forbidden" in raised.value.problems[1]
    assert uploads._install_once.calls == 1  # type: ignore[attr-defined]
