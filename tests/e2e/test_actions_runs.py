"""A release as a GitHub Actions run page shows it: annotations, the job summary and step outputs.

One dry-run of cuda-pathfinder (the fastest unit) with ``GITHUB_ACTIONS=true``, and one release refused
for its missing release notes; ``--json`` documents checked against their schemas.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from cuda_ci.cli.app import main
from tests.fakes.github import FakeGitHub
from tests.helpers import git, result_document

pytestmark = pytest.mark.e2e
TAG = "cuda-pathfinder-v1.0.0"
NOTES = "cuda_pathfinder/docs/source/release/1.0.0-notes.rst"


@pytest.fixture
def actions_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, github_env: FakeGitHub) -> tuple[Path, Path]:
    """A runner's environment: GITHUB_ACTIONS, the job summary and step output files, the GitHub stand-in."""
    summary, outputs = tmp_path / "step-summary.md", tmp_path / "step-outputs"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    return summary, outputs


def _outputs(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines())


def test_a_dry_run_on_actions_writes_annotations_summary_outputs_and_json(
    tagged_repo: Path,
    tmp_path: Path,
    github_env: FakeGitHub,
    actions_files: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    summary, outputs = actions_files
    commit = git(tagged_repo, "rev-parse", "HEAD")
    github_env.add_run(commit)
    out = tmp_path / "release"
    argv = ["release", "--tag", TAG, "--dry-run", "--json", "--repo", str(tagged_repo), "--out", str(out)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    doc = result_document(captured.out, "release")
    err = captured.err.splitlines()
    masks = err[: next(i for i, line in enumerate(err) if not line.startswith("::add-mask::"))]
    assert f"::add-mask::{github_env.token}" in masks, "the token is masked before anything else is printed"
    assert "::group::stage build" in err and "::group::stage publish" in err
    printed = [line for line in err if not line.startswith("::add-mask::")]
    assert github_env.token not in captured.out + "\n".join(printed) + summary.read_text()

    run_url = doc["ci_gate"]["run_url"]
    assert doc["ci_gate"]["status"] == "verified" and run_url.startswith("https://github.com/")
    text = summary.read_text()
    assert text.startswith("## cuda-ci release: cuda-pathfinder 1.0.0 (dry-run): succeeded")
    assert f"| CI gate | verified: [ci.yml run]({run_url}) |" in text
    assert "### Artifacts\n\n| file | size (bytes) | sha256 |\n| --- | ---: | --- |" in text
    for entry in doc["files"]:
        assert f"| `{entry['path']}` | {entry['size']:,} | `{entry['sha256']}` |" in text
    stages = re.findall(r"^\| (\w+) \| \d+\.\d \|$", text, re.MULTILINE)
    # validate and docs run side by side (the plan's one wave): either may finish first
    assert sorted(stages) == sorted(["preflight", "build", "validate", "docs", "publish"])
    published = {t["target"]: t for t in doc["targets"]}
    assert list(published) == ["github", "testpypi", "pypi", "finalize"]
    dists = sorted(f["name"] for f in doc["files"] if f["kind"] in ("sdist", "wheel"))
    assert sorted(published["pypi"]["uploaded"]) == dists
    assert f"[stand-in release]({(out / 'github-release').as_uri()})" in text
    assert f"[embedded pypi index]({(out / 'index' / 'pypi').as_uri()})" in text

    assert _outputs(outputs) == {
        "component": "cuda-pathfinder",
        "tag": TAG,
        "release-dir": str(out),
        "version": "1.0.0",
        "version-cuda-pathfinder": "1.0.0",
        "distributions": '{"cuda-pathfinder": "1.0.0"}',
    }

    # The same folder, checked and published again: each command's document and summary.
    assert main(["verify", "--release-dir", str(out), "--json"]) == 0
    assert result_document(capsys.readouterr().out, "verify")["problems"] == []
    assert main(["smoke", "--release-dir", str(out), "--repo", str(tagged_repo), "--json"]) == 0
    assert {c["check"] for c in result_document(capsys.readouterr().out, "smoke")["checks"]} >= {"install", "import"}
    again = ["publish", "--release-dir", str(out), "--target", "github", "--dry-run", "--json"]
    assert main([*again, "--repo", str(tagged_repo)]) == 0
    [github] = result_document(capsys.readouterr().out, "publish")["targets"]
    assert github["outcome"] == "nothing to do" and github["uploaded"] == [] and github["already_there"]
    assert summary.read_text().count("## cuda-ci ") == 4, "each command appends its own summary"
    assert _outputs(outputs)["release-dir"] == str(out)


def test_a_release_refused_for_missing_notes_annotates_the_notes_file(
    tagged_repo: Path, tmp_path: Path, actions_files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    summary, outputs = actions_files
    git(tagged_repo, "rm", "-q", NOTES)
    git(tagged_repo, "commit", "-qm", "notes forgotten")
    git(tagged_repo, "tag", "-f", TAG)
    out = tmp_path / "release"
    assert main(["release", "--tag", TAG, "--json", "--repo", str(tagged_repo), "--out", str(out)]) == 1
    captured = capsys.readouterr()
    doc = result_document(captured.out, "release")
    missing = [e for e in doc["errors"] if e.get("file") == NOTES]
    assert missing and missing[0]["line"] == 1 and doc["status"] == "failed"
    annotation = f"::error title=cuda-ci release,file={NOTES},line=1::release-notes: {NOTES} is missing at {TAG}"
    assert any(line.startswith(annotation) for line in captured.err.splitlines()), captured.err
    assert f"error: release-notes: {NOTES} is missing at {TAG}" in captured.err
    text = summary.read_text()
    assert text.startswith("## cuda-ci release: **failed**")
    assert f"- :x: release-notes: {NOTES} is missing at {TAG}" in text and f"(`{NOTES}`, line 1)" in text
    assert "| preflight |" in text, "the stage that refused, timed"
    assert not outputs.exists() and not out.exists(), "a refused release writes no folder and no outputs"


def test_report_shows_a_runs_folder_as_release_shows_its_own(
    pathfinder_release: tuple[Path, Path],
    tmp_path: Path,
    actions_files: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """What `dagger call release --keep-failed ... export` leaves, reported on the runner: each node,
    the files, the stage times; the step outputs of its folder."""
    summary, outputs = actions_files
    folder = Path(shutil.copytree(pathfinder_release[1], tmp_path / "exported"))
    assert main(["report", "--release-dir", str(folder), "--json"]) == 0
    doc = result_document(capsys.readouterr().out, "report")
    assert [n["node"] for n in doc["nodes"]][:2] == ["preflight", "build"] and doc["status"] == "succeeded"
    assert {n["status"] for n in doc["nodes"]} == {"succeeded"} and "record-docs" in [n["node"] for n in doc["nodes"]]
    assert doc["stages"]["build"] > 0, "the run's stage times, not the report's"
    text = summary.read_text()
    assert text.startswith("## cuda-ci report: cuda-pathfinder 1.0.0: succeeded")
    for entry in doc["files"]:
        assert f"| `{entry['path']}` | {entry['size']:,} | `{entry['sha256']}` |" in text
    assert _outputs(outputs)["release-dir"] == str(folder) and _outputs(outputs)["version"] == "1.0.0"


def test_report_fails_with_every_error_of_a_failed_run_annotated(
    pathfinder_release: tuple[Path, Path],
    tmp_path: Path,
    actions_files: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    summary, outputs = actions_files
    repo, made = pathfinder_release
    folder = Path(shutil.copytree(made, tmp_path / "exported"))
    wheel = next((folder / "dist").glob("*.whl"))
    wheel.write_bytes(wheel.read_bytes() + b"altered")
    # a node of the run failing for real: it writes its own log, as in its container (no Actions there)
    with pytest.MonkeyPatch.context() as container:
        container.delenv("GITHUB_ACTIONS")
        assert main(["docs", "--release-dir", str(folder), "--repo", str(repo), "--node", "docs"]) == 1
    capsys.readouterr()
    assert main(["report", "--release-dir", str(folder), "--json"]) == 1
    captured = capsys.readouterr()
    doc = result_document(captured.out, "report")
    assert doc["status"] == "failed" and [n for n in doc["nodes"] if n["status"] == "failed"] == [
        {"node": "docs", "status": "failed", "seconds": doc["nodes"][-1]["seconds"]}
    ]
    message = doc["errors"][0]["message"]
    assert wheel.name in message and "docs refused: the folder is not what validate checked" in "\n".join(
        e["message"] for e in doc["errors"]
    )
    assert f"::error title=cuda-ci report::{message.splitlines()[0]}" in captured.err
    text = summary.read_text()
    assert text.startswith("## cuda-ci report: **failed**") and f"- :x: {message.splitlines()[0]}" in text
    assert not outputs.exists(), "a failed run's folder gives no step outputs"


def test_report_refuses_a_folder_no_run_left(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "dist").mkdir(parents=True)
    assert main(["report", "--release-dir", str(tmp_path)]) == 1
    assert f"{tmp_path} holds no node logs (logs/*.json): it is not a folder a cuda-ci run left" in (
        capsys.readouterr().err
    )
