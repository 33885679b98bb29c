"""A run killed mid-way (SIGTERM, kill -9): its children die with it, and the next run prunes what it left."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cuda_ci.cli import main
from tests.helpers import git

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")]
WAIT = 600.0  # seconds: the most any wait below may take on a loaded machine


def _start(repo: Path, out: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "GH_"))}
    argv = [sys.executable, "-m", "cuda_ci", "release", "--snapshot", "--component", "cuda-pathfinder"]
    return subprocess.Popen(
        [*argv, "--repo", str(repo), "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**env, "GITHUB_API_URL": "http://127.0.0.1:9"},
    )


def _wait_for(process: subprocess.Popen[str], needle: str) -> None:
    """Read the run's progress until a line holds ``needle`` (bounded)."""
    assert process.stderr is not None
    deadline = time.monotonic() + WAIT
    seen = []
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stderr], [], [], 1.0)
        if ready:
            line = process.stderr.readline()
            seen.append(line)
            if needle in line:
                return
            if not line and process.poll() is not None:
                break
    pytest.fail(f"{needle!r} never came; the run said:\n{''.join(seen)}")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def _children(pid: int, name: str) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid and name in cmdline:
            found.append(int(stat.parent.name))
    return found


def _all_gone(pids: list[int]) -> bool:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if not any(_alive(pid) for pid in pids):
            return True
        time.sleep(0.2)
    return False


def _run_folders(pid: int) -> list[Path]:
    return sorted(Path(tempfile.gettempdir()).glob(f"cuda-ci-run-{pid}-*"))


@pytest.fixture
def started(monorepo: Path, tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    process = _start(monorepo, tmp_path / "release")
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=60)
        if process.stderr:
            process.stderr.close()


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "SIGTERM"])
def test_the_embedded_indexes_die_with_the_run(started: subprocess.Popen[str], how: signal.Signals) -> None:
    _wait_for(started, "embedded pypi index:")
    servers = _children(started.pid, "pypiserver")
    assert len(servers) == 2, "both embedded indexes are running"
    started.send_signal(how)
    code = started.wait(timeout=WAIT)
    assert _all_gone(servers), "no embedded index outlives the run"
    if how == signal.SIGTERM:
        assert code == 143
        assert started.stderr is not None
        assert "error: terminated (SIGTERM)" in started.stderr.read()
        assert _run_folders(started.pid) == [], "a terminated run removes its own temporary folder"


def test_the_next_run_prunes_what_a_killed_build_left(
    started: subprocess.Popen[str], monorepo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _wait_for(started, "==> build cuda-pathfinder")
    worktrees = git(monorepo, "worktree", "list", "--porcelain").count("worktree ")
    assert worktrees == 2, "the build's worktree is registered"
    started.kill()
    started.wait(timeout=WAIT)
    [left] = _run_folders(started.pid)
    assert any(left.glob("cuda-ci-worktree-*/src")), "the killed run left its worktree behind"
    assert main(["component-version", "--component", "cuda-pathfinder", "--repo", str(monorepo)]) == 0
    err = capsys.readouterr().err
    assert f"note: removed {left}, left by a cuda-ci run that ended without cleaning up" in err
    assert "and unregistered its git worktrees" in err
    assert not left.exists()
    assert git(monorepo, "worktree", "list", "--porcelain").count("worktree ") == 1
