"""Tasks run beside a stage: every failure is reported, none is lost behind another."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest

from cuda_ci.infra.errors import CudaCiError
from cuda_ci.infra.log import Reporter


def failing(message: str) -> Callable[[Reporter], None]:
    def task(reporter: Reporter) -> None:
        with reporter.step(message):
            raise CudaCiError(message)

    return task


def test_a_failing_task_beside_a_failing_body_is_reported_with_it() -> None:
    reporter = Reporter(stream=io.StringIO())
    with pytest.raises(CudaCiError) as info, reporter.alongside(failing("docs failed")):
        raise CudaCiError("validate failed")
    assert info.value.problems == ("validate failed", "docs failed"), "the body's first, then each task's"
    assert [(s.name, s.status) for s in reporter.steps] == [("docs failed", "failed")]


def test_a_failing_task_beside_a_good_body_fails_the_run() -> None:
    reporter = Reporter(stream=io.StringIO())
    with pytest.raises(CudaCiError, match="sphinx env failed"), reporter.alongside(failing("sphinx env failed")):
        pass


def test_a_bug_wins_over_reported_failures() -> None:
    reporter = Reporter(stream=io.StringIO())
    with pytest.raises(KeyError), reporter.alongside(failing("siblings failed")):
        raise KeyError("a bug")
