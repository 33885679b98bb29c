"""Static facts about distribution files: names, versions, METADATA, RECORD, safe members."""

from __future__ import annotations

import base64
import hashlib
import tarfile
import zipfile
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path, PurePosixPath

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
