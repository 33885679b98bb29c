"""A container's root file system, mounted on this machine: paths resolved inside it (its absolute
links point into it, not into this machine's), content laid over it, commands looked up in it."""

from __future__ import annotations

import os
import posixpath
import shutil
from pathlib import Path


def inside(root: Path, path: str, hops: int = 40) -> Path | None:
    """``path`` of the container, on this machine, its links followed within ``root``; None if absent."""
    parts = [p for p in posixpath.normpath("/" + path).split("/") if p]
    current = root
    for index, part in enumerate(parts):
        candidate = current / part
        if candidate.is_symlink():
            if hops == 0:
                return None
            target = os.readlink(candidate)
            base = "/" if target.startswith("/") else "/" + current.relative_to(root).as_posix()
            rest = "/".join(parts[index + 1 :])
            return inside(root, posixpath.join(base, target, rest), hops - 1)
        if not candidate.exists():
            return None
        current = candidate
    return current


def runnable(root: Path, command: str, path: str) -> bool:
    """Whether the container can run ``command``: an executable at that path, or on its ``PATH``."""
    candidates = [command] if "/" in command else [posixpath.join(d, command) for d in path.split(":") if d]
    for candidate in candidates:
        found = inside(root, candidate)
        if found is not None and found.is_file() and os.access(found, os.X_OK):
            return True
    return False


def copy_into(source: Path, target: Path) -> None:
    """A folder's content merged into ``target``, or a file written there; parents made, as Dagger does."""
    if source.is_dir():
        shutil.copytree(source, target, symlinks=True, dirs_exist_ok=True)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink() or target.is_file():
            target.unlink()
        shutil.copy2(source, target, follow_symlinks=False)


def target_in(root: Path, path: str) -> Path:
    """Where ``path`` of the container is on this machine (within ``root`` even through absolute links),
    its missing parent folders made."""
    parts = [p for p in posixpath.normpath("/" + path).split("/") if p]
    current = root
    for index, part in enumerate(parts[:-1]):
        found = inside(root, "/".join(parts[: index + 1]))
        if found is None:
            found = current / part
            found.mkdir()
        current = found
    existing = inside(root, path)
    return existing if existing is not None and existing.is_dir() else current / parts[-1]
