"""cuda-ci against a GitHub stand-in that behaves as GitHub documents itself and validates every request
against GitHub's own OpenAPI description: rate limits, non-idempotent writes, redirects, the right
commit and "Latest", pacing, 404s, drafts and content types (issue 15's nine behaviours)."""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from cuda_ci.cli.app import main
from cuda_ci.infra.errors import CudaCiError
from cuda_ci.infra.github import GitHub
from cuda_ci.infra.httpclient import HttpClient, RateLimited
from cuda_ci.publish.releases import GitHubReleases
from tests.fakes.github import FakeGitHub
from tests.helpers import folder_from, git, tagged_clone

pytestmark = pytest.mark.e2e
TAG = "v13.0.0"


@pytest.fixture(scope="module")
def built(template_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One validated release folder of cuda-bindings + cuda-python (the unit that may be "Latest")."""
    root = tmp_path_factory.mktemp("github-api")
    repo = tagged_clone(template_repo, root, "cuda-pathfinder-v1.0.0", TAG)
    return folder_from(repo, root, "release", "--tag", TAG, "--dry-run", "--no-publish"), repo


@pytest.fixture
def folder(built: tuple[Path, Path], tmp_path: Path) -> Path:
    out = tmp_path / "release"
    shutil.copytree(built[0], out)
    return out


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitHub]:
    github = FakeGitHub(tokens={"ghs_read_only": "read", "ghs_other_repos": "none"}).start()
    try:
        for key, value in github.environ().items():
            monkeypatch.setenv(key, value)
        monkeypatch.delenv("GH_TOKEN", raising=False)
        monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
        yield github
    finally:
        github.stop()  # fails the test if any request broke GitHub's description


def _publish(folder: Path, repo: Path, target: str) -> int:
    return main(["publish", "--release-dir", str(folder), "--target", target, "--repo", str(repo)])


def _client(fake: FakeGitHub, sleeps: list[float] | None = None, **kwargs: str | None) -> tuple[GitHub, list[str]]:
    said: list[str] = []
    http = HttpClient(on_retry=said.append, sleep=sleeps.append if sleeps is not None else HttpClient().sleep)
    token = kwargs.get("token", fake.token)
    return GitHub(fake.api_url, kwargs.get("repository") or fake.repository, token, http), said


def _commit(folder: Path) -> str:
    return str(json.loads((folder / "release-manifest.json").read_text())["commit"])


# 1. Rate limits ---------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [403, 429])
def test_a_primary_rate_limit_is_waited_out_until_its_reset(fake: FakeGitHub, status: int) -> None:
    fake.add_run("a" * 40)
    fake.rate_limit(status=status, reset_in=1.0)
    github, said = _client(fake)
    assert len(github.successful_ci_runs("a" * 40)) == 1
    assert len(fake.limited) == 1, "the retry came after x-ratelimit-reset: GitHub did not refuse it again"
    assert f"HTTP {status}, rate limited; retry 1 of 4" in said[0]


def test_a_secondary_rate_limit_waits_retry_after_uncapped_or_a_minute(fake: FakeGitHub) -> None:
    fake.fail("GET", r"/runs$", 429, times=1, **{"retry-after": "120"})
    sleeps: list[float] = []
    github, _ = _client(fake, sleeps)
    github.successful_ci_runs("a" * 40)
    fake.secondary_limit(status=403, retry_after=None)  # "wait at least one minute"
    github.successful_ci_runs("a" * 40)
    assert sleeps == [120.0, 60.0], "retry-after is obeyed beyond 60 s; without it, at least a minute"


def test_a_403_without_rate_limit_signals_is_a_permission_error_at_once(fake: FakeGitHub) -> None:
    fake.fail("GET", r"/runs$", 403, times=1)
    github, said = _client(fake)
    with pytest.raises(CudaCiError, match="answered 403"):
        github.successful_ci_runs("a" * 40)
    assert said == [] and len(fake.log) == 1


def test_a_rate_limit_longer_than_the_run_waits_names_when_to_rerun(fake: FakeGitHub) -> None:
    fake.rate_limit(reset_in=600)
    github, _ = _client(fake)
    github.http.max_wait = 30
    with pytest.raises(RateLimited, match=r"rate limited until \d\d:\d\d:\d\d UTC .*re-run after that time"):
        github.successful_ci_runs("a" * 40)


# 2. Writes are never repeated blindly --------------------------------------------------------


def test_an_upload_that_left_a_starter_asset_is_cleaned_and_redone(
    folder: Path, built: tuple[Path, Path], fake: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.upload_failures = 1
    assert _publish(folder, built[1], "github") == 0, capsys.readouterr().err
    assets = fake.assets[fake.release(TAG)["id"]]
    assert {a["state"] for a in assets} == {"uploaded"}
    assert len({a["name"] for a in assets}) == len(assets), "one asset per name"
    failed = [r for r in fake.log if r.host == "uploads" and r.status == 502]
    assert len(failed) == 1
    assert [r.status for r in fake.log if r.method == "DELETE"] == [204], "the starter asset was deleted"
    assert not [r for r in fake.log if r.status == 422], "never re-uploaded over the starter asset"


def test_a_lost_create_answer_reuses_the_draft_instead_of_making_a_second(fake: FakeGitHub) -> None:
    fake.lose_answer("POST", r"/releases$")
    github, _ = _client(fake)
    release = GitHubReleases(github, sleep=lambda s: None).create_draft(TAG, TAG, "", False, "c" * 40)
    assert [r["id"] for r in fake.releases] == [release["id"]], "exactly one draft"
    assert len([r for r in fake.log if r.method == "POST"]) == 1


def test_a_create_refused_for_a_published_release_is_never_used(fake: FakeGitHub) -> None:
    fake.add_release(TAG, draft=False)
    github, _ = _client(fake)
    with pytest.raises(CudaCiError, match="a published release of the tag exists; assets of a published release"):
        GitHubReleases(github, sleep=lambda s: None).create_draft(TAG, TAG, "", False, "c" * 40)
    assert [r.status for r in fake.log if r.method == "POST"] == [422]


def test_a_lost_delete_answer_is_not_a_failure(fake: FakeGitHub) -> None:
    release = fake.add_release(TAG, draft=True)
    fake.add_asset(release, "a.txt", b"old")
    fake.lose_answer("DELETE", r"/releases/assets/")
    github, _ = _client(fake)
    draft = github.release(release["id"])
    assert draft is not None
    releases = GitHubReleases(github, sleep=lambda s: None)
    releases.delete(releases.assets(draft)[0])
    assert [r.status for r in fake.log if r.method == "DELETE"] == [502, 404], "retried; its 404 means done"
    assert fake.assets[release["id"]] == []


def test_a_lost_undraft_answer_is_read_back(fake: FakeGitHub) -> None:
    release = fake.add_release(TAG, draft=True, target_commitish="c" * 40)
    fake.lose_answer("PATCH", r"/releases/\d+$")
    github, _ = _client(fake)
    draft = github.release(release["id"])
    assert draft is not None
    published = GitHubReleases(github, sleep=lambda s: None).publish(draft, latest=True)
    assert published["draft"] is False
    assert len([r for r in fake.log if r.method == "PATCH"]) == 1, "read back, not sent again"


# 3. Redirects ------------------------------------------------------------------------------------


@pytest.mark.parametrize("via", [302, 307, 200])
def test_downloads_follow_302_and_307_without_the_token_or_stream_a_200(
    fake: FakeGitHub, tmp_path: Path, via: int
) -> None:
    data = bytes(range(256)) * 4000
    fake.add_asset(fake.add_release(TAG, draft=False), "big.bin", data)
    fake.download_via = via  # type: ignore[assignment]
    github, _ = _client(fake)
    release = github.published_release(TAG)
    assert release is not None
    path = github.download_asset(github.assets(release)[0], tmp_path)
    assert path.read_bytes() == data
    storage = [r for r in fake.log if r.host == "storage"]
    assert len(storage) == (0 if via == 200 else 1)
    assert all(r.header("Authorization") is None for r in storage), "the token never goes to another host"


def test_a_renamed_repository_301_repeats_the_post_with_its_json_body(fake: FakeGitHub) -> None:
    fake.renamed_from = "NVIDIA/cuda-python-old"
    github, _ = _client(fake, repository="NVIDIA/cuda-python-old")
    release = GitHubReleases(github, sleep=lambda s: None).create_draft(TAG, TAG, "notes", False, "c" * 40)
    posts = [r for r in fake.log if r.method == "POST"]
    assert [r.status for r in posts] == [301, 201]
    assert posts[1].path == "/repos/NVIDIA/cuda-python/releases" and posts[1].json["tag_name"] == TAG
    assert posts[1].header("Authorization") == f"Bearer {fake.token}", "same origin: the token is kept"
    assert release["draft"] is True


# 4, 5, 6, 9. The right commit, "Latest", pacing, JSON -------------------------------------------


def test_publishing_names_the_built_commit_makes_latest_paces_writes_and_sends_json(
    folder: Path, built: tuple[Path, Path], fake: FakeGitHub
) -> None:
    assert _publish(folder, built[1], "github") == 0
    fake.new_run()
    assert _publish(folder, built[1], "finalize") == 0
    commit = _commit(folder)
    create = next(r for r in fake.log if r.method == "POST" and r.host == "api")
    assert create.json["target_commitish"] == commit
    assert fake.tags[TAG] == commit != fake.default_branch_head, "GitHub made the tag at the built commit"
    patch = next(r for r in fake.log if r.method == "PATCH")
    assert patch.json == {"draft": False, "make_latest": "true"}
    assert fake.latest_id == fake.release(TAG)["id"]
    assert fake.limited == [], "writes a second apart: GitHub's secondary limit never answered"
    writes = [r for r in fake.log if r.method != "GET"]
    assert len(writes) > 5
    for write in writes:
        expected = "application/octet-stream" if write.host == "uploads" else "application/json"
        assert write.header("Content-Type") == expected or write.method == "DELETE"


def test_a_backport_never_takes_latest(folder: Path, built: tuple[Path, Path], fake: FakeGitHub) -> None:
    newer = fake.add_release("v13.0.1", draft=False)
    fake.latest_id = newer["id"]
    assert _publish(folder, built[1], "github") == 0
    fake.new_run()
    assert _publish(folder, built[1], "finalize") == 0
    assert next(r for r in fake.log if r.method == "PATCH").json["make_latest"] == "false"
    assert fake.latest_id == newer["id"]
    log = (folder / "publish-log.json").read_text()
    assert "(latest: no)" in log


# 7. A 404 is not "absent" --------------------------------------------------------------------------


def test_verify_reads_a_public_release_without_a_token_and_names_a_hidden_repository(
    folder: Path,
    built: tuple[Path, Path],
    fake: FakeGitHub,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert _publish(folder, built[1], "github") == 0
    fake.new_run()
    assert _publish(folder, built[1], "finalize") == 0
    fake.download_via = 307
    monkeypatch.delenv("GITHUB_TOKEN")
    start = len(fake.log)
    assert main(["verify", "--tag", TAG, "--from-github"]) == 0, capsys.readouterr().err
    assert all(r.header("Authorization") is None for r in fake.log[start:]), "a public release needs no token"
    fake.private = True
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_other_repos")
    assert main(["verify", "--tag", TAG, "--from-github"]) == 1
    err = capsys.readouterr().err
    assert "NVIDIA/cuda-python answers 404: it does not exist, or it is private and this token cannot see it" in err
    assert "no published GitHub release" not in err
    monkeypatch.setenv("GITHUB_TOKEN", fake.token)
    assert main(["verify", "--tag", "v13.0.2", "--from-github"]) == 1
    assert f"no published GitHub release of v13.0.2 in {fake.repository}" in capsys.readouterr().err


def test_preflight_names_a_repository_hidden_from_the_token(
    tagged_repo: Path, fake: FakeGitHub, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.private = True
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_other_repos")
    assert main(["preflight", "--tag", "cuda-pathfinder-v1.0.0", "--repo", str(tagged_repo)]) == 1
    err = capsys.readouterr().err
    assert "GitHub repository NVIDIA/cuda-python answers 404: it does not exist, or it is private" in err
    assert "give the token read access to the repository (contents: read)" in err


# 8. Several drafts of one tag ----------------------------------------------------------------------


def test_several_drafts_of_the_tag_are_refused_before_any_write(
    folder: Path, built: tuple[Path, Path], fake: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.add_release(TAG, draft=True)
    fake.add_release(TAG, draft=True)
    assert _publish(folder, built[1], "github") == 1
    err = capsys.readouterr().err
    assert "2 draft releases of v13.0.0 exist on GitHub NVIDIA/cuda-python" in err
    assert "delete the extra drafts on GitHub and run again" in err
    assert fake.writes == []


def test_a_second_draft_made_by_a_racing_run_is_caught(fake: FakeGitHub) -> None:
    fake.racing_run = True
    github, _ = _client(fake)
    with pytest.raises(CudaCiError, match=r"2 draft releases of v13\.0\.0 exist on GitHub"):
        GitHubReleases(github, sleep=lambda s: None).create_draft(TAG, TAG, "", False, "c" * 40)


def test_preflight_refuses_several_drafts_of_the_tag(
    tagged_repo: Path, fake: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.add_run(git(tagged_repo, "rev-parse", "HEAD"))
    fake.add_release("cuda-pathfinder-v1.0.0", draft=True)
    fake.add_release("cuda-pathfinder-v1.0.0", draft=True)
    assert main(["preflight", "--tag", "cuda-pathfinder-v1.0.0", "--repo", str(tagged_repo)]) == 1
    err = capsys.readouterr().err
    assert "published-release: 2 draft releases of cuda-pathfinder-v1.0.0 exist" in err
    assert "delete the extra drafts on GitHub; publish uses the one that is left" in err


def test_a_token_without_push_sees_no_drafts_and_creates_none(
    folder: Path,
    built: tuple[Path, Path],
    fake: FakeGitHub,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake.add_release(TAG, draft=True)
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_read_only")
    assert _publish(folder, built[1], "github") == 1
    assert "answered 403" in capsys.readouterr().err
    assert len(fake.releases) == 1, "no second draft appeared"


# The stand-in itself ---------------------------------------------------------------------------


def test_the_stand_in_refuses_what_githubs_description_refuses(fake: FakeGitHub) -> None:
    form = urllib.request.Request(
        f"{fake.api_url}/repos/{fake.repository}/releases",
        data=b"tag_name=v1",
        method="POST",
        headers={"Authorization": f"Bearer {fake.token}"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(form, timeout=10)
    refused.value.close()
    assert refused.value.code == 422
    assert "Content for the following mimetype not found: application/x-www-form-urlencoded" in fake.violations[0]
    fake.violations.clear()


# Concurrent and failed publishes ------------------------------------------------------------------


def test_a_draft_made_by_a_run_that_failed_is_adopted_by_the_next(
    folder: Path, built: tuple[Path, Path], fake: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.racing_run = True  # another run makes a second draft of the tag right after this run's
    assert _publish(folder, built[1], "github") == 1
    err = capsys.readouterr().err
    assert f"error: 2 draft releases of {TAG} exist on GitHub" in err
    [ours, theirs] = [r["id"] for r in fake.releases]
    assert f"this run's draft of {TAG} (release id {ours}) is recorded in publish-log.json" in err
    log = json.loads((folder / "publish-log.json").read_text())["entries"]
    assert [e["detail"] for e in log if e["action"] == "created-draft"] == [
        f"{fake.release(TAG)['html_url']} (release id {ours})"
    ]

    fake.racing_run = False
    fake.new_run()
    assert _publish(folder, built[1], "github") == 0, "the recorded draft is adopted, not refused"
    err = capsys.readouterr().err
    assert (
        f"1 more draft release(s) of {TAG} exist on GitHub" in err and f"(release id {ours}); delete the others" in err
    )
    assert len(fake.releases) == 2, "no third draft"
    assert fake.assets[theirs] == [] and len(fake.assets[ours]) > 3, "the assets went to this folder's draft"
    fake.new_run()
    assert _publish(folder, built[1], "finalize") == 0
    assert next(r for r in fake.releases if r["id"] == ours)["draft"] is False


def test_a_second_publish_of_one_folder_refuses_at_once_naming_the_first(
    folder: Path, built: tuple[Path, Path], fake: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    from cuda_ci.publish.run import publish_lock

    with publish_lock(folder):  # the first publish, still running
        assert _publish(folder, built[1], "github") == 1
    err = capsys.readouterr().err
    assert f"error: another cuda-ci publish of {folder} is running (pid " in err and "wait for it to finish" in err
    assert fake.writes == [] and fake.releases == [], "the second run did nothing"
    with publish_lock(folder):
        pass  # the lock went with the process holding it: the next publish may take it
    (folder / "publish.lock").unlink()
    (folder / "publish.lock").symlink_to(folder.parent / "elsewhere")  # planted in the artifact
    assert _publish(folder, built[1], "github") == 1
    assert f"error: {folder / 'publish.lock'} is a symbolic link" in capsys.readouterr().err
    assert not (folder.parent / "elsewhere").exists() and fake.writes == []
