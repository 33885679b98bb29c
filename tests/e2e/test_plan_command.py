"""``cuda-ci plan``: what a release will build, check and publish, shown before anything runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cuda_ci.cli.app import main
from cuda_ci.cli.flags import build_parser
from tests.helpers import git

pytestmark = pytest.mark.e2e


def test_plan_json_shows_the_source_the_nodes_and_the_wheel_matrix(
    tagged_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", "--tag", "v13.0.0", "--runner", "dagger", "--json", "--repo", str(tagged_repo)]) == 0
    plan = json.loads(capsys.readouterr().out)
    commit = git(tagged_repo, "rev-parse", "v13.0.0^{commit}")
    assert plan["source"] == {
        "unit": "cuda-bindings",
        "commit": commit,
        "tag": "v13.0.0",
        "mode": "release",
        "versions": {"cuda-bindings": "13.0.0", "cuda-python": "13.0.0"},
        "siblings": ["cuda-pathfinder"],
    }
    ids = [n["id"] for n in plan["nodes"]]
    wheels = [n for n in plan["nodes"] if n["kind"] == "wheel"]
    assert wheels and all(n["image"].split("@")[1].startswith("sha256:") for n in wheels)
    assert {n["identifier"] for n in wheels} == {e["identifier"] for g in plan["wheel_matrix"].values() for e in g}
    assert ids[0] == "preflight" and ids[-1] == "publish:finalize" and "record-docs" in ids
    assert plan["folder"] == "v13.0.0" and plan["dry_run"] is False
    for node in plan["nodes"]:  # every node a cuda-ci command line this CLI parses
        build_parser().parse_args([a.replace("{", "").replace("}", "") for a in node["argv"]])
    assert not (tagged_repo / ".release").exists(), "plan writes nothing"


def test_plan_for_people_lists_each_node_after_what_it_needs(
    tagged_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["plan", "--snapshot", "--component", "cuda-pathfinder", "--no-publish", "--repo", str(tagged_repo)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    head = git(tagged_repo, "rev-parse", "HEAD")
    assert f"snapshot of cuda-pathfinder (no tag) at {head}: cuda-pathfinder 1.0.1.dev" in out
    assert "  1. preflight: cuda-ci preflight --snapshot --component=cuda-pathfinder --dry-run --json" in out
    assert "validate: cuda-ci validate --release-dir {release}" in out and "(after build)" in out
    assert "publish" not in out


def test_plan_refuses_what_release_refuses(tagged_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--tag", "v13.0.0", "--snapshot", "--repo", str(tagged_repo)]) == 2
    assert "--snapshot and --tag exclude each other" in capsys.readouterr().err
    assert main(["plan", "--tag", "v13.0.9", "--repo", str(tagged_repo)]) == 1
    assert "tag v13.0.9 does not exist" in capsys.readouterr().err
