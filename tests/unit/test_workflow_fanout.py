"""The workflows' wheel jobs come from the plan: every identifier a release builds, each platform group
on a native runner of its architecture, in CI (on main) and in the release, which fans out and in."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from cuda_ci.build.wheel_jobs import selected_identifiers
from cuda_ci.infra.components import get_unit, unit_names
from cuda_ci.plan.wheel_matrix import GROUPS, MatrixEntry
from tests.dagger_render import offline_plan
from tests.helpers import REPO_ROOT
from tests.unit.test_workflows import _needs, load

FROM_PLAN = "${{ fromJSON(needs.plan.outputs.matrix) }}"
# The native runner of each architecture cibuildwheel names (GitHub-hosted; the arm64 ones are
# ubuntu-24.04-arm and windows-11-arm).
NATIVE = {"x86_64": "ubuntu-latest", "aarch64": "ubuntu-24.04-arm", "win_amd64": "windows-latest",
          "win_arm64": "windows-11-arm"}  # fmt: skip


def _step(job: dict[str, Any], needle: str) -> dict[str, Any]:
    (step,) = [s for s in job["steps"] if needle in s.get("run", "")]
    return step


def _selection(unit: str) -> set[tuple[str, str]]:
    """(identifier, native runner) of everything a release of ``unit`` builds: cibuildwheel's answer."""
    platform = [c for c in get_unit(unit).components if c.wheel == "platform"]
    if not platform:
        return set()
    folder = REPO_ROOT / platform[0].dir
    identifiers = selected_identifiers(folder, "linux") + selected_identifiers(folder, "windows")
    return {(i, NATIVE[next(a for a in NATIVE if i.endswith(a))]) for i in identifiers}


def _built(entries: list[MatrixEntry]) -> set[tuple[str, str]]:
    return {(i, e["runner"]) for e in entries for i in e["identifiers"]}


def _plan_units(workflow: str) -> list[str]:
    """The units whose plans a workflow's plan job asks for."""
    plan = load(workflow)["jobs"]["plan"]
    if workflow == "release.yml":
        return list(load(workflow)["on"]["workflow_dispatch"]["inputs"]["component"]["options"])
    script = _step(plan, "cuda-ci plan")["run"]
    return re.search(r"for unit in ([\w -]+); do", script).group(1).split()  # type: ignore[union-attr]


@pytest.mark.parametrize("workflow", ["ci.yml", "release.yml"])
def test_each_workflows_wheel_jobs_are_the_plans_matrix(workflow: str) -> None:
    jobs = load(workflow)["jobs"]
    wheels = jobs["wheels"]
    assert wheels["strategy"]["matrix"] == {"include": FROM_PLAN} and wheels["runs-on"] == "${{ matrix.runner }}"
    assert _needs(wheels) == ["plan"]
    plan_step = _step(jobs["plan"], "cuda-ci plan")
    assert "--runner dagger --prebuilt" in plan_step["run"]
    assert jobs["plan"]["outputs"]["matrix"] == f"${{{{ steps.{plan_step['id']}.outputs.matrix }}}}"
    if workflow == "ci.yml":
        assert sorted(_plan_units(workflow)) == sorted(unit_names()), "CI plans every unit"
    units = _plan_units(workflow)
    for unit in units:
        # The plan job's answer, as the workflow reads it (CI joins the units' matrices with jq).
        entries = offline_plan(unit, None, "snapshot", dry_run=True, prebuilt=True).matrix()
        entries = json.loads(json.dumps(entries))
        assert _built(entries) == _selection(unit), f"{workflow}: {unit}'s identifiers, each on its native runner"
        for entry in entries:
            assert entry["platform"] in GROUPS and entry["unit"] == unit
    assert {u for u in units if _selection(u)} == {"cuda-bindings", "cuda-core"}
    arm64 = {("cp312-win_arm64", "windows-11-arm"), ("cp312-manylinux_aarch64", "ubuntu-24.04-arm")}
    assert {(i, r) for u in units for i, r in _selection(u)} >= arm64, "the ARM runners build"


@pytest.mark.parametrize("workflow", ["ci.yml", "release.yml"])
def test_each_leg_builds_exactly_its_entry(workflow: str) -> None:
    """Linux through `dagger call wheels` for the entry's platform, Windows through cuda-ci on the runner."""
    wheels = load(workflow)["jobs"]["wheels"]
    linux = _step(wheels, "call wheels")
    assert linux["if"] == "matrix.os == 'linux'" and linux["env"]["PLATFORM"] == "${{ matrix.platform }}"
    assert '--platform "$PLATFORM"' in linux["run"]
    windows = _step(wheels, "--wheels-only")
    assert windows["if"] == "matrix.os == 'windows'" and "cuda-ci build" in windows["run"]
    dagger = [s for s in wheels["steps"] if s.get("uses", "").startswith("dagger/dagger-for-github@")]
    assert [s["if"] for s in dagger] == ["matrix.os == 'linux'"]
    if workflow == "ci.yml":  # a pull request's subset: the identifiers of the entry, on both systems
        assert linux["env"]["IDENTIFIERS"] == "${{ join(matrix.identifiers, ',') }}" and "--identifiers" in linux["run"]
        assert windows["env"]["CIBW_BUILD"] == "${{ join(matrix.identifiers, ' ') }}"
        assert "--pull-request-base" in _step(load(workflow)["jobs"]["plan"], "cuda-ci plan")["run"]
    else:  # a release builds every identifier, never a subset
        assert "matrix.identifiers" not in json.dumps(wheels) and "CIBW" not in json.dumps(wheels)


def test_the_release_fans_out_and_in() -> None:
    jobs = load("release.yml")["jobs"]
    assert _needs(jobs["plan"]) == ["guard"] and _needs(jobs["assemble"]) == ["plan", "wheels"]
    preflight = _step(jobs["plan"], "cuda-ci preflight")
    assert jobs["plan"]["steps"].index(preflight) < jobs["plan"]["steps"].index(_step(jobs["plan"], "cuda-ci plan"))
    # Each wheel job reports its files' sha256 under its own output name, for every group a plan can have.
    wheels = jobs["wheels"]
    report = _step(wheels, "check-wheels")
    assert '--group "$GROUP"' in report["run"] and report["env"]["GROUP"] == "${{ matrix.group }}"
    assert wheels["outputs"] == {f"wheels-{g.key}": f"${{{{ steps.{report['id']}.outputs.wheels-{g.key} }}}}"
                                 for g in GROUPS.values()}  # fmt: skip
    (upload,) = [s for s in wheels["steps"] if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert upload["with"]["name"] == "${{ matrix.artifact }}"
    assert {e["artifact"] for u in ("cuda-bindings", "cuda-core") for e in offline_plan(u, None, "snapshot",
            dry_run=True).matrix()} == {f"wheels-{g.key}" for g in GROUPS.values()}  # fmt: skip
    # The assemble job refuses what the plan does not name or a job did not report, then releases the rest.
    assemble = jobs["assemble"]
    check = _step(assemble, "check-wheels")
    assert check["env"] == {"PLAN": "${{ needs.plan.outputs.plan }}", "REPORTS": "${{ toJSON(needs.wheels.outputs) }}"}
    assert "--reports wheel-reports.json --wheels linux-wheels --wheels windows-wheels" in check["run"]
    release = _step(assemble, "dagger --progress plain call")
    assert assemble["steps"].index(check) < assemble["steps"].index(release)
    assert "--prebuilt linux-wheels --wheel-reports wheel-reports.json" in release["run"]
    assert "args+=(--extra-dist windows-wheels)" in release["run"]
    for job in ("plan", "wheels", "assemble"):
        assert "id-token" not in jobs[job].get("permissions", {}), f"{job} can publish nothing"
        assert "write" not in json.dumps(jobs[job].get("permissions", {}))
    assert "wheels" not in load("release-cuda-pathfinder.yml")["jobs"], "a pure unit fans out nothing"
