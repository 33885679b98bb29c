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

from cuda_ci.cli.app import main
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
    assert len(servers) == 1, "the embedded index of the running publish node (publish:pypi) is running"
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


# A child that starts a grandchild holding the child's stdout: both ignore SIGTERM (a hung build
# backend), the grandchild writes its pid to the file named by argv[1].
HUNG_FAMILY = """
import os, signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
grandchild = subprocess.Popen([sys.executable, "-c", "import signal, time; "
    "signal.signal(signal.SIGTERM, signal.SIG_IGN); print('grandchild up', flush=True); time.sleep(600)"])
open(sys.argv[1] + ".tmp", "w").write(str(grandchild.pid))
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
if sys.argv[2] == "hang":
    time.sleep(600)
"""


def _pid_in(path: Path) -> int:
    deadline = time.monotonic() + WAIT
    while not path.is_file():
        assert time.monotonic() < deadline, f"{path} never came"
        time.sleep(0.05)
    return int(path.read_text())


def test_a_timeout_ends_the_childs_whole_group(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cuda_ci.infra import process
    from cuda_ci.infra.errors import CommandError
    from cuda_ci.infra.log import Reporter

    monkeypatch.setattr(process, "GRACE", 1.0)
    pid_file = tmp_path / "grandchild.pid"
    start = time.monotonic()
    with pytest.raises(CommandError) as raised:
        process.run(
            [sys.executable, "-c", HUNG_FAMILY, pid_file, "hang"], what="a hung backend", reporter=Reporter(), timeout=2
        )
    assert raised.value.returncode == 124
    assert "timed out after 2 s; its process group was ended" in raised.value.problems[0]
    assert time.monotonic() - start < 2 + process.GRACE + 5, "TERM, then KILL after a bounded grace"
    assert _all_gone([_pid_in(pid_file)]), "the grandchild (holding the pipe, ignoring SIGTERM) is gone"


def test_a_grandchild_left_holding_the_pipe_does_not_keep_the_run_waiting(tmp_path: Path) -> None:
    from cuda_ci.infra import process
    from cuda_ci.infra.log import Reporter

    pid_file = tmp_path / "grandchild.pid"
    start = time.monotonic()
    done = process.run([sys.executable, "-c", HUNG_FAMILY, pid_file, "exit"], what="a backend", reporter=Reporter())
    assert done.returncode == 0
    assert "grandchild up" in done.stdout, "what it printed before it was ended is kept"
    assert time.monotonic() - start < 30, "the run went on once its child exited"
    assert _all_gone([_pid_in(pid_file)]), "what the child left behind in its group is gone"


@pytest.mark.parametrize(
    ("how", "code", "said"),
    [
        (signal.SIGTERM, 143, "error: terminated (SIGTERM): every subprocess and embedded index was stopped"),
        (signal.SIGINT, 130, "error: interrupted"),
    ],
    ids=["SIGTERM", "SIGINT"],
)
def test_a_signal_ends_a_hung_grandchild_of_the_run(
    monorepo: Path, tmp_path: Path, how: signal.Signals, code: int, said: str
) -> None:
    """cuda-ci → setuptools-scm → a describe command that hangs, ignoring SIGTERM: SIGTERM (or Ctrl-C's
    SIGINT) to cuda-ci ends all of it within seconds, and cuda-ci's last word is true."""
    pid_file = tmp_path / "describe.pid"
    script = tmp_path / "hung_describe.py"
    script.write_text(HUNG_FAMILY)
    pyproject = monorepo / "cuda_pathfinder" / "pyproject.toml"
    hung = f'describe_command = ["{sys.executable}", "{script}", "{pid_file}", "hang"]'
    text = pyproject.read_text()
    pyproject.write_text(text[: text.index("describe_command")] + hung + "\n")
    git(monorepo, "commit", "-qam", "a describe command that hangs")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "GH_"))}
    argv = [sys.executable, "-m", "cuda_ci", "version", "--component", "cuda-pathfinder", "--repo", str(monorepo)]
    with subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env) as run:
        grandchild = _pid_in(pid_file)
        describe = int(Path(f"/proc/{grandchild}/stat").read_text().rsplit(")", 1)[1].split()[1])
        run.send_signal(how)
        start = time.monotonic()
        try:
            ended = run.wait(timeout=60)
        finally:
            run.kill()
        assert run.stderr is not None
        err = run.stderr.read()
    assert ended == code, err
    assert time.monotonic() - start < 30, "ended within seconds, not at the 1800 s timeout"
    assert said in err
    assert _all_gone([grandchild, describe]), "no child or grandchild of the run outlives it"
