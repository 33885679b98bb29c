"""Dry-runs and snapshots walk the whole path with no token and GitHub out of reach."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cuda_ci.cli.app import main
from cuda_ci.infra.envcontent import content_problem
from cuda_ci.infra.index import free_port
from tests.helpers import commit_change, git

pytestmark = pytest.mark.e2e


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No token, and GITHUB_API_URL pointing at a closed loopback port."""
    for name in ("GITHUB_TOKEN", "GH_TOKEN", "CUDA_CI_TESTPYPI_TOKEN", "CUDA_CI_PYPI_TOKEN", "GITHUB_ACTIONS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GITHUB_API_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("GITHUB_REPOSITORY", "NVIDIA/cuda-python")
    monkeypatch.setattr("cuda_ci.infra.httpclient.DEFAULT_BACKOFF", 0.01)


@pytest.mark.usefixtures("offline")
def test_dry_run_of_core_builds_siblings_into_the_embedded_indexes(
    tagged_repo: Path, tmp_path: Path, tool_env_cache: Path
) -> None:
    out = tmp_path / "rel"
    assert (
        main(["release", "--tag", "cuda-core-v0.3.0", "--dry-run", "--repo", str(tagged_repo), "--out", str(out)]) == 0
    )
    manifest = json.loads((out / "release-manifest.json").read_text())
    assert manifest["ci_gate"] == {"status": "not-verified", "run_url": None}
    notes = json.loads((out / "run-log.json").read_text())["notes"]
    assert any("ci-gate: not verified" in n for n in notes)
    assert any("sibling check: not verified" in n for n in notes)
    for index in ("testpypi", "pypi"):
        held = sorted(p.name for p in (out / "index" / index).iterdir())
        assert any(n.startswith("cuda_core-0.3.0-cp3") and "manylinux" in n for n in held)
        assert any(n.startswith("cuda_bindings-13.0.0-") for n in held), "sibling from the same commit"
    release = json.loads((out / "github-release" / "release.json").read_text())
    assert release["tag_name"] == "cuda-core-v0.3.0" and release["draft"] is False
    assert (out / "docs" / "cuda-core" / "index.html").is_file()
    # Sphinx ran from the release's kept environment of the docs group, compiled when it was made and
    # as it was made after the run (its conf.py added nothing).
    [sphinx] = [
        env
        for env in (tool_env_cache / "release" / "envs").glob("sphinx-*")
        if "sphinx-copybutton==" in (env / "cuda-ci-complete").read_text()
    ]
    assert list(sphinx.rglob("sphinx/__pycache__/*.pyc")) and content_problem(sphinx) is None


@pytest.mark.usefixtures("offline")
def test_snapshot_of_bindings_after_the_tag(
    tagged_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    commit_change(tagged_repo, "work after v13.0.0")
    out = tmp_path / "snap"
    assert (
        main(["release", "--snapshot", "--component", "cuda-bindings", "--repo", str(tagged_repo), "--out", str(out)])
        == 0
    )
    manifest = json.loads((out / "release-manifest.json").read_text())
    assert manifest["snapshot"] is True and manifest["tag"] is None
    assert manifest["version"].startswith("13.0.1.dev1+g")
    assert manifest["ci_gate"]["status"] == "snapshot"
    held = sorted(p.name for p in (out / "index" / "pypi").iterdir())
    assert any(n.startswith("cuda_python-13.0.1.dev1") for n in held)
    assert any(n.startswith("cuda_pathfinder-1.0.1.dev1") for n in held)
    captured = capsys.readouterr()
    assert "snapshot" in captured.out or "release folder" in captured.out


@pytest.mark.usefixtures("offline")
def test_a_docs_warning_in_each_component_stops_the_release_before_publish(
    tagged_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for component in ("cuda_bindings", "cuda_python"):
        index = tagged_repo / component / "docs" / "source" / "index.rst"
        index.write_text(index.read_text() + "\nSee :doc:`no-such-page`.\n")
    git(tagged_repo, "commit", "-qam", "docs that warn")
    out = tmp_path / "snap"
    argv = ["release", "--snapshot", "--component", "cuda-bindings", "--repo", str(tagged_repo), "--out", str(out)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    # Both Sphinx builds ran side by side; both failures are reported, not only the first.
    assert "error: Sphinx build of cuda-bindings docs failed" in err
    assert "error: Sphinx build of cuda-python docs failed" in err
    assert err.count("unknown document") >= 2
    run_log = json.loads((out / "run-log.json").read_text())
    assert run_log["status"] == "failed"
    for distribution in ("cuda-bindings", "cuda-python"):  # the cause of docs beside validate, kept
        assert any(e.startswith(f"Sphinx build of {distribution} docs failed") for e in run_log["errors"])
    assert not (out / "github-release").exists(), "no GitHub release"
    # Publish's nodes never ran: no embedded index holds any of the release's files.
    held = [p.name for p in (out / "index").rglob("*") if p.is_file()]
    assert not [name for name in held if name.startswith(("cuda_bindings", "cuda_python"))]
    assert {n["node"] for n in run_log["nodes"]} == {"preflight", "build", "validate", "docs"}
