"""GitHub's rules as pure predicates: how long a rate limit asks to wait, and which release is "Latest"."""

from __future__ import annotations

import json

import pytest
from packaging.version import Version

from cuda_ci.infra.components import get_unit
from cuda_ci.infra.errors import CudaCiError
from cuda_ci.infra.httpclient import (
    SECONDARY_WAIT,
    HttpClient,
    HttpUnavailable,
    Pacer,
    Response,
    WriteFailed,
    rate_limit_wait,
)
from cuda_ci.publish.releases import complete, make_latest

NOW = 1_700_000_000.0


def _response(status: int, message: str = "", **headers: str) -> Response:
    return Response(
        status, {k.replace("_", "-"): v for k, v in headers.items()}, json.dumps({"message": message}).encode()
    )


@pytest.mark.parametrize("status", [403, 429])
def test_a_primary_limit_waits_until_its_reset(status: int) -> None:
    spent = _response(
        status, "API rate limit exceeded", x_ratelimit_remaining="0", x_ratelimit_reset=str(int(NOW) + 90)
    )
    assert rate_limit_wait(spent, 1, NOW) == 91.0


def test_retry_after_wins_and_is_not_capped() -> None:
    assert rate_limit_wait(_response(429, retry_after="3600"), 1, NOW) == 3600.0
    assert rate_limit_wait(_response(403, "secondary rate limit", retry_after="5"), 1, NOW) == 5.0
    assert rate_limit_wait(_response(403, retry_after="Tue, 14 Nov 2023 22:14:20 GMT"), 1, NOW) == 60.0  # a date


def test_a_secondary_limit_without_a_time_waits_a_minute_then_longer() -> None:
    secondary = _response(403, "You have exceeded a secondary rate limit.")
    assert [rate_limit_wait(secondary, n, NOW) for n in (1, 2, 3)] == [
        SECONDARY_WAIT,
        2 * SECONDARY_WAIT,
        4 * SECONDARY_WAIT,
    ]
    assert rate_limit_wait(_response(429), 1, NOW) == SECONDARY_WAIT


def test_a_403_without_rate_limit_signals_is_no_rate_limit() -> None:
    assert (
        rate_limit_wait(_response(403, "Resource not accessible by integration", x_ratelimit_remaining="4999"), 1, NOW)
        is None
    )
    assert rate_limit_wait(_response(404, retry_after="1"), 1, NOW) is None


def test_only_the_newest_final_release_of_a_latest_unit_becomes_latest() -> None:
    bindings, core = get_unit("cuda-bindings"), get_unit("cuda-core")
    published = ["v13.0.0", "v12.9.0", "cuda-core-v0.9.0", "v13.1.0rc1", "not-a-release"]
    assert make_latest(bindings, Version("13.0.1"), published) is True
    assert make_latest(bindings, Version("13.0.0.post1"), published) is True
    assert make_latest(bindings, Version("12.9.1"), published) is False, "a backport"
    assert make_latest(bindings, Version("13.0.0"), published) is False, "not newer than itself"
    assert make_latest(bindings, Version("13.2.0rc1"), published) is False, "pre-releases never"
    assert make_latest(core, Version("1.0.0"), published) is False, "cuda-core never displaces Latest"
    assert make_latest(get_unit("cuda-pathfinder"), Version("9.0.0"), []) is False


def test_a_starter_asset_is_never_complete() -> None:
    asset = {"id": 1, "name": "a", "size": 3, "digest": "sha256:" + "0" * 64, "state": "uploaded"}
    assert complete(asset, 3, "0" * 64)  # type: ignore[arg-type]
    assert not complete({**asset, "state": "starter"}, 3, "0" * 64)  # type: ignore[arg-type]
    assert not complete({**asset, "digest": None}, 3, "0" * 64)  # type: ignore[arg-type]


def test_the_pacer_spaces_requests_from_the_end_of_the_last() -> None:
    clock = [100.0]
    slept: list[float] = []
    pacer = Pacer(1.0, sleep=slept.append, clock=lambda: clock[0])
    pacer.wait()
    pacer.done()
    clock[0] += 0.25
    pacer.wait()
    assert slept == [0.75]


class _Scripted(HttpClient):
    """An HttpClient whose network is a script of answers; it records what each request carried."""

    def __init__(self, *answers: Response | str) -> None:
        """Each answer in turn; a str stands for a failed connection, and says why."""
        self.said: list[str] = []
        super().__init__(sleep=lambda seconds: None, on_retry=self.said.append)
        self.answers = list(answers)
        self.sent: list[tuple[str, str, dict[str, str], bytes | None]] = []

    def _send(self, method, url, headers, body, sink):  # type: ignore[no-untyped-def, override]
        self.sent.append((method, url, dict(headers), body))
        answer = self.answers.pop(0)
        return (None, answer) if isinstance(answer, str) else (answer, "")


def test_redirects_repeat_the_request_and_drop_the_token_off_origin() -> None:
    http = _Scripted(
        Response(301, {"Location": "/repos/new/name/releases"}, b""),
        Response(307, {"Location": "https://uploads.example/x"}, b""),
        Response(201, {}, b"{}"),
    )
    headers = {"Authorization": "Bearer secret", "Content-Type": "application/json"}
    http.request("POST", "https://api.example/repos/old/name/releases", headers=headers, body=b"{}")
    assert [(m, u, b) for m, u, _, b in http.sent] == [
        ("POST", "https://api.example/repos/old/name/releases", b"{}"),
        ("POST", "https://api.example/repos/new/name/releases", b"{}"),
        ("POST", "https://uploads.example/x", b"{}"),
    ]
    assert [("Authorization" in h) for _, _, h, _ in http.sent] == [True, True, False]


def test_a_redirect_from_https_to_http_is_refused() -> None:
    http = _Scripted(Response(302, {"Location": "http://api.example/x"}, b""))
    with pytest.raises(CudaCiError, match="refused \\(not https\\)"):
        http.request("GET", "https://api.example/y")


def test_a_read_is_retried_after_a_server_error_or_a_dropped_connection() -> None:
    http = _Scripted(
        Response(503, {}, b""), "ConnectionResetError: [Errno 104] reset by peer", Response(200, {}, b"{}")
    )
    assert http.request("GET", "https://api.example/x").status == 200
    assert len(http.sent) == 3
    assert http.said == [
        "GET https://api.example/x: HTTP 503; retry 1 of 4 in 0.5 s",
        "GET https://api.example/x: ConnectionResetError: [Errno 104] reset by peer; retry 2 of 4 in 1.0 s",
    ]


def test_a_refusal_is_not_retried() -> None:
    http = _Scripted(Response(401, {}, b"Bad credentials"), Response(200, {}, b"{}"))
    with pytest.raises(CudaCiError, match="answered 401: Bad credentials"):
        http.request("GET", "https://api.example/x")
    assert len(http.sent) == 1 and http.said == []


def test_a_server_asking_for_a_longer_wait_than_the_run_allows_is_not_waited_for() -> None:
    http = _Scripted(Response(503, {"Retry-After": "7200"}, b""))
    with pytest.raises(HttpUnavailable, match="asks to wait 7200 s, longer than the 3600 s this run waits"):
        http.request("GET", "https://api.example/x")
    assert len(http.sent) == 1


def test_a_write_is_not_repeated_after_a_server_error() -> None:
    http = _Scripted(Response(502, {}, b""), Response(201, {}, b"{}"))
    with pytest.raises(WriteFailed, match="a write is not repeated blindly"):
        http.request("POST", "https://api.example/x", headers={"Content-Type": "application/json"}, body=b"{}")
    assert len(http.sent) == 1


def test_a_body_without_a_content_type_is_a_programming_error() -> None:
    with pytest.raises(TypeError):
        _Scripted().request("POST", "https://api.example/x", body=b"tag_name=v1")
