"""The one bounded retry: what it tries again, what it never does, its bounds and its reports."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from cuda_ci.infra.errors import CudaCiError
from cuda_ci.infra.retry import Retry, Transient, heals


def _script(*outcomes: Exception | str) -> tuple[Callable[[int], str], list[int]]:
    """An attempt that raises or returns each outcome in turn, recording the attempt numbers."""
    calls: list[int] = []

    def attempt(number: int) -> str:
        calls.append(number)
        outcome = outcomes[len(calls) - 1]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    return attempt, calls


def _retry(attempts: int = 3, **kwargs: float) -> tuple[Retry, list[str], list[float]]:
    said: list[str] = []
    slept: list[float] = []
    return Retry(attempts=attempts, backoff=1.0, report=said.append, sleep=slept.append, **kwargs), said, slept


def test_what_can_heal_is_retried_and_each_retry_is_reported() -> None:
    retry, said, slept = _retry()
    attempt, calls = _script(Transient("HTTP 503"), Transient("connection dropped"), "done")
    assert retry.run("GET https://index.example/simple/x/", attempt) == "done"
    assert calls == [1, 2, 3]
    assert said == [
        "GET https://index.example/simple/x/: HTTP 503; retry 1 of 2 in 1.0 s",
        "GET https://index.example/simple/x/: connection dropped; retry 2 of 2 in 2.0 s",
    ]
    assert slept == [1.0, 2.0], "backoff times the attempt number"


def test_a_refusal_passes_through_at_once() -> None:
    retry, said, slept = _retry()
    attempt, calls = _script(CudaCiError("POST https://upload.example/ answered 403: Forbidden"), "never")
    with pytest.raises(CudaCiError, match="answered 403"):
        retry.run("upload", attempt)
    assert calls == [1] and said == [] and slept == []


def test_the_tries_are_bounded_and_the_last_failure_is_named() -> None:
    retry, said, _ = _retry(attempts=4)
    attempt, calls = _script(*[Transient("HTTP 502", detail=["twine said: 502"])] * 5)
    with pytest.raises(CudaCiError) as raised:
        retry.run("upload of a.whl to testpypi", attempt)
    assert raised.value.problems == ("upload of a.whl to testpypi failed 4 times (HTTP 502)", "twine said: 502")
    assert calls == [1, 2, 3, 4] and len(said) == 3


def test_a_caller_words_its_own_give_up() -> None:
    retry, _, _ = _retry(attempts=2)
    attempt, _ = _script(Transient("HTTP 503"), Transient("HTTP 504"))
    with pytest.raises(KeyError, match="upload failed 2 times: HTTP 504"):
        retry.run("upload", attempt, give_up=lambda failure, why: KeyError(f"upload {why}: {failure.reason}"))


def test_the_servers_wait_is_honoured_within_the_bound() -> None:
    retry, said, slept = _retry(max_wait=60.0)
    attempt, _ = _script(Transient("HTTP 429, rate limited", wait=7.0), "done")
    assert retry.run("GET x", attempt) == "done"
    assert slept == [7.0] and said == ["GET x: HTTP 429, rate limited; retry 1 of 2 in 7.0 s"]

    attempt, calls = _script(Transient("HTTP 503", wait=7200.0), "never")
    with pytest.raises(
        CudaCiError, match=r"GET x asks to wait 7200 s, longer than the 60 s this run waits \(HTTP 503\)"
    ):
        retry.run("GET x", attempt)
    assert calls == [1] and slept == [7.0], "a wait beyond the bound is never started"


def test_backoff_is_capped() -> None:
    retry, _, slept = _retry(attempts=5, max_backoff=2.5)
    attempt, _ = _script(*[Transient("HTTP 500")] * 4, "done")
    retry.run("x", attempt)
    assert slept == [1.0, 2.0, 2.5, 2.5]


@pytest.mark.parametrize(("status", "healing"), [(500, True), (502, True), (503, True), (504, True), (429, True)]
                         + [(s, False) for s in (400, 401, 403, 404, 409, 422, 501)])  # fmt: skip
def test_only_server_errors_and_429_heal(status: int, healing: bool) -> None:
    assert heals(status) is healing
