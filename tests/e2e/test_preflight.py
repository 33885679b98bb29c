"""Every preflight refusal, each asserting its message; preflight builds nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cuda_ci.cli.app import main
from tests.fakes.github import FakeGitHub
from tests.fakes.simple_index import SimpleIndex
from tests.helpers import commit_change, git, result_document

pytestmark = pytest.mark.e2e


def preflight(repo: Path, *args: str) -> int:
    return main(["preflight", "--repo", str(repo), *args])


@pytest.fixture(autouse=True)
def sibling_index(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimpleIndex]:
    """TestPyPI and PyPI as preflight reads them: both hold the siblings the tagged units require."""
    index = SimpleIndex().start()
    index.add("cuda-pathfinder", "cuda_pathfinder-1.0.0-py3-none-any.whl")
    index.add("cuda-bindings", "cuda_bindings-13.0.0-cp312-cp312-manylinux_2_28_x86_64.whl")
    for key, value in index.environ().items():
        monkeypatch.setenv(key, value)
    try:
        yield index
    finally:
        index.stop()


@pytest.fixture
def green(tagged_repo: Path, github_env: FakeGitHub) -> FakeGitHub:
    github_env.add_run(git(tagged_repo, "rev-parse", "HEAD"))
    return github_env


INDEXES = ("testpypi", "pypi")


def test_a_green_tag_passes_every_check(
    tagged_repo: Path, green: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    assert preflight(tagged_repo, "--tag", "v13.0.0", "--json") == 0
    found = result_document(capsys.readouterr().out, "preflight")
    assert found["component"] == "cuda-bindings" and found["version"] == "13.0.0"
    statuses = {c["check"]: c["status"] for c in found["checks"]}
    assert statuses == {
        "tag": "passed",
        "reachable-from-main": "passed",
        "release-notes": "passed",
        "ci-gate": "passed",
        "published-release": "passed",
        "sibling-on-index": "passed",
        "upload-window": "passed",
    }
    windows = [c["detail"] for c in found["checks"] if c["check"] == "upload-window"]
    opens = "no file of 13.0.0 there yet: the 14-day window opens at the first upload"
    assert windows == [f"{index}: cuda-bindings 13.0.0: {opens}; cuda-python 13.0.0: {opens}" for index in INDEXES]
    assert found["ci_gate"]["status"] == "verified"
    assert ("GET", f"/repos/{green.repository}/actions/workflows/ci.yml/runs") in {
        (m, p.split("?")[0]) for m, p in green.requests
    }
    assert green.writes == [], "preflight never writes to GitHub"


def test_ci_runs_are_found_across_pages(
    tagged_repo: Path, github_env: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    head = git(tagged_repo, "rev-parse", "HEAD")
    for _ in range(5):  # three pages of two
        github_env.add_run(head)
    assert preflight(tagged_repo, "--tag", "v13.0.0", "--json") == 0
    pages = [p for m, p in github_env.requests if "/runs" in p]
    assert len(pages) == 3 and "page=3" in pages[-1]
    assert result_document(capsys.readouterr().out, "preflight")["ci_gate"]["run_url"] == github_env.runs[0]["html_url"]


@pytest.mark.parametrize(
    ("tag", "component", "message", "exit_code"),
    [
        ("v13.0", None, "tag 'v13.0' is not a release tag", 2),
        ("v13.0.0-rc1", None, "valid release tags are", 2),
        ("cuda-core-v0.3.0", "cuda-bindings", "releases cuda-core, not cuda-bindings", 2),
        ("v13.0.9", None, "tag v13.0.9 does not exist", 1),
    ],
)
def test_bad_tags_are_refused(
    tagged_repo: Path,
    green: FakeGitHub,
    tag: str,
    component: str | None,
    message: str,
    exit_code: int,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Not a release tag: a usage error (2), as for build and release; a missing tag: a finding (1)."""
    args = [f"--tag={tag}"] + (["--component", component] if component else [])
    assert preflight(tagged_repo, *args) == exit_code
    assert message in capsys.readouterr().err


def test_tag_naming_a_tree_is_refused(tagged_repo: Path, green: FakeGitHub, capsys: pytest.CaptureFixture[str]) -> None:
    tree = git(tagged_repo, "rev-parse", "HEAD^{tree}")
    git(tagged_repo, "tag", "v13.0.5", tree)
    assert preflight(tagged_repo, "--tag", "v13.0.5") == 1
    assert "tag v13.0.5 names a tree, not a commit" in capsys.readouterr().err


def test_every_finding_is_listed_at_once(
    tagged_repo: Path, green: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    """A tag on a side branch, without notes, without CI: three errors in one run."""
    git(tagged_repo, "checkout", "-q", "-b", "side")
    commit_change(tagged_repo, "side work")
    git(tagged_repo, "tag", "cuda-pathfinder-v1.0.1")
    git(tagged_repo, "checkout", "-q", "main")
    assert preflight(tagged_repo, "--tag", "cuda-pathfinder-v1.0.1") == 1
    err = capsys.readouterr().err
    assert "is not reachable from main" in err
    assert "cuda_pathfinder/docs/source/release/1.0.1-notes.rst is missing" in err
    assert "no successful ci.yml run on main" in err
    assert err.count("error:") == 3


def test_origin_main_is_used_and_named_when_there_is_no_local_main(
    tagged_repo: Path, green: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    git(tagged_repo, "checkout", "-q", "--detach")
    git(tagged_repo, "branch", "-D", "main")
    git(tagged_repo, "checkout", "-q", "-b", "side")
    commit_change(tagged_repo, "side")
    git(tagged_repo, "tag", "cuda-core-v0.3.1")
    assert preflight(tagged_repo, "--tag", "cuda-core-v0.3.1", "--dry-run") == 1
    assert "is not reachable from origin/main" in capsys.readouterr().err


def test_empty_release_notes_are_refused(
    tagged_repo: Path, green: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    notes = tagged_repo / "cuda_python" / "docs" / "source" / "release" / "13.1.0-notes.rst"
    notes.write_text("\n  \n")
    (tagged_repo / "cuda_bindings" / "docs" / "source" / "release" / "13.1.0-notes.rst").write_text("Notes.\n")
    git(tagged_repo, "add", "-A")
    git(tagged_repo, "commit", "-q", "-m", "notes")
    git(tagged_repo, "tag", "v13.1.0")
    green.add_run(git(tagged_repo, "rev-parse", "HEAD"))
    assert preflight(tagged_repo, "--tag", "v13.1.0") == 1
    err = capsys.readouterr().err
    assert "cuda_python/docs/source/release/13.1.0-notes.rst is empty" in err
    assert "cuda_bindings" not in err


def test_post_release_uses_the_base_versions_notes(tagged_repo: Path, green: FakeGitHub) -> None:
    git(tagged_repo, "tag", "v13.0.0.post1")
    assert preflight(tagged_repo, "--tag", "v13.0.0.post1") == 0


@pytest.mark.parametrize("pre", ["a1", "b2", "rc1"])
def test_a_pre_release_uses_the_final_versions_notes(
    tagged_repo: Path, green: FakeGitHub, pre: str, capsys: pytest.CaptureFixture[str]
) -> None:
    git(tagged_repo, "tag", f"cuda-pathfinder-v1.0.0{pre}")
    assert preflight(tagged_repo, "--tag", f"cuda-pathfinder-v1.0.0{pre}") == 0, "1.0.0-notes.rst is there"
    git(tagged_repo, "tag", f"cuda-pathfinder-v1.1.0{pre}")
    assert preflight(tagged_repo, "--tag", f"cuda-pathfinder-v1.1.0{pre}") == 1
    assert "cuda_pathfinder/docs/source/release/1.1.0-notes.rst is missing" in capsys.readouterr().err


def test_failed_ci_run_does_not_count(
    tagged_repo: Path, github_env: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    head = git(tagged_repo, "rev-parse", "HEAD")
    github_env.add_run(head, conclusion="failure")
    github_env.add_run(head, branch="feature")
    assert preflight(tagged_repo, "--tag", "cuda-core-v0.3.0", "--dry-run") == 1
    assert f"no successful ci.yml run on main (push) for {head[:12]}" in capsys.readouterr().err


def test_a_published_release_is_refused_a_draft_is_reused(
    tagged_repo: Path, green: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    green.add_release("v13.0.0", draft=True)
    assert preflight(tagged_repo, "--tag", "v13.0.0") == 0
    assert "draft to reuse" in capsys.readouterr().out
    green.add_release("cuda-pathfinder-v1.0.0", draft=False)
    assert preflight(tagged_repo, "--tag", "cuda-pathfinder-v1.0.0") == 1
    assert "a published GitHub release of cuda-pathfinder-v1.0.0 exists" in capsys.readouterr().err


def test_full_release_refuses_without_a_token(
    tagged_repo: Path, green: FakeGitHub, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GITHUB_TOKEN")
    assert preflight(tagged_repo, "--tag", "v13.0.0") == 1
    err = capsys.readouterr().err
    assert "ci-gate: GITHUB_TOKEN (or GH_TOKEN) is not set: set GITHUB_TOKEN" in err
    assert "published-release:" in err


def test_github_out_of_reach_refuses_a_full_release_and_is_noted_in_a_dry_run(
    tagged_repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from cuda_ci.infra.index import free_port

    monkeypatch.setenv("GITHUB_API_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("GITHUB_REPOSITORY", "NVIDIA/cuda-python")
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_unreachable_token_value")
    monkeypatch.setattr("cuda_ci.infra.httpclient.DEFAULT_BACKOFF", 0.01)
    assert preflight(tagged_repo, "--tag", "v13.0.0") == 1
    err = capsys.readouterr().err
    assert "GitHub is out of reach" in err and "retry when GitHub answers" in err
    assert "ghs_unreachable_token_value" not in err
    assert preflight(tagged_repo, "--tag", "v13.0.0", "--dry-run", "--json") == 0
    found = result_document(capsys.readouterr().out, "preflight")
    assert found["ci_gate"]["status"] == "not-verified"
    assert {c["status"] for c in found["checks"] if c["check"] in ("ci-gate", "published-release")} == {"not-verified"}


def test_github_retries_502_and_429_with_retry_after(
    tagged_repo: Path, green: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    green.fail("GET", r"/runs$", 502, times=1)
    green.fail("GET", r"/releases/tags/", 429, times=1, **{"Retry-After": "0"})
    assert preflight(tagged_repo, "--tag", "v13.0.0") == 0
    err = capsys.readouterr().err
    assert "HTTP 502; retry 1 of 4" in err
    assert "HTTP 429, rate limited; retry 1 of 4 in 0.0 s" in err


def test_a_release_whose_sibling_is_not_on_the_target_index_is_refused(
    tagged_repo: Path, green: FakeGitHub, sibling_index: SimpleIndex, capsys: pytest.CaptureFixture[str]
) -> None:
    sibling_index.files["cuda-pathfinder"] = ["cuda_pathfinder-2.0.0-py3-none-any.whl"]  # outside >=1.0,<2
    assert preflight(tagged_repo, "--tag", "v13.0.0") == 1
    err = capsys.readouterr().err
    for index in ("testpypi", "pypi"):
        assert (
            f"sibling-on-index: cuda-pathfinder<2,>=1.0 is not on {index} ({sibling_index.simple_url}; "
            "it has 2.0.0): release cuda-pathfinder first"
        ) in err
    assert preflight(tagged_repo, "--tag", "v13.0.0", "--dry-run", "--json") == 0
    checks = result_document(capsys.readouterr().out, "preflight")["checks"]
    assert [c for c in checks if c["check"] == "sibling-on-index"] == [
        {
            "check": "sibling-on-index",
            "status": "not-verified",
            "detail": "cuda-pathfinder<2,>=1.0: built from the same commit into the embedded index",
        }
    ]
    assert preflight(tagged_repo, "--tag", "cuda-pathfinder-v1.0.0", "--json") == 0, "no sibling to require"
    assert "sibling-on-index" not in capsys.readouterr().out
