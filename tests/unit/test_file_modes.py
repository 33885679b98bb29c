"""Files a release folder publishes are written as any tool writes a file: 0666 less the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from cuda_ci.infra.manifest import write_atomic, write_json_atomic


@pytest.fixture
def umask() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.skipif(os.name == "nt", reason="POSIX modes")
def test_written_files_are_readable_by_all_under_a_usual_umask(tmp_path: Path, umask: None) -> None:
    write_atomic(tmp_path / "pkg-1.0.0.tar.gz", b"sdist bytes")
    write_json_atomic(tmp_path / "release-manifest.json", {"schema": 1})
    for name in ("pkg-1.0.0.tar.gz", "release-manifest.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name
    os.umask(0o077)
    write_atomic(tmp_path / "private", b"x")
    assert stat.S_IMODE((tmp_path / "private").stat().st_mode) == 0o600, "a stricter umask is respected"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pkg-1.0.0.tar.gz", "private", "release-manifest.json"]
