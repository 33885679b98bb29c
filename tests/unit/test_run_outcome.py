"""A failed node's log where it could write none: its problems from what cuda-ci printed."""

from __future__ import annotations

import pytest

from cuda_ci.executors.runlog import error_lines, failed_node_record, run_log_of
from cuda_ci.infra import secrets


def test_every_error_and_its_continuation_lines_are_the_nodes_problems() -> None:
    stderr = (
        "==> stage preflight\n"
        "    failed in 0.2 s: stage preflight\n"
        "error: release-notes: cuda_core/docs/1.0-notes.rst is missing at cuda-core-v1.0.0\n"
        "error: ci-gate: no successful ci.yml run on main for abc123\n"
        "  see https://github.com/NVIDIA/cuda-python/actions\n"
        "error: preflight: 2 problem(s)\n"
    )
    assert error_lines(stderr) == [
        "release-notes: cuda_core/docs/1.0-notes.rst is missing at cuda-core-v1.0.0",
        "ci-gate: no successful ci.yml run on main for abc123\nsee https://github.com/NVIDIA/cuda-python/actions",
        "preflight: 2 problem(s)",
    ]


def test_without_an_error_line_the_last_lines_stand_for_it() -> None:
    stderr = "".join(f"line {n}\n" for n in range(30)) + "Killed\n"
    [problem] = error_lines(stderr, tail=3)
    assert problem == "line 28\nline 29\nKilled"
    assert error_lines("") == ["it printed nothing"]


def test_a_failed_nodes_record_names_it_fails_the_run_and_holds_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(secrets, "_registered", set(), raising=False)
    secrets.register(["ghp_0123456789abcdefSECRET"])
    record = failed_node_record("preflight", 1, "error: GitHub said 401 to token ghp_0123456789abcdefSECRET\n")
    assert record["node"] == "preflight" and record["status"] == "failed"
    assert record["errors"][0].startswith("preflight (exit code 1): GitHub said 401 to token ")
    assert "ghp_0123456789abcdefSECRET" not in str(record)
    outcome = run_log_of([record])
    assert outcome["status"] == "failed" and outcome["errors"] == record["errors"]
