"""Each run's own temporary folder, and what runs that died (``kill -9``, a lost runner) left behind.

Every temporary folder and git worktree a run makes lives in one folder,
``$TMPDIR/cuda-ci-run-<pid>-*/``, whose ``owner.lock`` the run holds locked while it lives (the OS
drops the lock when the process ends, however it ends). The next run removes every such folder
whose lock is free, with the worktree registrations inside it, and says so.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from cuda_ci.infra.log import Reporter

RUN_PREFIX = "cuda-ci-run-"
OWNER = "owner.lock"
UNOWNED_GRACE = 60.0  # seconds: a folder without its lock yet may be a run starting now


def _try_lock(handle: IO[str]) -> bool:
    """Take the owner lock without waiting; False when a live run holds it."""
    if os.name == "nt":  # pragma: no cover - exercised on the Windows runner
        import msvcrt

        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined,unused-ignore]
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _dead(folder: Path, now: float) -> bool:
    owner = folder / OWNER
    try:
        if not stat.S_ISREG(owner.lstat().st_mode):  # a link or a pipe is no lock of ours
            return False
    except FileNotFoundError:
        return now - folder.lstat().st_mtime > UNOWNED_GRACE
    fd = os.open(owner, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "r+") as handle:
        return _try_lock(handle)


def _ours(path: Path, uid: int | None) -> bool:
    """A real directory (not a link) that belongs to this user (``uid``; None where there are no uids)."""
    info = path.lstat()
    return stat.S_ISDIR(info.st_mode) and (uid is None or info.st_uid == uid)


def _registration(gitfile: Path) -> Path | None:
    """The git worktree registration (``<repo>/.git/worktrees/<name>``) of the worktree whose ``.git``
    file this is, only where that registration names this very file as its worktree: a ``gitdir:``
    line alone (anyone can write one) never points cuda-ci at a directory to delete."""
    if not stat.S_ISREG(gitfile.lstat().st_mode):
        return None
    text = gitfile.read_text(encoding="utf-8", errors="replace").strip()
    admin = Path(text.removeprefix("gitdir:").strip()) if text.startswith("gitdir:") else None
    if admin is None or not admin.is_absolute() or admin.parent.name != "worktrees" or not _ours(admin, None):
        return None
    back = admin / "gitdir"  # git writes the worktree's .git file's path there
    if not stat.S_ISREG(back.lstat().st_mode):
        return None
    named = back.read_text(encoding="utf-8", errors="replace").strip()
    return admin if os.path.realpath(named) == os.path.realpath(gitfile) else None


def _drop_worktrees(folder: Path) -> list[str]:
    """Unregister the git worktrees inside a dead run's folder (what ``git worktree prune`` does)."""
    dropped = []
    for gitfile in folder.glob("*/src/.git"):
        try:
            admin = _registration(gitfile)
        except OSError:
            continue
        if admin is not None:
            shutil.rmtree(admin, ignore_errors=True)
            dropped.append(str(gitfile.parent))
    return dropped


def _this_user() -> int | None:
    return os.getuid() if hasattr(os, "getuid") else None


def prune_dead_runs(base: Path, now: float | None = None, uid: int | None = None) -> list[str]:
    """Remove this user's (``uid``, default: this process's) run folders, with their worktree
    registrations, of runs no longer alive; nothing another user made, nothing a link points to."""
    now = time.time() if now is None else now
    uid = _this_user() if uid is None else uid
    said = []
    for folder in sorted(base.glob(f"{RUN_PREFIX}*")) if base.is_dir() else ():
        try:
            if not _ours(folder, uid) or not _dead(folder, now):
                continue
        except OSError:
            continue
        worktrees = _drop_worktrees(folder)
        shutil.rmtree(folder, ignore_errors=True)  # never follows a link inside (nor the folder itself)
        also = f" and unregistered its git worktrees {', '.join(worktrees)}" if worktrees else ""
        said.append(f"removed {folder}, left by a cuda-ci run that ended without cleaning up{also}")
    return said


@contextmanager
def run_folder(reporter: Reporter) -> Iterator[Path]:
    """This run's temporary folder (``tempfile`` makes everything there), after pruning dead runs'."""
    base = Path(tempfile.gettempdir())
    for line in prune_dead_runs(base):
        reporter.note(line)
    path = Path(tempfile.mkdtemp(prefix=f"{RUN_PREFIX}{os.getpid()}-", dir=base))
    handle = (path / OWNER).open("w")
    previous = tempfile.tempdir
    try:
        _try_lock(handle)
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        tempfile.tempdir = str(path)
        yield path
    finally:
        tempfile.tempdir = previous
        shutil.rmtree(path, ignore_errors=True)
        handle.close()
