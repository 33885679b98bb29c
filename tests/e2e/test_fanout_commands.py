"""The fanned-out workflow's commands on a real repository: the plan's matrix as a step output (a pull
request's subset included), and a wheel job's check-wheels reporting what its checkout built."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cuda_ci.cli.app import main
from cuda_ci.infra.manifest import sha256_of
from tests.helpers import git, result_document
from tests.unit.test_wheel_fanout import wheel_name

pytestmark = pytest.mark.e2e


def _outputs(path: Path) -> dict[str, str]:
    """GITHUB_OUTPUT as the runner reads it: name=value lines and name<<DELIMITER blocks."""
    found, lines = {}, iter(path.read_text().splitlines())
    for line in lines:
        if "<<" in line and "=" not in line.split("<<")[0]:
            name, delimiter = line.split("<<", 1)
            found[name] = "\n".join(iter(lambda: next(lines), delimiter))
        else:
            name, value = line.split("=", 1)
            found[name] = value
    return found


@pytest.fixture
def step_outputs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    outputs = tmp_path / "step-outputs"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary.md"))
    return outputs


def test_a_wheel_job_reports_what_its_checkout_built_and_refuses_a_moved_tag(
    tagged_repo: Path, tmp_path: Path, step_outputs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = str(tagged_repo)
    assert main(["plan", "--tag", "v13.0.0", "--runner", "dagger", "--prebuilt", "--json", "--repo", repo]) == 0
    doc = result_document(capsys.readouterr().out, "plan")
    written = _outputs(step_outputs)
    assert json.loads(written["matrix"]) == doc["matrix"] and json.loads(written["plan"])["matrix"] == doc["matrix"]
    groups = {e["group"]: e["identifiers"] for e in doc["matrix"]}
    assert sorted(groups) == ["linux-amd64", "linux-arm64", "windows-amd64"], "cuda-bindings: no win_arm64"
    plan = tmp_path / "plan.json"
    plan.write_text(written["plan"])
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for identifier in groups["linux-arm64"]:
        (wheels / wheel_name(identifier, "13.0.0", "cuda_bindings")).write_bytes(identifier.encode())
    check = ["check-wheels", "--plan", str(plan), "--wheels", str(wheels), "--group", "linux-arm64", "--repo", repo]
    assert main([*check, "--json"]) == 0
    report = json.loads(_outputs(step_outputs)["wheels-linux-arm64"])
    assert result_document(capsys.readouterr().out, "check-wheels")["report"] == report
    assert report["commit"] == git(tagged_repo, "rev-parse", "v13.0.0^{commit}") == doc["source"]["commit"]
    assert report["files"] == {w.name: sha256_of(w) for w in wheels.iterdir()} and report["version"] == "13.0.0"
    git(tagged_repo, "commit", "-q", "--allow-empty", "-m", "after the plan")
    git(tagged_repo, "tag", "-f", "-a", "v13.0.0", "-m", "moved")
    capsys.readouterr()
    assert main(check) == 1
    err = capsys.readouterr().err
    assert f"this job's checkout (linux-arm64) built {git(tagged_repo, 'rev-parse', 'HEAD')[:12]}" in err
    assert "the tag moved (or another commit was checked out) after the plan was made" in err


def test_a_pull_request_builds_a_subset_unless_it_changes_what_a_build_reads(
    tagged_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = git(tagged_repo, "rev-parse", "HEAD")
    plan = ["plan", "--snapshot", "--component", "cuda-core", "--runner", "dagger", "--prebuilt", "--json"]
    plan += ["--pull-request-base", base, "--repo", str(tagged_repo)]
    (tagged_repo / "cuda_core" / "tests" / "test_more.py").write_text("def test_more() -> None:\n    pass\n")
    git(tagged_repo, "add", "-A")
    git(tagged_repo, "commit", "-q", "-m", "a test only")
    assert main(plan) == 0
    doc = result_document(capsys.readouterr().out, "plan")
    assert doc["pull_request"] == {"base": base, "build_inputs_changed": [], "subset": True}
    assert [len(e["identifiers"]) for e in doc["matrix"]] == [1, 1, 1, 1], "every runner, one identifier each"
    setup = tagged_repo / "cuda_bindings" / "setup.py"
    setup.write_text(setup.read_text() + "# a change the cuda-core build reads (it compiles against it)\n")
    git(tagged_repo, "commit", "-qam", "a build input")
    assert main(plan) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["pull_request"]["build_inputs_changed"] == ["cuda_bindings/setup.py"]
    assert sum(len(e["identifiers"]) for e in doc["matrix"]) == 32, "16 Linux and 16 Windows identifiers"
