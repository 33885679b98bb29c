"""A long child's output reaches the log as it is written, not when the child ends."""

from __future__ import annotations

import io
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from cuda_ci.infra.log import Reporter
from cuda_ci.infra.process import PYTHON, run

pytestmark = pytest.mark.e2e


def test_a_long_childs_line_is_in_the_log_while_the_child_still_runs(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    os.mkfifo(gate)  # the child blocks opening it until this test opens the other end
    code = f"print('building cp312', flush=True); open({str(gate)!r}).read(); print('built')"
    stream = io.StringIO()
    reporter = Reporter(stream=stream, github_actions=True)
    finished: list[subprocess.CompletedProcess[str]] = []

    def long_child() -> None:
        finished.append(run([PYTHON, "-c", code], what="cibuildwheel", reporter=reporter, live=True, timeout=60))

    child = threading.Thread(target=long_child)
    child.start()
    deadline = time.monotonic() + 30
    while "building cp312" not in stream.getvalue():
        assert time.monotonic() < deadline, f"no live line after 30 s: {stream.getvalue()!r}"
        time.sleep(0.02)
    assert child.is_alive() and not finished, "the line arrived while the child still waits on the gate"
    with gate.open("w") as release:
        release.write("go")
    child.join(timeout=60)
    assert stream.getvalue().splitlines() == ["::group::cibuildwheel", "building cp312", "built", "::endgroup::"]
    assert finished[0].stdout == "building cp312\nbuilt\n", "the whole output is kept for the result"
