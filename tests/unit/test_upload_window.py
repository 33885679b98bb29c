"""PyPI's upload window, the pure parts: where the JSON API is, how old a release is, the way forward."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cuda_ci.infra.components import get_unit
from cuda_ci.infra.errors import UsageError
from cuda_ci.infra.settings import PYPI_UPLOAD_WINDOW_DAYS, Settings
from cuda_ci.publish.window import (
    IndexRelease,
    closed_window_problem,
    json_api_base,
    next_post_tag,
    window_closed,
    window_detail,
)

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _release(days_ago: float | None, answered: bool = True) -> IndexRelease:
    first = None if days_ago is None else NOW - timedelta(days=days_ago)
    files = {} if first is None else {"cuda_core-1.3.1.tar.gz": "a" * 64}
    return IndexRelease("cuda-core", "1.3.1", files, first, answered=answered)


@pytest.mark.parametrize(
    ("simple", "base"),
    [
        ("https://pypi.org/simple/", "https://pypi.org"),
        ("https://test.pypi.org/simple/", "https://test.pypi.org"),
        ("http://127.0.0.1:8080/simple", "http://127.0.0.1:8080"),
        ("https://mirror.example/pypi/simple/", "https://mirror.example/pypi"),
        ("https://devpi.example/root/pypi/+simple/", None),
    ],
)
def test_the_json_api_sits_beside_the_simple_api(simple: str, base: str | None) -> None:
    assert json_api_base(simple) == base


def test_the_window_closes_after_its_days_and_never_at_0() -> None:
    assert not window_closed(_release(13.9), 14, NOW)
    assert window_closed(_release(14.1), 14, NOW)
    assert not window_closed(_release(400), 0, NOW), "0 applies no window"
    assert not window_closed(_release(None), 14, NOW), "a release with no file has no age"
    assert PYPI_UPLOAD_WINDOW_DAYS == 14


def test_the_window_is_a_setting_with_pypis_default() -> None:
    assert Settings.from_environ({}).upload_window_days == 14
    assert Settings.from_environ({"CUDA_CI_UPLOAD_WINDOW_DAYS": "0"}).upload_window_days == 0
    with pytest.raises(UsageError, match=r"CUDA_CI_UPLOAD_WINDOW_DAYS='-1': give a whole number of days"):
        Settings.from_environ({"CUDA_CI_UPLOAD_WINDOW_DAYS": "-1"})


@pytest.mark.parametrize(
    ("unit", "version", "tag"),
    [
        ("cuda-core", "1.3.1", "cuda-core-v1.3.1.post1"),
        ("cuda-core", "1.3.1.post1", "cuda-core-v1.3.1.post2"),
        ("cuda-bindings", "13.0.0rc1", "v13.0.0rc1.post1"),
    ],
)
def test_the_way_forward_is_the_next_post_release(unit: str, version: str, tag: str) -> None:
    assert next_post_tag(get_unit(unit), version) == tag


def test_the_refusal_names_the_age_the_missing_files_and_the_way_forward() -> None:
    problem = closed_window_problem("pypi", _release(20), ["cuda_core-1.3.1-cp315-cp315-win_arm64.whl"],
                                    get_unit("cuda-core"), 14, NOW)  # fmt: skip
    assert problem.startswith("pypi: cuda-core 1.3.1 was first uploaded 20 days ago (2026-10-31T12:00:00Z)")
    assert "refuses new files on a release older than 14 days" in problem
    assert "it lacks 1 file(s) of this release: cuda_core-1.3.1-cp315-cp315-win_arm64.whl" in problem
    assert problem.endswith("cut cuda-core-v1.3.1.post1 (a .postN release) from the same commit and release that")


def test_the_window_detail_says_where_it_stands() -> None:
    assert window_detail(_release(None), 14, NOW) == (
        "no file of 1.3.1 there yet: the 14-day window opens at the first upload"
    )
    assert window_detail(_release(3), 14, NOW) == "first upload 3 days ago: new files accepted for 11.0 more day(s)"
    assert window_detail(_release(20), 14, NOW) == (
        "first upload 20 days ago: past the 14-day window, no new file is accepted"
    )
    assert window_detail(_release(20), 0, NOW) == "the upload window is not applied (CUDA_CI_UPLOAD_WINDOW_DAYS=0)"
    assert "the upload window is not applied" in window_detail(_release(None, answered=False), 14, NOW)
