"""The record of the sibling wheels (or sdists) built at one commit into a folder: their names,
sizes and sha256, written when they are built and checked whenever they are used again.

``siblings/`` lies in the release folder, which travels between jobs: a wheel altered there (a
planted ``Requires-Dist``) would be installed, and its requirements run, by a later stage. So only
the files the record lists are ever used, each a plain file (no link) of the recorded size and
hash; anything else in the folder is never read.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cuda_ci.infra.errors import CudaCiError
from cuda_ci.infra.manifest import sha256_of, write_json_atomic

MAX_SIBLING_BYTES = 512 * 1024 * 1024
_MAX_RECORD_BYTES = 1024 * 1024


def record_path(dest: Path, commit: str) -> Path:
    return dest / f".commit-{commit}"


def write_record(dest: Path, commit: str, files: Sequence[Path]) -> None:
    """Record ``files`` (already in ``dest``) as the siblings built at ``commit``."""
    listed = {f.name: {"size": f.stat().st_size, "sha256": sha256_of(f)} for f in files}
    write_json_atomic(record_path(dest, commit), {"schema": 1, "commit": commit, "files": listed})


def _plain(path: Path) -> os.stat_result | None:
    try:
        status = os.lstat(path)
    except FileNotFoundError:
        return None
    return status if stat.S_ISREG(status.st_mode) else None


def _read(record: Path, commit: str) -> dict[str, Any]:
    status = _plain(record)
    if status is None or status.st_size > _MAX_RECORD_BYTES:
        raise CudaCiError(f"{record} is not a plain file of at most {_MAX_RECORD_BYTES} bytes")
    try:
        data = json.loads(record.read_bytes())
    except ValueError as error:
        raise CudaCiError(f"{record} is not JSON ({error})") from None
    if not isinstance(data, dict) or data.get("schema") != 1 or data.get("commit") != commit:
        raise CudaCiError(f"{record} is not cuda-ci's record of the siblings built at {commit}")
    files = data.get("files")
    if not isinstance(files, dict):
        raise CudaCiError(f"{record} is not cuda-ci's record of the siblings built at {commit}")
    return files


def _file_problem(dest: Path, name: str, facts: Any) -> str | None:
    if not isinstance(facts, dict) or "/" in name or "\\" in name or name in ("", ".", ".."):
        return f"{dest.name}/{name}: not a file name the record may list"
    status = _plain(dest / name)
    if status is None:
        return f"{dest.name}/{name} is missing, a link or not a regular file"
    if status.st_size != facts.get("size") or status.st_size > MAX_SIBLING_BYTES:
        return f"{dest.name}/{name} has {status.st_size} bytes, the record says {facts.get('size')}"
    actual = sha256_of(dest / name)
    if actual != facts.get("sha256"):
        return f"{dest.name}/{name} has sha256 {actual}, the record says {facts.get('sha256')}"
    return None


def recorded_files(dest: Path, commit: str) -> list[Path]:
    """The files the record of ``commit`` in ``dest`` lists, each checked.

    Raises:
        CudaCiError: ``dest`` is a link; the record is missing, a link, too large or of another
            shape; a listed file is missing, a link, or not of the recorded size and hash.
    """
    fix = f"remove {dest} (it is built again from the commit) and run again"
    if dest.is_symlink():
        raise CudaCiError(f"{dest} is a symbolic link: sibling wheels are only used from a plain folder; {fix}")
    try:
        files = _read(record_path(dest, commit), commit)
    except CudaCiError as error:
        raise CudaCiError(f"{error.problems[0]}: {fix}") from None
    problems = [p for name, facts in sorted(files.items()) if (p := _file_problem(dest, name, facts)) is not None]
    if problems:
        raise CudaCiError(
            *problems,
            f"the siblings in {dest} changed since they were built at {commit[:12]}: nothing was installed; {fix}",
        )
    return [dest / name for name in sorted(files)]


def folder_sibling_problems(dest: Path) -> tuple[list[str], int]:
    """For ``verify``: the problems of every record in ``dest`` (a release folder's ``siblings/``),
    and how many files they list; a file no record lists is a problem too."""
    if dest.is_symlink():
        return [f"{dest.name}/ is a symbolic link: a release folder holds only plain folders and files"], 0
    if not dest.is_dir():
        return [], 0
    records = sorted(p for p in dest.iterdir() if p.name.startswith(".commit-"))
    problems: list[str] = []
    listed: set[str] = set()
    for record in records:
        try:
            listed.update(p.name for p in recorded_files(dest, record.name.removeprefix(".commit-")))
        except CudaCiError as error:
            problems += error.problems
    unlisted = sorted(p.name for p in dest.iterdir() if not p.name.startswith(".") and p.name not in listed)
    problems += [f"{dest.name}/{name} is in no record of the siblings built" for name in unlisted]
    return problems, len(listed)
