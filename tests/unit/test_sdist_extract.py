"""Unpacking an sdist without tarfile's extraction filters (absent before Python 3.11.4)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from cuda_ci.build.sdists import extract_sdist
from cuda_ci.infra.errors import CudaCiError


def _sdist(path: Path, members: list[tarfile.TarInfo], data: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for member in members:
            payload = data.get(member.name)
            if payload is not None:
                member.size = len(payload)
            archive.addfile(member, io.BytesIO(payload) if payload is not None else None)
    return path


def _member(name: str, kind: bytes = tarfile.REGTYPE, mode: int = 0o644, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.linkname = kind, mode, link
    return info


def test_regular_members_unpack_with_their_modes(tmp_path: Path) -> None:
    members = [
        _member("pkg-1.0", tarfile.DIRTYPE, 0o755),
        _member("pkg-1.0/setup.py"),
        _member("pkg-1.0/run", mode=0o755),
    ]
    sdist = _sdist(
        tmp_path / "pkg-1.0.tar.gz", members, {"pkg-1.0/setup.py": b"print()\n", "pkg-1.0/run": b"#!/bin/sh\n"}
    )
    top = extract_sdist(sdist, tmp_path / "out")
    assert top == tmp_path / "out" / "pkg-1.0"
    assert (top / "setup.py").read_bytes() == b"print()\n"
    assert (top / "run").stat().st_mode & 0o777 == 0o755 and (top / "setup.py").stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize(
    "member",
    [
        _member("pkg-1.0/link", tarfile.SYMTYPE, link="/etc/passwd"),
        _member("pkg-1.0/hard", tarfile.LNKTYPE, link="pkg-1.0/setup.py"),
        _member("pkg-1.0/dev", tarfile.CHRTYPE),
        _member("pkg-1.0/../escape"),
        _member("/abs/file"),
    ],
    ids=["symlink", "hardlink", "device", "dotdot", "absolute"],
)
def test_links_devices_and_escaping_members_are_refused(tmp_path: Path, member: tarfile.TarInfo) -> None:
    data = {member.name: b"x"} if member.isfile() else {}
    sdist = _sdist(tmp_path / "pkg-1.0.tar.gz", [_member("pkg-1.0", tarfile.DIRTYPE, 0o755), member], data)
    with pytest.raises(
        CudaCiError, match=r"pkg-1.0.tar.gz holds members that are not plain files or folders"
    ) as refused:
        extract_sdist(sdist, tmp_path / "out")
    assert member.name in str(refused.value)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*link*"))
