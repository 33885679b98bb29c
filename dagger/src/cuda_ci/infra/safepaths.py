"""The one answer to "is this a listed plain file inside the release folder?".

A release folder travels between workflow jobs as an artifact, so whoever can alter it must not
make cuda-ci read, hash or publish a file outside it. Every file a stage reads from the folder by
the manifest's word goes through :func:`listed_file` (publish, verify, validate), and every
attestation through :func:`folder_file`: a path is ``dist/<name>`` or ``assets/<name>``, reached
through no symbolic link, and names a regular file. Anything else is refused with its name.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath

from cuda_ci.infra.errors import CudaCiError

LISTED_DIRS = ("dist", "assets")


class FolderProblem(CudaCiError):
    """A path in a release folder that is not a plain file inside it; the message names it."""


def listed_file(root: Path, relative: str, *, flat: bool = False) -> Path:
    """The plain file a manifest entry's ``path`` names (``root/<name>`` in a ``flat`` folder of
    downloaded assets).

    Raises:
        FolderProblem: ``relative`` is not ``dist/<name>`` or ``assets/<name>``, or the file is
            missing, a symbolic link (or reached through one), or not a regular file.
    """
    pure = PurePosixPath(relative)
    if (
        "\\" in relative
        or pure.is_absolute()
        or len(pure.parts) != 2
        or pure.parts[0] not in LISTED_DIRS
        or pure.name in ("", ".", "..")
        or str(pure) != relative
    ):
        raise FolderProblem(
            f"the manifest lists {relative!r}, which is not a file directly in dist/ or assets/: "
            "a release folder publishes nothing from elsewhere; rebuild it"
        )
    return folder_file(root, relative if not flat else pure.name)


def folder_file(root: Path, relative: str) -> Path:
    """``root/relative`` (one or two plain names) when it is a regular file reached through no link."""
    parts = PurePosixPath(relative).parts
    if not 1 <= len(parts) <= 2 or any(p in ("", ".", "..") or "\\" in p for p in parts):
        raise FolderProblem(f"{relative!r} is not a file name inside the release folder")
    if len(parts) == 2 and (root / parts[0]).is_symlink():
        raise FolderProblem(
            f"{parts[0]}/ is a symbolic link: a release folder holds only plain folders and files; rebuild it"
        )
    path = root.joinpath(*parts)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        raise FolderProblem(f"{relative} is listed in release-manifest.json but missing") from None
    if stat.S_ISLNK(mode):
        raise FolderProblem(f"{relative} is a symbolic link: a release folder holds only plain files; rebuild it")
    if not stat.S_ISREG(mode):
        raise FolderProblem(f"{relative} is not a plain file: a release folder holds only plain files; rebuild it")
    return path


def unlisted_entries(root: Path, listed: set[str]) -> list[str]:
    """Problems for everything in ``dist/`` and ``assets/`` that is not one of the ``listed`` paths
    (sub-folders, links and special files included), and for those folders themselves being links."""
    problems: list[str] = []
    for sub in LISTED_DIRS:
        folder = root / sub
        if folder.is_symlink():
            problems.append(f"{sub}/ is a symbolic link: a release folder holds only plain folders and files")
            continue
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            rel = f"{sub}/{path.name}"
            if rel not in listed:
                what = " (a folder)" if path.is_dir() and not path.is_symlink() else ""
                problems.append(f"{rel}{what} is not in release-manifest.json: remove it or rebuild the release folder")
    return problems
