"""``cuda-ci status``: where a release stands (tag, GitHub release, TestPyPI, PyPI), read only, against
the GitHub stand-in and real pypiservers, for the releases that stop halfway."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cuda_ci.cli.app import main
from cuda_ci.infra.index import EmbeddedIndex
from cuda_ci.infra.manifest import MANIFEST_NAME, SUMS_NAME
from tests.e2e.conftest import PATHFINDER_TAG, index_environ
from tests.fakes.github import FakeGitHub
from tests.fakes.pypi_json import FakePyPI
from tests.helpers import REPO_ROOT, result_document

pytestmark = pytest.mark.e2e
SCHEMA = REPO_ROOT / "dagger" / "src" / "cuda_ci" / "schemas" / "status.schema.json"
FOLDER = f".release/{PATHFINDER_TAG}"  # the release folder the commands name by default


@pytest.fixture
def indexes(monkeypatch: pytest.MonkeyPatch, index_pair: dict[str, EmbeddedIndex]) -> dict[str, EmbeddedIndex]:
    for key, value in index_environ(index_pair).items():
        monkeypatch.setenv(key, value)
    return index_pair


def _assets(folder: Path) -> dict[str, Path]:
    """Every asset publish puts on the GitHub release, by name."""
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    files = {f["name"]: folder / f["path"] for f in manifest["files"]}
    return {**files, SUMS_NAME: folder / SUMS_NAME, MANIFEST_NAME: folder / MANIFEST_NAME}


def _github_release(github: FakeGitHub, folder: Path, *, draft: bool, skip: str = "") -> dict[str, Any]:
    release = github.add_release(PATHFINDER_TAG, draft=draft)
    for name, path in _assets(folder).items():
        if name != skip:
            github.add_asset(release, name, path.read_bytes())
    return release


def _put(index: EmbeddedIndex, folder: Path) -> None:
    """The release's dists on a pypiserver (it serves its folder)."""
    for path in (folder / "dist").iterdir():
        shutil.copy2(path, index.root / path.name)


def _status(repo: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any], str]:
    """``cuda-ci status --json``: exit code, the report (checked against its schema), stderr."""
    code = main(["status", "--repo", str(repo), "--json", *args])
    captured = capsys.readouterr()
    report: dict[str, Any] = result_document(captured.out, "status")
    assert report["complete"] is (code == 0)
    return code, report, captured.err


def _places(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    [release] = report["releases"]
    return {p["place"]: p for p in release["places"]}


def test_a_release_whose_pypi_upload_never_ran(
    pathfinder_release: tuple[Path, Path],
    github_env: FakeGitHub,
    indexes: dict[str, EmbeddedIndex],
    capsys: pytest.CaptureFixture[str],
) -> None:
    repo, folder = pathfinder_release
    _github_release(github_env, folder, draft=True)
    _put(indexes["testpypi"], folder)
    held = sorted(p.name for p in indexes["testpypi"].root.iterdir())

    code, report, err = _status(repo, capsys, "--tag", PATHFINDER_TAG)
    assert code == 1 and f"error: not finished: {PATHFINDER_TAG}" in err
    [release] = report["releases"]
    assert release["manifest"] == "github-release", "the manifest attached to the GitHub release"
    places = _places(report)
    assert places["tag"]["state"] == "complete" and "reachable from main" in places["tag"]["detail"]
    assert places["testpypi"]["state"] == "complete"
    pypi = places["pypi"]
    assert pypi["state"] == "missing" and pypi["blocked"] is None
    assert pypi["next_command"] == f"cuda-ci publish --release-dir {FOLDER} --target pypi"
    assert {f["state"] for f in pypi["files"]} == {"missing"} and len(pypi["files"]) == 2
    github = places["github"]
    assert github["state"] == "incomplete" and "draft" in github["detail"]
    assert github["next_command"] == f"cuda-ci publish --release-dir {FOLDER} --target all", "PyPI first"

    # The same, in words: one line per place, the command under the unfinished ones.
    assert main(["status", "--repo", str(repo), "--tag", PATHFINDER_TAG]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{PATHFINDER_TAG}: cuda-pathfinder 1.0.0 (the GitHub release's {MANIFEST_NAME})"
    assert [line.split()[0] for line in lines[1:] if not line.lstrip().startswith(("next:", "blocked:"))] == [
        "tag",
        "github",
        "testpypi",
        "pypi",
    ]
    words = [line.split() for line in lines]
    assert ["next:", *f"cuda-ci publish --release-dir {FOLDER} --target pypi".split()] in words
    assert github_env.writes == [] and sorted(p.name for p in indexes["testpypi"].root.iterdir()) == held, "read only"
    assert not list(indexes["pypi"].root.iterdir())


def test_a_draft_never_published(
    pathfinder_release: tuple[Path, Path],
    github_env: FakeGitHub,
    indexes: dict[str, EmbeddedIndex],
    capsys: pytest.CaptureFixture[str],
) -> None:
    repo, folder = pathfinder_release
    release = _github_release(github_env, folder, draft=True)
    for index in indexes.values():
        _put(index, folder)

    code, report, _ = _status(repo, capsys, "--component", "cuda-pathfinder", "--release-dir", str(folder))
    assert code == 1
    assert report["releases"][0]["manifest"] == "release-dir"
    places = _places(report)
    assert [p for p, v in places.items() if v["state"] != "complete"] == ["github"]
    assert places["github"]["detail"].endswith("not published yet")
    assert places["github"]["next_command"] == f"cuda-ci publish --release-dir {folder} --target finalize"

    release["draft"] = False  # published by hand, say
    code, report, err = _status(repo, capsys)  # every unit's newest tag: here only cuda-pathfinder has one
    assert code == 0, err
    assert [r["tag"] for r in report["releases"]] == [PATHFINDER_TAG]
    assert {p["state"] for p in report["releases"][0]["places"]} == {"complete"}


def test_an_asset_that_differs(
    pathfinder_release: tuple[Path, Path],
    github_env: FakeGitHub,
    indexes: dict[str, EmbeddedIndex],
    capsys: pytest.CaptureFixture[str],
) -> None:
    repo, folder = pathfinder_release
    wheel = next((folder / "dist").glob("*.whl")).name
    release = _github_release(github_env, folder, draft=True, skip=wheel)
    github_env.add_asset(release, wheel, b"not the wheel this release built")
    for index in indexes.values():
        _put(index, folder)

    code, report, _ = _status(repo, capsys, "--tag", PATHFINDER_TAG)
    github = _places(report)["github"]
    assert code == 1 and github["state"] == "incomplete", "a draft's asset is replaced by publish"
    assert f"different: {wheel}" in github["detail"]
    assert [f["name"] for f in github["files"] if f["state"] == "different"] == [wheel]
    assert github["next_command"] == f"cuda-ci publish --release-dir {FOLDER} --target github"

    release["draft"] = False
    code, report, _ = _status(repo, capsys, "--tag", PATHFINDER_TAG)
    github = _places(report)["github"]
    assert code == 1 and github["state"] == "blocked" and github["next_command"] is None
    assert github["blocked"] == "assets of a published release are never replaced: cut a .postN release"


@pytest.fixture
def warehouse(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakePyPI]:
    """PyPI as warehouse answers (with its JSON API's upload times); TestPyPI out of the way."""
    index = FakePyPI().start()
    try:
        for name in ("testpypi", "pypi"):
            for key, value in index.environ(name).items():
                monkeypatch.setenv(key, value)
        yield index
    finally:
        index.stop()


def test_a_release_past_the_window(
    pathfinder_release: tuple[Path, Path],
    github_env: FakeGitHub,
    warehouse: FakePyPI,
    capsys: pytest.CaptureFixture[str],
) -> None:
    repo, folder = pathfinder_release
    _github_release(github_env, folder, draft=True)
    wheel = next((folder / "dist").glob("*.whl"))
    warehouse.hold(next((folder / "dist").glob("*.tar.gz")), days_ago=20)

    code, report, _ = _status(repo, capsys, "--tag", PATHFINDER_TAG, "--release-dir", str(folder))
    assert code == 1
    for name in ("testpypi", "pypi"):
        place = _places(report)[name]
        assert place["state"] == "blocked" and place["next_command"] is None
        assert place["blocked"].startswith(f"{name}: cuda-pathfinder 1.0.0 was first uploaded 20 days ago")
        assert f"it lacks 1 file(s) of this release: {wheel.name}" in place["blocked"]
        assert place["blocked"].endswith(
            "cut cuda-pathfinder-v1.0.0.post1 (a .postN release) from the same commit and release that"
        )
    assert warehouse.attempts == [], "read only"
