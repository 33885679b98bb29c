"""The one plain-file check of a release folder, on paths a schema check would already refuse."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cuda_ci.infra.safepaths import FolderProblem, folder_file, listed_file, unlisted_entries


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / "a.whl").write_bytes(b"x")
    (tmp_path / "outside.txt").write_text("secret")
    return tmp_path


@pytest.mark.parametrize(
    "relative",
    ["../outside.txt", "dist/../outside.txt", "/etc/passwd", "dist/sub/a.whl", "docs/a.whl", "dist\\a.whl", "dist/."],
)
def test_paths_outside_dist_and_assets_are_refused(root: Path, relative: str) -> None:
    with pytest.raises(FolderProblem, match="not a file directly in dist/ or assets/"):
        listed_file(root, relative)


def test_links_missing_and_special_files_are_named(root: Path) -> None:
    assert listed_file(root, "dist/a.whl") == root / "dist" / "a.whl"
    (root / "a.whl").write_bytes(b"x")  # a flat folder of downloaded assets: beside the manifest
    assert listed_file(root, "dist/a.whl", flat=True) == root / "a.whl"
    (root / "dist" / "link.whl").symlink_to(root / "outside.txt")
    with pytest.raises(FolderProblem, match=re.escape("dist/link.whl is a symbolic link")):
        listed_file(root, "dist/link.whl")
    with pytest.raises(FolderProblem, match=re.escape("dist/gone.whl is listed in release-manifest.json but missing")):
        listed_file(root, "dist/gone.whl")
    (root / "dist" / "folder.whl").mkdir()
    with pytest.raises(FolderProblem, match=re.escape("dist/folder.whl is not a plain file")):
        listed_file(root, "dist/folder.whl")
    with pytest.raises(FolderProblem, match="is not a file name inside the release folder"):
        folder_file(root, "../outside.txt")
    assert unlisted_entries(root, {"dist/a.whl"}) == [
        "dist/folder.whl (a folder) is not in release-manifest.json: remove it or rebuild the release folder",
        "dist/link.whl is not in release-manifest.json: remove it or rebuild the release folder",
    ]
