"""The workflows, parsed: triggers, guards, the publish chain, permissions, pins and injections."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import REPO_ROOT

WORKFLOWS = REPO_ROOT / ".github" / "workflows"
RELEASES = ["release.yml", "release-cuda-pathfinder.yml"]
ALL = sorted(p.name for p in WORKFLOWS.glob("*.yml"))
PUBLISH_CHAIN = [
    "assemble",
    "sign",
    "github-draft",
    "publish-testpypi",
    "install-back-testpypi",
    "publish-pypi",
    "install-back-pypi",
    "finalize",
    "deploy-docs",
]
ID_TOKEN_JOBS = {"sign", "publish-testpypi", "publish-pypi"}


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as True
    return data


def steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def _needs(job: dict[str, Any]) -> list[str]:
    needs = job.get("needs", [])
    return [needs] if isinstance(needs, str) else list(needs)


def test_ci_runs_on_pull_requests_main_and_merge_queue_never_tags() -> None:
    on = load("ci.yml")["on"]
    assert set(on) == {"pull_request", "push", "merge_group"}
    assert on["push"] == {"branches": ["main"]}
    for name in ALL:
        push = load(name)["on"].get("push") if isinstance(load(name)["on"], dict) else None
        assert not (push and "tags" in push), f"{name} must not trigger on tags"


def test_only_the_release_workflows_take_a_tag() -> None:
    for name in ALL:
        on = load(name)["on"]
        inputs = (on.get("workflow_dispatch") or {}).get("inputs", {})
        if name in RELEASES:
            assert set(on) == {"workflow_dispatch"}
            assert "tag" in inputs and inputs["tag"]["required"] is True
            assert inputs["release-action"]["options"] == ["dry-run", "rehearsal", "full-release"]
            assert inputs["ref"]["required"] is False, "a rehearsal's ref defaults to main's head"
            assert inputs["release-action"]["default"] == "dry-run"
        else:
            assert "tag" not in inputs
    assert load("release.yml")["on"]["workflow_dispatch"]["inputs"]["component"]["options"] == [
        "cuda-bindings",
        "cuda-core",
    ]


@pytest.mark.parametrize("name", RELEASES)
def test_release_jobs_are_guarded_to_main_and_never_cancelled(name: str) -> None:
    workflow = load(name)
    guard = workflow["jobs"]["guard"]
    script = guard["steps"][0]["run"]
    assert '"$REF" != "refs/heads/main"' in script and "exit 1" in script
    assert guard["steps"][0]["env"]["REF"] == "${{ github.ref }}"
    for job_name in workflow["jobs"]:
        if job_name != "guard":
            assert _reaches(workflow, job_name, "guard"), f"{job_name} must run after guard"
    assert workflow["concurrency"]["cancel-in-progress"] is False
    assert workflow["concurrency"]["group"].startswith("release-")


def _reaches(workflow: dict[str, Any], job: str, target: str) -> bool:
    needs = _needs(workflow["jobs"][job])
    return target in needs or any(_reaches(workflow, n, target) for n in needs)


@pytest.mark.parametrize("name", RELEASES)
def test_the_publish_chain_runs_in_order_after_assemble(name: str) -> None:
    jobs = load(name)["jobs"]
    for before, after in itertools.pairwise(PUBLISH_CHAIN):
        assert _needs(jobs[after]) == [before], f"{after} must need exactly {before}"
    for job in PUBLISH_CHAIN[1:]:
        assert _reaches(load(name), job, "assemble")
    assert jobs["sign"]["if"] == jobs["github-draft"]["if"] == "inputs.release-action == 'full-release'"
    sign_steps = jobs["sign"]["steps"]
    assert any(s.get("run") == "cuda-ci sign --release-dir release" for s in sign_steps)
    assert any(s.get("uses", "").startswith("actions/attest-build-provenance@") for s in sign_steps)
    for job in ("github-draft", "publish-testpypi", "publish-pypi"):
        names = [
            s["with"]["name"] for s in jobs[job]["steps"] if s.get("uses", "").startswith("actions/download-artifact@")
        ]
        assert names == ["release-folder", "attestations"], job
    assert jobs["publish-testpypi"]["environment"] == "testpypi"
    assert jobs["publish-pypi"]["environment"] == "pypi"
    targets = {
        job: next(s["run"] for s in jobs[job]["steps"] if "cuda-ci publish" in s.get("run", ""))
        for job in ("github-draft", "publish-testpypi", "publish-pypi", "finalize")
    }
    for job, target in zip(targets, ["github", "testpypi", "pypi", "finalize"], strict=True):
        assert f"--target {target}" in targets[job]


@pytest.mark.parametrize("name", RELEASES)
def test_no_job_that_can_publish_runs_the_release_s_code(name: str) -> None:
    """The jobs with id-token: write upload and check what the index serves; the install-back, which
    imports the release and its third-party requirements, runs in the next job, which can publish nothing."""
    jobs = load(name)["jobs"]
    for index in ("testpypi", "pypi"):
        upload = next(s["run"] for s in jobs[f"publish-{index}"]["steps"] if "cuda-ci publish" in s.get("run", ""))
        assert upload == f"cuda-ci publish --release-dir release --target {index} --no-install-back"
        verify = jobs[f"install-back-{index}"]
        assert verify["permissions"] == {"contents": "read"} and "environment" not in verify
        runs = [s["run"] for s in verify["steps"] if "run" in s]
        assert f"cuda-ci publish --release-dir release --target {index} --install-back-only" in runs
        assert not any("TOKEN" in key for s in verify["steps"] for key in s.get("env", {}))


def test_ci_tests_every_python_the_compiled_components_select() -> None:
    """The test job (unit tests against a built wheel) runs each CPython the compiled components select."""
    from cuda_ci.build.wheel_jobs import selected_identifiers

    jobs = load("ci.yml")["jobs"]
    linux = selected_identifiers(REPO_ROOT / "cuda_core", "linux")
    pythons = [i.split("-")[0] for i in linux if i.endswith("x86_64")]
    expected = [f"{p[2]}.{p[3:]}" for p in pythons]
    assert jobs["test"]["strategy"]["matrix"]["python"] == expected
    assert {"3.15", "3.15t", "3.14t"} <= set(expected)


@pytest.mark.parametrize("name", ALL)
def test_least_privilege(name: str) -> None:
    workflow = load(name)
    assert workflow["permissions"] in ({}, {"contents": "read"})
    for job_name, job in workflow["jobs"].items():
        permissions = job.get("permissions", {})
        if permissions.get("id-token") == "write":
            assert job_name in ID_TOKEN_JOBS, f"{job_name} must not get id-token: write"
    if name in RELEASES:
        for job in ("publish-testpypi", "publish-pypi"):
            assert workflow["jobs"][job]["permissions"] == {"id-token": "write"}
        sign = workflow["jobs"]["sign"]["permissions"]
        assert sign == {"contents": "read", "id-token": "write", "attestations": "write"}


@pytest.mark.parametrize("name", ALL)
def test_actions_pinned_by_sha_checkouts_without_credentials(name: str) -> None:
    for step in steps(load(name)):
        uses = step.get("uses")
        if not uses:
            continue
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", uses), f"{uses} must be pinned by full commit SHA"
        if uses.startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False
    assert re.search(r"uses: [^\n]+@[0-9a-f]{40} # v\d", (WORKFLOWS / name).read_text())


@pytest.mark.parametrize("name", ALL)
def test_no_expression_in_run_scripts_and_no_run_ids(name: str) -> None:
    text = (WORKFLOWS / name).read_text()
    assert "run-id" not in text and "run_id" not in text and "lookup-run-id" not in text
    for step in steps(load(name)):
        script = step.get("run", "")
        assert "${{" not in script, f"pass values through env:, not into run: ({step.get('name')})"


@pytest.mark.parametrize("name", RELEASES)
def test_artifact_names_uploaded_and_downloaded_match(name: str) -> None:
    uploaded = {
        s["with"]["name"] for s in steps(load(name)) if s.get("uses", "").startswith("actions/upload-artifact@")
    }
    downloads = [s["with"] for s in steps(load(name)) if s.get("uses", "").startswith("actions/download-artifact@")]
    assert {d["name"] for d in downloads if "name" in d} <= uploaded and "release-folder" in uploaded
    for download in downloads:  # this run's artifacts only: no run-id, no other repository, no token
        assert set(download) in ({"name", "path"}, {"pattern", "merge-multiple", "path"}), download
    # the wheel jobs' artifacts, by pattern: wheels-<group> (each job uploads its matrix entry's artifact)
    patterns = {d["pattern"] for d in downloads if "pattern" in d}
    if patterns:
        assert uploaded >= {"${{ matrix.artifact }}"} and patterns == {"wheels-linux-*", "wheels-windows-*"}


def test_dagger_cli_version_equals_the_engine_version() -> None:
    engine = json.loads((REPO_ROOT / "dagger.json").read_text())["engineVersion"].lstrip("v")
    versions = [
        s["with"]["version"]
        for n in ALL
        for s in steps(load(n))
        if s.get("uses", "").startswith("dagger/dagger-for-github@")
    ]
    assert versions and set(versions) == {engine}


def test_ci_jobs_gpu_guard_windows_and_one_required_check() -> None:
    jobs = load("ci.yml")["jobs"]
    assert jobs["gpu"]["runs-on"] == ["self-hosted", "linux", "x64", "gpu"]
    assert "github.event.pull_request.head.repo.full_name == github.repository" in jobs["gpu"]["if"]
    assert any("--gpu" in s.get("run", "") for s in jobs["gpu"]["steps"])
    assert jobs["test"]["strategy"]["matrix"]["component"] == ["cuda-pathfinder", "cuda-bindings", "cuda-core"]
    assert any('--python "$PYTHON"' in s.get("run", "") for s in jobs["test"]["steps"])
    assert any("dagger --progress plain call lint" in s.get("run", "") for s in jobs["lint"]["steps"])
    assert any("--wheels-only" in s.get("run", "") for s in jobs["wheels"]["steps"])
    checks = jobs["checks"]
    assert checks["if"] == "always()"
    assert set(_needs(checks)) == set(jobs) - {"checks"}
    assert 'allowed_skip = {"gpu"} if os.environ["FORK_PR"] == "true"' in checks["steps"][0]["run"]


def test_release_docs_name_only_real_commands_flags_and_inputs() -> None:
    import argparse

    from cuda_ci.cli.app import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    docs = [REPO_ROOT / "docs" / "releasing.md", REPO_ROOT / "docs" / "workflows.md"]
    inputs = {k for n in RELEASES for k in load(n)["on"]["workflow_dispatch"]["inputs"]}
    jobs = {j for n in RELEASES for j in load(n)["jobs"]}
    for doc in docs:
        text = doc.read_text()
        for match in re.finditer(r"cuda-ci (\w[\w-]*)((?: --?[\w-]+(?: [^\s`-][^\s`]*)?)*)", text):
            command, rest = match.group(1), match.group(2)
            assert command in sub.choices, f"{doc.name}: no command {command}"
            known = {o for a in sub.choices[command]._actions for o in a.option_strings}
            for flag in re.findall(r"--[\w-]+", rest):
                assert flag in known, f"{doc.name}: cuda-ci {command} has no {flag}"
        for name in re.findall(r"`(tag|component|release-action)(?::[^`]*)?`", text):
            assert name in inputs
        for job in re.findall(
            r"`((?:github-draft|publish-testpypi|install-back-testpypi|publish-pypi|install-back-pypi|finalize"
            r"|deploy-docs|assemble|plan|wheels))`",
            text,
        ):
            assert job in jobs
    checklist = (REPO_ROOT / ".github" / "ISSUE_TEMPLATE" / "release_checklist.yml").read_text().lower()
    assert "wait for" not in checklist and "run id" not in checklist and "run-id" not in checklist


def test_deploy_docs_script_exists() -> None:
    script = REPO_ROOT / ".github" / "scripts" / "deploy-docs.sh"
    assert script.is_file() and "GH_TOKEN" in script.read_text()
    assert Path(script).stat().st_mode & 0o111
