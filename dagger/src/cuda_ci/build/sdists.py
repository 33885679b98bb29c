"""Source distributions: unpacked safely, repacked deterministically."""

from __future__ import annotations

import gzip
import io
import shutil
import tarfile
from pathlib import Path, PurePosixPath

from cuda_ci.infra.errors import CudaCiError
from cuda_ci.infra.manifest import write_atomic


def extract_sdist(sdist: Path, dest: Path) -> Path:
    """Unpack an sdist, regular files and folders only, nothing outside ``dest``; its one top folder.

    Checked here rather than with ``extractall(filter="data")``: the filter arrived in Python
    3.11.4, and the distributions' 3.11 (Debian bookworm's 3.11.2) lacks it.
    """
    with tarfile.open(sdist, "r:gz") as archive:
        members = archive.getmembers()
        refused = [m.name for m in members if not (m.isfile() or m.isdir()) or not _inside(m.name)]
        if refused:
            raise CudaCiError(
                f"{sdist.name} holds members that are not plain files or folders inside it: "
                + ", ".join(refused[:5])
                + ": an sdist holds only regular files; rebuild it"
            )
        for member in members:
            target = dest / member.name
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            source = archive.extractfile(member)
            assert source is not None  # a regular file always has data
            with source, target.open("wb") as out:
                shutil.copyfileobj(source, out)
            target.chmod(0o755 if member.mode & 0o100 else 0o644)
    tops = [p for p in dest.iterdir() if p.is_dir()]
    if len(tops) != 1:
        raise CudaCiError(f"{sdist.name} holds {len(tops)} top-level folders, expected exactly one")
    return tops[0]


def _inside(name: str) -> bool:
    path = PurePosixPath(name)
    return bool(path.parts) and not path.is_absolute() and ".." not in path.parts


def normalize_sdist(path: Path, epoch: int) -> None:
    """Sorted members, times clamped to ``epoch``, no owner names, a gzip header without a date."""
    with tarfile.open(path, "r:gz") as source:
        members = sorted(source.getmembers(), key=lambda m: m.name)
        contents = {m.name: source.extractfile(m).read() if m.isfile() else None for m in members}  # type: ignore[union-attr]
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as target,
    ):
        for member in members:
            member.mtime = min(int(member.mtime), epoch)
            member.uid = member.gid = 0
            member.pax_headers = {}
            member.uname = member.gname = ""
            member.mode = 0o755 if member.isdir() or member.mode & 0o111 else 0o644
            data = contents[member.name]
            target.addfile(member, io.BytesIO(data) if data is not None else None)
    write_atomic(path, buffer.getvalue())
