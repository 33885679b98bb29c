"""Static facts about distribution files: names, versions, METADATA, RECORD, safe members."""

from __future__ import annotations

import base64
import gzip
import hashlib
import stat
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path, PurePosixPath
from typing import IO, cast

from packaging.utils import InvalidSdistFilename, InvalidWheelFilename, parse_sdist_filename, parse_wheel_filename
from packaging.version import Version


@dataclass(frozen=True)
class DistFile:
    path: Path
    kind: str  # "wheel" | "sdist"
    name: str  # canonical distribution name
    version: Version


class DistProblem(Exception):
    """A file that cannot be what it claims; the message names it."""


def identify(path: Path) -> DistFile:
    """Name and version from the file name, parsed with ``packaging``."""
    try:
        if path.name.endswith(".whl"):
            name, version, _, _ = parse_wheel_filename(path.name)
            return DistFile(path, "wheel", str(name), version)
        name, version = parse_sdist_filename(path.name)
        return DistFile(path, "sdist", str(name), version)
    except (InvalidWheelFilename, InvalidSdistFilename) as error:
        raise DistProblem(f"{path.name}: not a valid wheel or sdist file name ({error})") from None


# Declared limits for one wheel or sdist (README, "The release folder is untrusted input"): larger
# archives are refused before any member is read. The ratio applies to members of 1 MiB and more.
MAX_MEMBER_BYTES = 256 * 1024 * 1024
MAX_TOTAL_BYTES = 512 * 1024 * 1024
MAX_RATIO = 200
RATIO_FLOOR = 1024 * 1024
_MIB = 1024 * 1024


def archive_problems(dist: DistFile) -> list[str]:
    """Links, devices and other special members, and sizes over the declared limits, of a wheel or
    an sdist; each member read (bounded by its declared size) to prove its header tells the truth."""
    if dist.path.stat().st_size == 0:
        return []  # reported as empty by :func:`metadata`
    try:
        return _wheel_problems(dist.path) if dist.kind == "wheel" else _sdist_problems(dist.path)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, zlib.error) as error:
        return [f"{dist.path.name} is not a readable archive: {error}"]


def _member_kind(mode: int) -> str | None:
    """``"a symbolic link"`` / ``"a special file"`` for what an archive must never hold, else None."""
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        return "a special file (device, pipe or socket)"
    return None


def _size_problems(name: str, member: str, size: int, compressed: int | None) -> list[str]:
    if size > MAX_MEMBER_BYTES:
        return [f"{name}: {member} inflates to {size // _MIB} MiB, over the {MAX_MEMBER_BYTES // _MIB} MiB limit"]
    if compressed is not None and size >= RATIO_FLOOR and size > MAX_RATIO * max(compressed, 1):
        return [f"{name}: {member} inflates {size // max(compressed, 1)} times, over the limit of {MAX_RATIO}"]
    return []


def _total_problems(name: str, total: int) -> list[str]:
    if total > MAX_TOTAL_BYTES:
        return [f"{name} inflates to {total // _MIB} MiB, over the {MAX_TOTAL_BYTES // _MIB} MiB limit"]
    return []


def _wheel_problems(path: Path) -> list[str]:
    problems: list[str] = []
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        for info in infos:
            kind = _member_kind(info.external_attr >> 16) if info.create_system == 3 else None
            if kind:
                problems.append(f"{path.name}: {info.filename} is {kind}; a wheel holds only files and folders")
            problems += _size_problems(path.name, info.filename, info.file_size, info.compress_size)
        total = sum(i.file_size for i in infos)
        if total > MAX_TOTAL_BYTES:
            problems.append(
                f"{path.name} inflates to {total // _MIB} MiB, over the {MAX_TOTAL_BYTES // _MIB} MiB limit"
            )
        if problems:
            return problems
        for info in infos:  # zipfile reads at most the declared size, then checks the CRC
            try:
                with archive.open(info) as member:
                    while member.read(1 << 20):
                        pass
            except (zipfile.BadZipFile, EOFError, zlib.error) as error:
                problems.append(f"{path.name}: {info.filename} does not match its header (size or CRC): {error}")
    return problems


class _Capped:
    """A stream that refuses to yield more than ``limit`` bytes (a decompression bomb stops here)."""

    def __init__(self, raw: gzip.GzipFile, limit: int, name: str) -> None:
        self.raw, self.limit, self.name, self.count = raw, limit, name, 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(self.limit + 1 - self.count if size < 0 else size)
        self.count += len(data)
        if self.count > self.limit:
            raise DistProblem(f"{self.name} inflates to more than {self.limit // _MIB} MiB, over the limit")
        return data


def _capped(raw: gzip.GzipFile, limit: int, name: str) -> IO[bytes]:
    return cast(IO[bytes], _Capped(raw, limit, name))


def _sdist_problems(path: Path) -> list[str]:
    problems: list[str] = []
    total = 0
    limit = MAX_TOTAL_BYTES + 64 * _MIB  # headers and padding on top of the members' data
    try:
        with (
            gzip.open(path) as raw,
            tarfile.open(fileobj=cast(IO[bytes], _Capped(raw, limit, path.name)), mode="r|") as archive,
        ):
            for member in archive:
                kind = "a link" if member.issym() or member.islnk() else None
                if kind is None and not (member.isfile() or member.isdir()):
                    kind = "a special file (device, pipe or socket)"
                if kind:
                    problems.append(f"{path.name}: {member.name} is {kind}; an sdist holds only files and folders")
                problems += _size_problems(path.name, member.name, member.size, None)
                total += member.size
    except DistProblem as error:
        return [str(error)]
    if total > MAX_TOTAL_BYTES:
        problems += _total_problems(path.name, total)
    elif total >= RATIO_FLOOR and total > MAX_RATIO * path.stat().st_size:
        problems.append(f"{path.name} inflates {total // path.stat().st_size} times, over the limit of {MAX_RATIO}")
    return problems


def _unsafe(member: str) -> bool:
    pure = PurePosixPath(member)
    return member.startswith(("/", "\\")) or ".." in pure.parts or (len(member) > 1 and member[1] == ":")


def metadata(dist: DistFile) -> tuple[str, str]:
    """``(Name, Version)`` from the wheel's METADATA or the sdist's PKG-INFO."""
    if dist.path.stat().st_size == 0:
        raise DistProblem(f"{dist.path.name} is empty")
    try:
        if dist.kind == "wheel":
            with zipfile.ZipFile(dist.path) as archive:
                bad = [m for m in archive.namelist() if _unsafe(m)]
                if bad:
                    raise DistProblem(f"{dist.path.name} has a member outside the install folder: {bad[0]!r}")
                names = [n for n in archive.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
                if len(names) != 1:
                    raise DistProblem(f"{dist.path.name} has {len(names)} .dist-info/METADATA files, not 1")
                text = archive.read(names[0]).decode("utf-8")
        else:
            with tarfile.open(dist.path, "r:gz") as archive:
                members = archive.getnames()
                bad = [m for m in members if _unsafe(m)]
                if bad:
                    raise DistProblem(f"{dist.path.name} has a member outside its folder: {bad[0]!r}")
                infos = [m for m in members if m.count("/") == 1 and m.endswith("/PKG-INFO")]
                if len(infos) != 1:
                    raise DistProblem(f"{dist.path.name} has {len(infos)} top-level PKG-INFO files, not 1")
                handle = archive.extractfile(infos[0])
                text = handle.read().decode("utf-8") if handle else ""
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as error:
        raise DistProblem(f"{dist.path.name} is not a readable archive: {error}") from None
    headers = HeaderParser().parsestr(text)
    return str(headers.get("Name", "")), str(headers.get("Version", ""))


def record_problems(wheel: Path) -> list[str]:
    """Differences between a wheel's RECORD and its members (hashes, sizes, unlisted files)."""
    problems: list[str] = []
    with zipfile.ZipFile(wheel) as archive:
        records = [n for n in archive.namelist() if n.count("/") == 1 and n.endswith(".dist-info/RECORD")]
        if len(records) != 1:
            return [f"{wheel.name}: {len(records)} RECORD files, not 1"]
        listed: dict[str, tuple[str, str]] = {}
        for line in archive.read(records[0]).decode("utf-8").splitlines():
            if line.strip():
                path, digest, size = line.rsplit(",", 2)
                listed[path.strip('"')] = (digest, size)
        members = {n for n in archive.namelist() if not n.endswith("/")}
        for missing in sorted(members - set(listed)):
            problems.append(f"{wheel.name}: {missing} is not listed in RECORD")
        for path, (digest, size) in sorted(listed.items()):
            if path not in members:
                problems.append(f"{wheel.name}: RECORD lists {path}, which the wheel lacks")
            elif path != records[0]:
                data = archive.read(path)
                actual = "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
                if digest != actual or size != str(len(data)):
                    problems.append(f"{wheel.name}: {path} does not match its RECORD hash or size")
    return problems
