"""Release runs a release manager can repeat and rehearse: re-runs of a finished or half-finished
publish, snapshots that never take a release's names, docs required for publish, rehearsals."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from cuda_ci.cli.app import main
from cuda_ci.infra.index import EmbeddedIndex
from tests.fakes.github import FakeGitHub
from tests.helpers import commit_change, git, result_document

pytestmark = pytest.mark.e2e
TAG = "cuda-pathfinder-v1.0.0"


def _manifest(folder: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / "release-manifest.json").read_text())
    return data


def _log(folder: Path) -> list[dict[str, str]]:
    entries: list[dict[str, str]] = json.loads((folder / "publish-log.json").read_text())["entries"]
    return entries


def _publish(folder: Path, repo: Path, *extra: str) -> int:
    return main(["publish", "--release-dir", str(folder), "--repo", str(repo), *extra])


def _held(indexes: dict[str, EmbeddedIndex]) -> dict[str, float]:
    return {f"{i.name}/{p.name}": p.stat().st_mtime for i in indexes.values() for p in i.root.iterdir()}


def test_a_finished_release_published_again_is_a_verified_no_op(
    tagged_repo: Path,
    tmp_path: Path,
    release_env: FakeGitHub,
    index_pair: dict[str, EmbeddedIndex],
    capsys: pytest.CaptureFixture[str],
) -> None:
    github = release_env
    github.add_run(git(tagged_repo, "rev-parse", "HEAD"))
    out = tmp_path / "rel"
    assert main(["release", "--tag", TAG, "--repo", str(tagged_repo), "--out", str(out)]) == 0
    writes, held, before = len(github.writes), _held(index_pair), len(_log(out))
    capsys.readouterr()

    for target in ("all", "github", "finalize", "pypi"):
        assert _publish(out, tagged_repo, "--target", target) == 0, capsys.readouterr().err
    assert len(github.writes) == writes, "zero GitHub writes"
    assert _held(index_pair) == held, "zero uploads: the indexes hold the same files, untouched"
    again = _log(out)[before:]
    assert not [e for e in again if e["action"] in ("uploaded", "created-draft", "deleted", "published")]
    done = [e["target"] for e in again if e["action"] == "nothing-to-do"]
    assert done == ["github", "testpypi", "pypi", "finalize", "github", "finalize", "pypi"]
    printed = capsys.readouterr().out
    assert "    github: nothing to do" in printed and "testpypi: nothing to do, installed back" in printed

    # A published release holding another file under this release's name is refused, never replaced.
    release = github.release(TAG)
    [asset] = [a for a in github.assets[release["id"]] if a["name"] == "SHA256SUMS"]
    asset["digest"] = "sha256:" + "e" * 64
    local = (out / "SHA256SUMS").read_bytes()
    assert _publish(out, tagged_repo, "--target", "github") == 1
    err = capsys.readouterr().err
    assert f"error: SHA256SUMS differs on the published release of {TAG}: it holds sha256:{'e' * 64}" in err
    assert f"this release folder's has sha256:{__import__('hashlib').sha256(local).hexdigest()}" in err
    assert "assets of a published release are never replaced; nothing was uploaded" in err
    assert len(github.writes) == writes


def test_a_half_finished_release_is_completed(
    tagged_repo: Path,
    tmp_path: Path,
    release_env: FakeGitHub,
    index_pair: dict[str, EmbeddedIndex],
    capsys: pytest.CaptureFixture[str],
) -> None:
    github = release_env
    github.add_run(git(tagged_repo, "rev-parse", "HEAD"))
    out = tmp_path / "rel"
    assert main(["release", "--tag", TAG, "--no-publish", "--repo", str(tagged_repo), "--out", str(out)]) == 0
    assert _publish(out, tagged_repo, "--target", "github") == 0
    assert _publish(out, tagged_repo, "--target", "testpypi") == 0
    before = len(_log(out))
    capsys.readouterr()

    assert _publish(out, tagged_repo, "--target", "all") == 0
    printed = capsys.readouterr().out
    assert "    github: nothing to do\n" in printed and "testpypi: nothing to do, installed back" in printed
    assert "      pypi: uploaded 2 file(s), installed back" in printed and "  finalize: published" in printed
    again = _log(out)[before:]
    assert [e["target"] for e in again if e["action"] == "uploaded"] == ["pypi", "pypi"]
    assert github.release(TAG)["draft"] is False
    assert sorted(p.name for p in index_pair["pypi"].root.iterdir()) == sorted(p.name for p in (out / "dist").iterdir())


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No token, and GitHub out of reach: snapshots and rehearsals never need it."""
    for name in ("GITHUB_TOKEN", "GH_TOKEN", "CUDA_CI_TESTPYPI_TOKEN", "CUDA_CI_PYPI_TOKEN", "GITHUB_ACTIONS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GITHUB_API_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("GITHUB_REPOSITORY", "NVIDIA/cuda-python")
    monkeypatch.setattr("cuda_ci.infra.httpclient.DEFAULT_BACKOFF", 0.01)


@pytest.mark.usefixtures("offline")
def test_a_snapshot_at_a_tagged_commit_never_takes_the_release_s_names(
    tagged_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    head = git(tagged_repo, "rev-parse", "HEAD")
    assert git(tagged_repo, "rev-parse", "v13.0.0^{commit}") == head, "HEAD carries the v13.0.0 tag"
    out = tmp_path / "snap"
    argv = ["release", "--snapshot", "--component", "cuda-bindings", "--repo", str(tagged_repo), "--out", str(out)]
    assert main(argv) == 0
    manifest = _manifest(out)
    version = f"13.0.1.dev0+g{head[:7]}"
    assert (manifest["snapshot"], manifest["version"], manifest["version_source"]) == (True, version, "pretend")
    names = [f["name"] for f in manifest["files"]]
    assert not [n for n in names if "13.0.0" in n], "no file has a release's name"
    assert {n for n in names if n.endswith(".tar.gz") and n.startswith("cuda_")} == {
        f"cuda_bindings-{version}.tar.gz",
        f"cuda_python-{version}.tar.gz",
    }
    # The metapackage pins the bindings of its own (snapshot) version, as a release does.
    install = [v for v in manifest["validation"] if v["check"] == "install"]
    assert install and all(v["status"] == "passed" for v in install)
    stand_in = json.loads((out / "github-release" / "release.json").read_text())
    assert stand_in["tag_name"] == f"snapshot-cuda-bindings-{head[:7]}"
    capsys.readouterr()

    assert _publish(out, tagged_repo) == 1
    err = capsys.readouterr().err
    assert f"error: {out} is a snapshot (cuda-bindings {version}): a snapshot's files never go to a real index" in err
    assert "publish it with --dry-run" in err and "publish refused: nothing was uploaded" in err


@pytest.mark.usefixtures("offline")
def test_publish_needs_the_docs_stage_built(
    tagged_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "rel"
    assert main(["build", "--tag", TAG, "--repo", str(tagged_repo), "--out", str(out), "--json"]) == 0
    built = result_document(capsys.readouterr().out, "build")
    assert built["release_dir"] == str(out) and built["ci_gate"] == {"status": "not-verified", "run_url": None}
    assert main(["validate", "--release-dir", str(out), "--repo", str(tagged_repo), "--json"]) == 0
    checked = result_document(capsys.readouterr().out, "validate")["checks"]
    assert {"twine", "install", "import"} <= {c["check"] for c in checked}
    assert _publish(out, tagged_repo, "--dry-run") == 1
    err = capsys.readouterr().err
    assert f"error: the docs of {out} were not built: run the docs stage (`cuda-ci docs --release-dir {out}`)" in err
    assert not (out / "github-release").exists() and not (out / "index").exists()

    capsys.readouterr()
    assert main(["docs", "--release-dir", str(out), "--repo", str(tagged_repo), "--json"]) == 0
    assert result_document(capsys.readouterr().out, "docs")["docs"] == [str(out / "docs" / "cuda-pathfinder")]
    assert _manifest(out)["docs"] == {"status": "built", "detail": "docs/cuda-pathfinder"}
    shutil.rmtree(out / "docs")  # e.g. an artifact that lost its docs/ on the way between jobs
    assert _publish(out, tagged_repo, "--dry-run") == 1
    err = capsys.readouterr().err
    assert f"error: docs/cuda-pathfinder/index.html missing from {out}, although the docs were built" in err

    assert main(["docs", "--release-dir", str(out), "--repo", str(tagged_repo)]) == 0
    assert _publish(out, tagged_repo, "--dry-run") == 0
    assert _publish(out, tagged_repo, "--dry-run") == 0, "a dry-run re-run is a no-op too"
    assert [e["target"] for e in _log(out) if e["action"] == "nothing-to-do"] == [
        "github",
        "testpypi",
        "pypi",
        "finalize",
    ]


@pytest.mark.usefixtures("offline")
def test_a_folder_whose_docs_failed_is_refused_naming_the_docs_stage(
    tagged_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index = tagged_repo / "cuda_pathfinder" / "docs" / "source" / "index.rst"
    index.write_text(index.read_text() + "\nSee :doc:`no-such-page`.\n")
    git(tagged_repo, "commit", "-qam", "docs that warn")
    out = tmp_path / "snap"
    argv = ["release", "--snapshot", "--component", "cuda-pathfinder", "--repo", str(tagged_repo), "--out", str(out)]
    assert main(argv) == 1
    # Docs ran beside validate and failed: their outcome is kept beside the manifest (record-docs never ran).
    assert "docs" not in _manifest(out)
    docs = json.loads((out / "docs-outcome.json").read_text())
    assert docs["status"] == "failed" and "Sphinx build of cuda-pathfinder docs failed" in docs["detail"]
    capsys.readouterr()
    assert _publish(out, tagged_repo, "--dry-run") == 1
    err = capsys.readouterr().err
    assert f"error: the docs stage failed for {out} (Sphinx build of cuda-pathfinder docs failed" in err
    assert f"re-run it (`cuda-ci docs --release-dir {out}`)" in err
    assert not (out / "github-release").exists()


@pytest.mark.usefixtures("offline")
def test_a_rehearsal_of_a_tag_that_does_not_exist_yet(
    tagged_repo: Path, tmp_path: Path, github_env: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    notes = tagged_repo / "cuda_pathfinder" / "docs" / "source" / "release" / "1.1.0-notes.rst"
    notes.write_text("cuda-pathfinder 1.1.0\n=====================\n\nNew finders.\n")
    git(tagged_repo, "add", "-A")
    git(tagged_repo, "commit", "-qm", "notes for 1.1.0")
    head = git(tagged_repo, "rev-parse", "HEAD")
    github_env.add_run(head)  # CI on main is green for main's head: the gate runs as in a release
    tag = "cuda-pathfinder-v1.1.0"

    assert main(["preflight", "--tag", tag, "--dry-run", "--rehearse", "--repo", str(tagged_repo), "--json"]) == 0
    found = result_document(capsys.readouterr().out, "preflight")
    checks = {c["check"]: c["status"] for c in found["checks"]}
    assert checks["tag"] == "rehearsal" and found["rehearsal"] is True and found["ref"] == "main"
    assert {checks[c] for c in ("reachable-from-main", "release-notes", "ci-gate", "published-release")} == {"passed"}

    out = tmp_path / "rehearsal"
    argv = ["release", "--tag", tag, "--dry-run", "--rehearse", "--repo", str(tagged_repo), "--out", str(out)]
    assert main(argv) == 0
    manifest = _manifest(out)
    assert (manifest["tag"], manifest["version"], manifest["commit"]) == (tag, "1.1.0", head)
    assert (manifest["rehearsal"], manifest["snapshot"], manifest["version_source"]) == (True, False, "pretend")
    assert manifest["ci_gate"]["status"] == "verified"
    assert sorted(f["name"] for f in manifest["files"] if f["kind"] in ("sdist", "wheel")) == [
        "cuda_pathfinder-1.1.0-py3-none-any.whl",
        "cuda_pathfinder-1.1.0.tar.gz",
    ]
    notes_logged = json.loads((out / "run-log.json").read_text())["notes"]
    assert any(n.startswith(f"preflight tag: rehearsal ({tag} does not exist yet: main") for n in notes_logged)
    assert "cuda_pathfinder-1.1.0.tar.gz" in [p.name for p in (out / "index" / "pypi").iterdir()]
    assert github_env.writes == [], "a rehearsal writes nothing to GitHub"
    assert git(tagged_repo, "tag", "--list", tag) == "", "and makes no tag"
    capsys.readouterr()

    assert _publish(out, tagged_repo) == 1
    err = capsys.readouterr().err
    assert f"error: {out} is a rehearsal (cuda-pathfinder 1.1.0 as {tag} at {head[:12]})" in err
    assert "a rehearsal's files never go to a real index or GitHub" in err
    assert github_env.writes == []


@pytest.mark.usefixtures("offline")
def test_a_rehearsal_of_an_existing_tag_builds_only_that_tag_s_commit(
    tagged_repo: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    tagged = git(tagged_repo, "rev-parse", f"{TAG}^{{commit}}")
    later = commit_change(tagged_repo, "main moves on after the tag")
    rehearse = ["--tag", TAG, "--dry-run", "--rehearse", "--repo", str(tagged_repo)]
    assert main(["preflight", *rehearse]) == 1
    err = capsys.readouterr().err
    assert f"tag: tag {TAG} already exists at {tagged[:12]}, but --ref main is {later[:12]}" in err
    assert f"builds that tag's commit (--ref {TAG})" in err
    out = tmp_path / "never"
    assert main(["release", *rehearse, "--out", str(out)]) == 1
    assert "already exists at" in capsys.readouterr().err and not out.exists()
    assert main(["build", "--tag", TAG, "--rehearse", "--repo", str(tagged_repo), "--out", str(out)]) == 1
    assert f"already exists at {tagged[:12]}, but --ref main" in capsys.readouterr().err and not out.exists()

    assert main(["preflight", *rehearse, "--ref", TAG, "--json"]) == 0
    found = result_document(capsys.readouterr().out, "preflight")
    [tag_check] = [c for c in found["checks"] if c["check"] == "tag"]
    assert tag_check["status"] == "rehearsal"
    assert tag_check["detail"] == f"{TAG} exists at {TAG} ({tagged[:12]}): rehearsed there, as if not yet released"
    assert found["commit"] == tagged


@pytest.mark.usefixtures("offline")
def test_a_rehearsal_ref_off_main_or_naming_nothing_is_refused(
    tagged_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    git(tagged_repo, "checkout", "-q", "-b", "side")
    side = commit_change(tagged_repo, "work off main")
    git(tagged_repo, "checkout", "-q", "main")
    rehearse = ["preflight", "--tag", "cuda-core-v0.3.1", "--dry-run", "--rehearse", "--repo", str(tagged_repo)]
    assert main([*rehearse, "--ref", "side"]) == 1
    err = capsys.readouterr().err
    assert f"reachable-from-main: --ref side ({side[:12]}) is not reachable from main" in err
    assert "release-notes: cuda_core/docs/source/release/0.3.1-notes.rst is missing at side" in err
    assert main([*rehearse, "--ref", "no-such-branch"]) == 1
    assert "error: ref: --ref 'no-such-branch' names no commit in" in capsys.readouterr().err
    assert main([*rehearse, "--ref", "a b"]) == 1
    assert "error: ref: --ref 'a b' is not a git ref: give a branch, a tag or a commit" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tag", TAG, "--rehearse"], "--rehearse needs --dry-run"),
        (["--snapshot", "--component", "cuda-core", "--rehearse", "--dry-run"], "exclude each other"),
        (["--tag", TAG, "--ref", "main", "--dry-run"], "--ref needs --rehearse"),
    ],
)
def test_rehearsal_usage_errors(
    tagged_repo: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["release", *args, "--repo", str(tagged_repo)]) == 2
    assert message in capsys.readouterr().err
