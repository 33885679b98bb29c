"""Pruning dead runs' folders in a shared temporary directory: only this user's, and nothing they point to."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from cuda_ci.infra.run_folders import prune_dead_runs

LATER = time.time() + 3600  # every folder below is past the grace a starting run has


def _victim(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "precious.txt").write_text("not cuda-ci's to delete\n")
    return path


def _dead_run(base: Path, name: str = "cuda-ci-run-999-abc") -> Path:
    folder = base / name
    (folder / "cuda-ci-worktree-x" / "src").mkdir(parents=True)
    return folder


@pytest.fixture
def base(tmp_path: Path) -> Path:
    (tmp_path / "tmp").mkdir()
    return tmp_path / "tmp"


def test_a_planted_gitdir_line_or_link_deletes_nothing_outside(base: Path, tmp_path: Path) -> None:
    victim = _victim(tmp_path / "victim" / ".git" / "worktrees" / "main-checkout")
    linked = _victim(tmp_path / "linked")
    folder = _dead_run(base)
    (folder / "cuda-ci-worktree-x" / "src" / ".git").write_text(f"gitdir: {victim}\n")
    (folder / "link").symlink_to(linked)
    said = prune_dead_runs(base, now=LATER)
    assert said == [f"removed {folder}, left by a cuda-ci run that ended without cleaning up"]
    assert not folder.exists()
    assert (victim / "precious.txt").is_file(), "a gitdir: line naming a registration not its own is not followed"
    assert (linked / "precious.txt").is_file(), "a link inside the folder is removed, not followed"


def test_a_registration_naming_this_worktree_is_dropped(base: Path, tmp_path: Path) -> None:
    admin = tmp_path / "repo" / ".git" / "worktrees" / "cuda-ci-worktree-x"
    admin.mkdir(parents=True)
    folder = _dead_run(base)
    gitfile = folder / "cuda-ci-worktree-x" / "src" / ".git"
    gitfile.write_text(f"gitdir: {admin}\n")
    (admin / "gitdir").write_text(f"{gitfile}\n")  # as git writes it: the way back to the worktree
    [said] = prune_dead_runs(base, now=LATER)
    assert said.endswith(f"and unregistered its git worktrees {gitfile.parent}")
    assert not admin.exists() and not folder.exists()


def test_another_users_folder_and_a_linked_folder_are_left_alone(base: Path, tmp_path: Path) -> None:
    if not hasattr(os, "getuid"):
        pytest.skip("no user ids on this platform")
    theirs = _dead_run(base, "cuda-ci-run-1-theirs")
    target = _victim(tmp_path / "elsewhere")
    (base / "cuda-ci-run-2-link").symlink_to(target, target_is_directory=True)
    someone_else = os.getuid() + 1
    assert prune_dead_runs(base, now=LATER, uid=someone_else) == []
    assert theirs.is_dir(), "a folder this user does not own is not touched"
    assert prune_dead_runs(base, now=LATER) == [
        f"removed {theirs}, left by a cuda-ci run that ended without cleaning up"
    ]
    assert (target / "precious.txt").is_file(), "a run folder that is a link is never followed"
    assert (base / "cuda-ci-run-2-link").is_symlink()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes")
def test_an_owner_lock_that_is_a_pipe_does_not_hang_the_prune(base: Path) -> None:
    folder = _dead_run(base)
    os.mkfifo(folder / "owner.lock")
    assert prune_dead_runs(base, now=LATER) == []
    assert folder.is_dir(), "not a lock of a cuda-ci run: left alone"
