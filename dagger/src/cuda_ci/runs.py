"""Each run's own temporary folder, and what runs that died (``kill -9``, a lost runner) left behind.

Every temporary folder and git worktree a run makes lives in one folder,
``$TMPDIR/cuda-ci-run-<pid>-*/``, whose ``owner.lock`` the run holds locked while it lives (the OS
drops the lock when the process ends, however it ends). The next run removes every such folder
whose lock is free, with the worktree registrations inside it, and says so.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from cuda_ci.log import Reporter

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
    if not owner.is_file():
        return now - folder.stat().st_mtime > UNOWNED_GRACE
    with owner.open("r+") as handle:
        return _try_lock(handle)


def _drop_worktrees(folder: Path) -> list[str]:
    """Unregister the git worktrees inside a dead run's folder (what ``git worktree prune`` does)."""
    dropped = []
    for gitfile in folder.glob("*/src/.git"):
        text = gitfile.read_text(encoding="utf-8", errors="replace").strip() if gitfile.is_file() else ""
        admin = Path(text.removeprefix("gitdir:").strip()) if text.startswith("gitdir:") else None
        if admin is not None and admin.parent.name == "worktrees" and admin.is_dir():
            shutil.rmtree(admin, ignore_errors=True)
            dropped.append(str(gitfile.parent))
    return dropped


def prune_dead_runs(base: Path, now: float | None = None) -> list[str]:
    """Remove the run folders (and their worktree registrations) of runs no longer alive."""
    now = time.time() if now is None else now
    said = []
    for folder in sorted(base.glob(f"{RUN_PREFIX}*")) if base.is_dir() else ():
        try:
            if not folder.is_dir() or folder.is_symlink() or not _dead(folder, now):
                continue
        except OSError:
            continue
        worktrees = _drop_worktrees(folder)
        shutil.rmtree(folder, ignore_errors=True)
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
