"""Whole release runs on the host runner: real git, builds, pypiservers and a loopback GitHub."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from cuda_ci.cli.app import main
from cuda_ci.infra.index import EmbeddedIndex
from cuda_ci.infra.manifest import sha256_of
from tests.fakes.github import FakeGitHub
from tests.helpers import git

pytestmark = pytest.mark.e2e


def _manifest(folder: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((folder / "release-manifest.json").read_text())


def _release(repo: Path, tag: str, out: Path, *extra: str) -> int:
    return main(["release", "--tag", tag, "--repo", str(repo), "--out", str(out), *extra])


def _assert_published(folder: Path, tag: str, github: FakeGitHub, indexes: dict[str, EmbeddedIndex]) -> None:
    manifest = _manifest(folder)
    dists = {f["name"]: f["sha256"] for f in manifest["files"] if f["kind"] in ("sdist", "wheel")}
    for index in indexes.values():
        held = {p.name: sha256_of(p) for p in index.root.iterdir() if p.name in dists}
        assert held == dists, f"{index.name} must hold exactly this release's files"
    assets = github.asset_names(tag)
    assert assets == sorted([f["name"] for f in manifest["files"]] + ["SHA256SUMS", "release-manifest.json"])
    assert github.release(tag)["draft"] is False
    assert manifest["ci_gate"]["status"] == "verified"
    assert manifest["ci_gate"]["run_url"].startswith("https://github.com/NVIDIA/cuda-python/actions/runs/")
    assert {v["status"] for v in manifest["validation"]} <= {"passed", "skipped"}
    checks = {v["check"] for v in manifest["validation"]}
    assert {
        "twine",
        "check-wheel-contents",
        "record",
        "install",
        "import",
        "sdist-builds-wheel",
        "expected-files",
    } <= checks
    run_log = json.loads((folder / "run-log.json").read_text())
    assert run_log["status"] == "succeeded"
    assert set(run_log["stages"]) == {"preflight", "build", "validate", "docs", "publish"}
    publish = [f"publish:{t}" for t in ("github", "testpypi", "pypi", "finalize")]
    assert [n["node"] for n in run_log["nodes"]][-5:] == ["record-docs", *publish], "the plan's order"
    assert {n["node"] for n in run_log["nodes"]} == {"preflight", "build", "validate", "docs", "record-docs", *publish}
    sums = subprocess.run(
        ["sha256sum", "-c", str(folder / "SHA256SUMS")],
        cwd=github_assets_dir(github, tag, folder),
        capture_output=True,
        text=True,
    )
    assert sums.returncode == 0, sums.stdout + sums.stderr


def github_assets_dir(github: FakeGitHub, tag: str, tmp: Path) -> Path:
    """The release's assets as a downloader gets them: flat, in one folder."""
    folder = tmp / "downloaded-assets"
    folder.mkdir(exist_ok=True)
    for asset in github.assets[github.release(tag)["id"]]:
        (folder / asset["name"]).write_bytes(github.blobs[asset["id"]])
    return folder


def test_full_releases_in_dependency_order(
    tagged_repo: Path,
    tmp_path: Path,
    release_env: FakeGitHub,
    index_pair: dict[str, EmbeddedIndex],
    capsys: pytest.CaptureFixture[str],
) -> None:
    github = release_env
    github.add_run(git(tagged_repo, "rev-parse", "HEAD"))

    # cuda-core first: its cuda-bindings is not on the indexes yet, so preflight refuses.
    assert _release(tagged_repo, "cuda-core-v0.3.0", tmp_path / "core-early") == 1
    err = capsys.readouterr().err
    assert "sibling-on-index: cuda-pathfinder<2,>=1.0 is not on testpypi" in err
    assert "sibling-on-index: cuda-bindings<14,>=13.0 is not on testpypi" in err  # through cu13
    assert not (tmp_path / "core-early").exists(), "preflight refusals build nothing"

    for tag in ("cuda-pathfinder-v1.0.0", "v13.0.0", "cuda-core-v0.3.0"):
        out = tmp_path / tag
        assert _release(tagged_repo, tag, out) == 0, capsys.readouterr().err
        _assert_published(out, tag, github, index_pair)

    bindings = _manifest(tmp_path / "v13.0.0")
    names = [f["name"] for f in bindings["files"]]
    assert any(n.startswith("cuda_python-13.0.0") for n in names)
    log = json.loads((tmp_path / "v13.0.0" / "publish-log.json").read_text())["entries"]
    uploads = [e["file"] for e in log if e["target"] == "pypi" and e["action"] == "uploaded"]
    assert uploads[0].startswith("cuda_bindings") and uploads[-1].startswith("cuda_python"), "bindings upload first"
    core_log = (tmp_path / "cuda-core-v0.3.0" / "publish-log.json").read_text()
    assert "verified-install" in core_log
    printed = capsys.readouterr()
    assert "cuda_core-0.3.0-cp3" in printed.out, "the compiled cuda-core wheel"
    assert github.token not in printed.out + printed.err


def test_resume_after_an_interrupted_github_upload(
    tagged_repo: Path, tmp_path: Path, release_env: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    github = release_env
    github.add_run(git(tagged_repo, "rev-parse", "HEAD"))
    out = tmp_path / "rel"
    assert _release(tagged_repo, "cuda-pathfinder-v1.0.0", out, "--no-publish") == 0
    assert (out / "docs" / "cuda-pathfinder" / "index.html").is_file()
    # The uploads host breaks off after the first asset (502, as GitHub documents), for longer than the tries last.
    github.uploads_allowed = 1
    code = main(["publish", "--release-dir", str(out), "--target", "github", "--repo", str(tagged_repo)])
    assert code == 1
    err = capsys.readouterr().err
    assert "failed 3 times (POST" in err and "HTTP 502; a write is not repeated blindly" in err
    assert "nothing half-made was left behind; run `cuda-ci publish --target github` again" in err
    assert "looked it up: not done; retry 2 of 2 in" in err
    uploaded = github.asset_names("cuda-pathfinder-v1.0.0")
    assert len(uploaded) == 1, "the starter assets the failed uploads left were deleted"

    github.uploads_allowed = None
    assert main(["publish", "--release-dir", str(out), "--target", "all", "--repo", str(tagged_repo)]) == 0
    names = github.asset_names("cuda-pathfinder-v1.0.0")
    assert len(names) == len(set(names)), "no duplicate assets"
    log = json.loads((out / "publish-log.json").read_text())["entries"]
    assert [e["action"] for e in log if e["target"] == "github" and e["file"] == uploaded[0]][-1] == "skipped"
    assert github.release("cuda-pathfinder-v1.0.0")["draft"] is False


def test_resume_after_an_interrupted_index_upload(
    tagged_repo: Path, tmp_path: Path, release_env: FakeGitHub, index_pair: dict[str, EmbeddedIndex]
) -> None:
    release_env.add_run(git(tagged_repo, "rev-parse", "HEAD"))
    out = tmp_path / "rel"
    assert _release(tagged_repo, "cuda-pathfinder-v1.0.0", out, "--no-publish") == 0
    # The connection dropped after the first file reached TestPyPI: the index holds just that one.
    first = sorted((out / "dist").iterdir())[0]
    (index_pair["testpypi"].root / first.name).write_bytes(first.read_bytes())
    assert main(["publish", "--release-dir", str(out), "--target", "testpypi", "--repo", str(tagged_repo)]) == 0
    log = json.loads((out / "publish-log.json").read_text())["entries"]
    actions = {e["file"]: e["action"] for e in log if e["target"] == "testpypi" and e["file"]}
    assert actions[first.name] == "skipped"
    assert [a for f, a in actions.items() if f != first.name] == ["uploaded"]
    assert sorted(p.name for p in index_pair["testpypi"].root.iterdir()) == sorted(
        p.name for p in (out / "dist").iterdir()
    )
    assert list(index_pair["pypi"].root.iterdir()) == [], "only the asked target is touched"
