"""PyPI's 14-day rule, known before anything is uploaded: a resume that would need new files on a
release past the window is refused up front; within it, only the missing files go up."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from cuda_ci.cli.app import main
from tests.fakes.github import FakeGitHub
from tests.fakes.pypi_json import FakePyPI

pytestmark = pytest.mark.e2e


@pytest.fixture
def indexes(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, FakePyPI]]:
    """TestPyPI and PyPI as warehouse answers (JSON API, uploads with its refusals), on loopback."""
    started = {name: FakePyPI().start() for name in ("testpypi", "pypi")}
    try:
        for name, index in started.items():
            for key, value in index.environ(name).items():
                monkeypatch.setenv(key, value)
        yield started
    finally:
        for index in started.values():
            index.stop()


def _publish(folder: Path, repo: Path, target: str) -> int:
    return main(["publish", "--release-dir", str(folder), "--repo", str(repo), "--target", target])


def _copy(folder: Path, tmp_path: Path) -> tuple[Path, Path, Path]:
    """A copy of the release folder (publish writes its log there), its sdist and its wheel."""
    copy = Path(shutil.copytree(folder, tmp_path / "release"))
    return copy, next((copy / "dist").glob("*.tar.gz")), next((copy / "dist").glob("*.whl"))


def test_a_resume_past_the_window_is_refused_before_anything_is_uploaded(
    pathfinder_release: tuple[Path, Path],
    tmp_path: Path,
    github_env: FakeGitHub,
    indexes: dict[str, FakePyPI],
    capsys: pytest.CaptureFixture[str],
) -> None:
    repo, built = pathfinder_release
    folder, sdist, wheel = _copy(built, tmp_path)
    indexes["pypi"].hold(sdist, days_ago=20)  # the first publish stopped after the sdist, 20 days ago

    assert _publish(folder, repo, "all") == 1
    err = capsys.readouterr().err
    assert "error: pypi: cuda-pathfinder 1.0.0 was first uploaded 20 days ago (" in err
    assert "pypi refuses new files on a release older than 14 days (PyPI's rule since July 2026" in err
    assert f"it lacks 1 file(s) of this release: {wheel.name}." in err
    assert "Nothing can add them now: cut cuda-pathfinder-v1.0.0.post1 (a .postN release)" in err
    assert "error: publish refused before any upload: nothing was uploaded" in err
    assert "testpypi:" not in err, "TestPyPI holds nothing of it yet: its window has not opened"
    assert indexes["pypi"].attempts == [] and indexes["testpypi"].attempts == [], "nothing was uploaded"
    assert github_env.writes == [], "not even the GitHub draft: the refusal comes before the first target"


def test_within_the_window_only_the_missing_file_is_uploaded_never_one_already_there(
    pathfinder_release: tuple[Path, Path],
    tmp_path: Path,
    github_env: FakeGitHub,
    indexes: dict[str, FakePyPI],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The sdist the index holds is skipped (its sha256 checked): PyPI refuses even an identical re-upload."""
    repo, built = pathfinder_release
    folder, sdist, wheel = _copy(built, tmp_path)
    indexes["pypi"].hold(sdist, days_ago=2)

    code = _publish(folder, repo, "pypi")
    assert code == 0, capsys.readouterr().err
    assert indexes["pypi"].attempts == [wheel.name], "the sdist already there is never sent again"
    assert set(indexes["pypi"].release_files("cuda-pathfinder", "1.0.0")) == {sdist.name, wheel.name}
    assert "pypi: uploaded 1 file(s), installed back" in capsys.readouterr().out


def test_with_the_window_set_to_0_the_index_refuses_in_its_own_words(
    pathfinder_release: tuple[Path, Path],
    tmp_path: Path,
    github_env: FakeGitHub,
    indexes: dict[str, FakePyPI],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``CUDA_CI_UPLOAD_WINDOW_DAYS=0`` applies no window: the upload is tried, and PyPI refuses it."""
    repo, built = pathfinder_release
    folder, sdist, wheel = _copy(built, tmp_path)
    indexes["pypi"].hold(sdist, days_ago=20)
    monkeypatch.setenv("CUDA_CI_UPLOAD_WINDOW_DAYS", "0")

    assert _publish(folder, repo, "pypi") == 1
    err = capsys.readouterr().err
    assert indexes["pypi"].attempts == [wheel.name]
    assert "HTTPError: 400" in err and "not retried (a refusal does not heal)" in err, err


def test_the_window_setting_is_a_whole_number_of_days(
    pathfinder_release: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CUDA_CI_UPLOAD_WINDOW_DAYS", "two weeks")
    assert main(["publish", "--release-dir", str(pathfinder_release[1]), "--target", "pypi"]) == 2
    assert "error: CUDA_CI_UPLOAD_WINDOW_DAYS='two weeks': give a whole number of days" in capsys.readouterr().err


def test_preflight_of_a_release_already_past_its_window_says_how_to_finish(
    pathfinder_release: tuple[Path, Path],
    github_env: FakeGitHub,
    indexes: dict[str, FakePyPI],
    capsys: pytest.CaptureFixture[str],
) -> None:
    repo, built = pathfinder_release
    indexes["pypi"].hold(next((built / "dist").glob("*.tar.gz")), days_ago=15)
    assert main(["preflight", "--tag", "cuda-pathfinder-v1.0.0", "--repo", str(repo), "--json"]) == 1
    err = capsys.readouterr().err
    assert (
        "error: upload-window: pypi already holds 1 file(s) of cuda-pathfinder 1.0.0, first upload 15 days ago: "
        "past the 14-day window, no new file is accepted" in err
    )
    assert "finish with `cuda-ci publish --release-dir <its release folder>`" in err
    assert "(see `cuda-ci status --tag cuda-pathfinder-v1.0.0`); otherwise cut cuda-pathfinder-v1.0.0.post1" in err
    assert "upload-window: testpypi" not in err, "TestPyPI holds none of its files: nothing to refuse there"
