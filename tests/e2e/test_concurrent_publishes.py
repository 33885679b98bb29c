"""Publishing to an index when another run publishes the same folder, without GitHub settings, or
from a folder publish cannot write to: each is done, or refused before the first upload."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cuda_ci.cli.app import main
from cuda_ci.infra.index import EmbeddedIndex
from cuda_ci.publish import targets as publish
from tests.e2e.conftest import index_environ
from tests.fakes.github import FakeGitHub
from tests.helpers import folder_from, git, tagged_clone

pytestmark = pytest.mark.e2e
TAG = "cuda-pathfinder-v1.0.0"


@pytest.fixture(scope="module")
def released(template_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A release folder of cuda-pathfinder 1.0.0, validated and documented (CI gate verified), and its repository."""
    root = tmp_path_factory.mktemp("concurrent")
    repo = tagged_clone(template_repo, root, TAG)
    github = FakeGitHub().start()
    try:
        github.add_run(git(repo, "rev-parse", "HEAD"))
        with pytest.MonkeyPatch.context() as patch:
            for key, value in github.environ().items():
                patch.setenv(key, value)
            patch.delenv("GITHUB_ACTIONS", raising=False)
            patch.delenv("GH_TOKEN", raising=False)
            return folder_from(repo, root, "release", "--tag", TAG, "--no-publish"), repo
    finally:
        github.stop()


@pytest.fixture
def indexes_only(monkeypatch: pytest.MonkeyPatch, index_pair: dict[str, EmbeddedIndex]) -> dict[str, EmbeddedIndex]:
    """The index settings, and no GitHub setting at all."""
    for name in ("GITHUB_API_URL", "GITHUB_REPOSITORY", "GITHUB_TOKEN", "GH_TOKEN", "GITHUB_ACTIONS"):
        monkeypatch.delenv(name, raising=False)
    for key, value in index_environ(index_pair).items():
        monkeypatch.setenv(key, value)
    return index_pair


def _copy(released: tuple[Path, Path], into: Path) -> Path:
    out = into / "release"
    shutil.copytree(released[0], out)
    return out


def _publish_testpypi(folder: Path, repo: Path) -> int:
    return main(["publish", "--release-dir", str(folder), "--target", "testpypi", "--repo", str(repo)])


def test_testpypi_needs_no_github_settings(
    released: tuple[Path, Path], tmp_path: Path, indexes_only: dict[str, EmbeddedIndex]
) -> None:
    folder = _copy(released, tmp_path)
    assert _publish_testpypi(folder, released[1]) == 0
    assert sorted(p.name for p in indexes_only["testpypi"].root.iterdir()) == sorted(os.listdir(folder / "dist"))


def test_files_another_run_uploaded_meanwhile_with_the_same_sha256_are_done(
    released: tuple[Path, Path],
    tmp_path: Path,
    indexes_only: dict[str, EmbeddedIndex],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = _copy(released, tmp_path)
    index = indexes_only["testpypi"]
    listed = publish.files_on_index

    def then_the_other_run_uploads(*args: Any, **kwargs: Any) -> dict[str, str | None]:
        held = listed(*args, **kwargs)  # what the index held when this run looked: nothing
        for dist in (folder / "dist").iterdir():  # the other run's upload lands right after
            shutil.copy2(dist, index.root / dist.name)
        return held

    monkeypatch.setattr(publish, "files_on_index", then_the_other_run_uploads)
    assert _publish_testpypi(folder, released[1]) == 0, capsys.readouterr().err
    err = capsys.readouterr().err
    assert "already there with the same sha256" in err
    assert "check the token" not in err
    log = json.loads((folder / "publish-log.json").read_text())["entries"]
    skipped = [e["file"] for e in log if e["detail"] == "put there meanwhile with the same sha256 (another run)"]
    assert sorted(skipped) == sorted(os.listdir(folder / "dist"))
    assert "verified-install" in [e["action"] for e in log]


@pytest.fixture
def read_only(released: tuple[Path, Path], tmp_path: Path) -> Iterator[Path]:
    """A copy of the release folder that nobody may write to: a read-only mount where this runs as
    root (root writes through file modes), else a folder without write permission."""
    if os.geteuid() != 0:
        folder = _copy(released, tmp_path)
        folder.chmod(0o555)
        try:
            yield folder
        finally:
            folder.chmod(0o755)
        return
    mount = tmp_path / "ro"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(mount)], capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        folder = _copy(released, mount)
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def test_a_read_only_folder_is_refused_before_any_upload(
    read_only: Path,
    released: tuple[Path, Path],
    indexes_only: dict[str, EmbeddedIndex],
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert _publish_testpypi(read_only, released[1]) == 1
    err = capsys.readouterr().err
    assert f"error: the release folder {read_only} is not writable (" in err
    assert "make the folder writable (or copy it somewhere writable) and run again; nothing was uploaded" in err
    assert "internal error" not in err
    assert list(indexes_only["testpypi"].root.iterdir()) == [], "nothing was uploaded"
