"""What an unlucky machine does to a run (a full disk, a TMPDIR with a space, a bare clone), said plainly."""

from __future__ import annotations

import os
import subprocess
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from cuda_ci.cli.app import main
from tests.helpers import clone

pytestmark = pytest.mark.e2e
TAG = "cuda-pathfinder-v1.0.0"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real tmpfs of 8 KiB: room for one of the release's files, not for all of them."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def test_a_full_disk_names_the_stage_and_the_file_and_leaves_nothing_partial(
    tagged_repo: Path, small_disk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["build", "--tag", TAG, "--repo", str(tagged_repo), "--out", str(small_disk)]) == 1
    err = capsys.readouterr().err
    assert "internal error" not in err and "Traceback" not in err
    assert f"error: no space left on device in stage build writing {small_disk}/" in err, err
    assert f"free space on the filesystem holding {small_disk}" in err
    for path in small_disk.rglob("*"):
        if path.is_file():
            assert not path.name.startswith(".") and path.stat().st_size > 0, f"a partial file: {path}"
            if path.name.endswith(".whl"):
                assert zipfile.ZipFile(path).testzip() is None
            elif path.name.endswith(".tar.gz"):
                with tarfile.open(path) as archive:
                    archive.getmembers()


def test_a_tmpdir_with_a_space_builds_the_c_extension(
    tagged_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spaced = tmp_path / "temp with space"
    spaced.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spaced))
    monkeypatch.setenv("TMPDIR", str(spaced))
    out = tmp_path / "release"
    assert main(["build", "--tag", "v13.0.0", "--repo", str(tagged_repo), "--out", str(out)]) == 0
    assert any(p.name.startswith("cuda_bindings-13.0.0-cp") for p in (out / "dist").iterdir())
    assert not any(p.name.startswith("cuda-ci-run-") for p in spaced.iterdir()), "the run cleaned up after itself"


def test_a_bare_repository_is_named_as_such(
    template_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bare = clone(template_repo, tmp_path / "bare.git", "--bare")
    assert main(["build", "--snapshot", "--component", "cuda-core", "--repo", str(bare)]) == 2
    err = capsys.readouterr().err
    assert f"--repo {str(bare)!r} is a bare repository: cuda-ci builds from a checkout with a working tree" in err
    assert os.listdir(bare), "nothing was touched"
